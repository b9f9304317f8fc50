//! Samples from a run, and the report made of them: text, JSON and Prometheus metrics.

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub use crate::results::record::Sample;
use crate::results::record::{CheckResult, Recorder, Stats};

/// How many of the busiest, and of the slowest, source addresses the text report shows.
pub(crate) const SHOWN_SOURCES: usize = 10;

#[derive(Debug, Clone)]
pub struct UserError {
    pub user: u32,
    pub tenant: String,
    pub error: String,
}

#[derive(Debug, Clone, Default)]
pub struct PoolState {
    pub id: String,
    pub name: String,
    pub total: String,
    pub allocated: u64,
    pub available: String,
}

/// What a server instance of the run (`servers:`) answered.
#[derive(Debug, Clone, Default)]
pub struct ServerServed {
    pub name: String,
    pub url: String,
    pub connections: u64,
    pub requests: u64,
    pub statuses: Vec<(u16, u64)>,
    pub resets: u64,
    /// Answers by client address.
    pub peers: Vec<(String, u64)>,
    /// Why it stopped serving, if it failed.
    pub error: Option<String>,
}

#[derive(Default)]
pub struct Collected {
    pub rec: Recorder,
    pub user_errors: Vec<UserError>,
    pub users_spawned: u64,
    pub users_finished: u64,
    /// What went wrong with the run itself (the pool state could not be written, ...).
    pub run_errors: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub count: u64,
    pub ok: u64,
    pub failed: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Group {
    /// mean, p50, p90, p95, p99 and max (ms), as the tables show them.
    pub fn latencies(&self) -> [f64; 6] {
        [
            self.mean_ms,
            self.p50_ms,
            self.p90_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
        ]
    }
}

fn group(g: &Stats) -> Group {
    Group {
        count: g.count,
        ok: g.ok,
        failed: g.failed,
        p50_ms: g.quantile_ms(0.50),
        p90_ms: g.quantile_ms(0.90),
        p95_ms: g.quantile_ms(0.95),
        p99_ms: g.quantile_ms(0.99),
        p999_ms: g.quantile_ms(0.999),
        max_ms: g.max_ms(),
        mean_ms: g.mean_ms(),
        bytes_sent: g.bytes_sent,
        bytes_received: g.bytes_received,
    }
}

fn groups(m: &BTreeMap<String, Stats>) -> BTreeMap<String, Group> {
    m.iter().map(|(k, g)| (k.clone(), group(g))).collect()
}

pub struct Report {
    pub scenario: String,
    pub elapsed_s: f64,
    pub users_spawned: u64,
    pub users_finished: u64,
    pub totals: Group,
    pub by_action: BTreeMap<String, Group>,
    pub by_tenant: BTreeMap<String, Group>,
    pub by_source: BTreeMap<String, Group>,
    pub errors: BTreeMap<String, u64>,
    /// Per action: errors before anything was sent (not counted as requests).
    pub not_sent: BTreeMap<String, u64>,
    pub skipped: BTreeMap<String, u64>,
    pub user_errors: Vec<UserError>,
    pub pools: Vec<PoolState>,
    /// The demo target's own count of requests per source address.
    pub target_counts: Option<BTreeMap<String, u64>>,
    /// The run's server instances (`servers:`), by name.
    pub servers: Vec<ServerServed>,
    pub interrupted: bool,
    pub run_errors: Vec<String>,
    /// The source addresses each user sent from, in order of first use.
    pub user_sources: BTreeMap<u32, Vec<String>>,
    /// What was recorded, for metrics and thresholds.
    pub rec: Recorder,
    /// Workflow runs completed.
    pub iterations: u64,
    /// Open model: iterations that found no free user.
    pub dropped_iterations: u64,
    /// The run second by second.
    pub series: Vec<crate::results::record::Interval>,
    pub checks: Vec<CheckResult>,
    pub thresholds: Vec<crate::results::verdict::Verdict>,
    /// The `abort_on_fail` threshold that stopped the run.
    pub aborted_by: Option<String>,
    /// TLS handshakes by what they negotiated (none for a run without https).
    pub tls: compose::tls::TlsCounts,
    /// Whether certificates went unverified (`insecure_skip_verify`).
    pub tls_insecure: bool,
    /// Every action the scenario declares, in its order (set by `declare`).
    pub actions: Vec<DeclaredAction>,
    /// The signal that stopped the run (2 SIGINT, 15 SIGTERM, 1 SIGHUP).
    pub signal: Option<u8>,
    /// `--segment I/N` whose share held no user: nothing to run, which is no failure.
    pub empty_segment: bool,
    /// Data sources whose unique rows ran out (the run stopped when they did).
    pub data_exhausted: Vec<String>,
    /// When the run started and ended (wall clock), to line up with the target's dashboards.
    pub started_at: Option<std::time::SystemTime>,
    pub ended_at: Option<std::time::SystemTime>,
    /// What run this is a part of (for result files and their merge).
    pub identity: crate::results::identity::Identity,
}

/// An action of the scenario, and why it is skipped when it is (the original's dry run: its
/// URL keeps a template nothing declares).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredAction {
    pub id: String,
    pub skip_reason: Option<String>,
    /// Its `tags:`.
    pub tags: Vec<(String, String)>,
}

impl Report {
    pub fn new(
        scenario: &str,
        elapsed_s: f64,
        c: Collected,
        pools: Vec<PoolState>,
        interrupted: bool,
    ) -> Report {
        let by_source = c
            .rec
            .by_source
            .iter()
            .map(|(k, g)| (k.to_string(), group(g)))
            .collect();
        Report {
            user_sources: c.rec.user_sources.clone(),
            scenario: scenario.to_string(),
            elapsed_s,
            users_spawned: c.users_spawned,
            users_finished: c.users_finished,
            totals: group(&c.rec.totals),
            by_action: groups(&c.rec.by_action),
            by_tenant: groups(&c.rec.by_tenant),
            by_source,
            errors: c.rec.errors.clone(),
            not_sent: c.rec.not_sent.clone(),
            skipped: c.rec.skipped.clone(),
            user_errors: c.user_errors,
            pools,
            target_counts: None,
            servers: Vec::new(),
            interrupted,
            run_errors: c.run_errors,
            rec: c.rec,
            iterations: 0,
            dropped_iterations: 0,
            series: Vec::new(),
            checks: Vec::new(),
            thresholds: Vec::new(),
            aborted_by: None,
            tls: Default::default(),
            tls_insecure: false,
            actions: Vec::new(),
            signal: None,
            empty_segment: false,
            started_at: None,
            ended_at: None,
            data_exhausted: Vec::new(),
            identity: Default::default(),
        }
    }

    /// Every declared action gets its row (0 requests when it never ran).
    pub fn declare(&mut self, actions: Vec<DeclaredAction>) {
        for a in &actions {
            self.by_action.entry(a.id.clone()).or_default();
        }
        self.actions = actions;
    }

    /// The run's servers, and what they saw from each source address (beside what the users
    /// sent).
    pub fn add_servers(&mut self, served: Vec<ServerServed>) {
        if !served.is_empty() {
            let mut seen = BTreeMap::new();
            for (ip, n) in served.iter().flat_map(|s| &s.peers) {
                *seen.entry(ip.clone()).or_insert(0) += n;
            }
            self.target_counts = Some(seen);
        }
        self.servers = served;
    }

    /// Per tag (`name:value`), the requests of the actions that carry it, together.
    pub fn by_tag(&self) -> BTreeMap<String, Group> {
        let mut tagged: BTreeMap<String, Vec<&Stats>> = BTreeMap::new();
        for a in &self.actions {
            for (k, v) in &a.tags {
                let list = tagged.entry(format!("{k}:{v}")).or_default();
                list.extend(self.rec.by_action.get(&a.id));
            }
        }
        tagged
            .into_iter()
            .filter_map(|(tag, parts)| Stats::sum(&parts).map(|s| (tag, group(&s))))
            .collect()
    }

    /// The declared actions that never ran: no request, not skipped, nothing failed before
    /// sending.
    pub fn never_ran(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter(|a| {
                self.by_action.get(&a.id).is_none_or(|g| g.count == 0)
                    && !self.skipped.contains_key(&a.id)
                    && !self.not_sent.contains_key(&a.id)
            })
            .map(|a| a.id.as_str())
            .collect()
    }

    /// Why each skipped action was skipped.
    pub(crate) fn skip_reason(&self, id: &str) -> Option<&str> {
        let a = self.actions.iter().find(|a| a.id == id)?;
        a.skip_reason.as_deref()
    }

    /// The TLS line of the text report, when there was TLS.
    pub(crate) fn tls_text(&self) -> Option<String> {
        let t = &self.tls;
        let total: u64 = t.negotiated.values().sum();
        if total == 0 && t.failed == 0 {
            return None;
        }
        let kinds: Vec<String> = t
            .negotiated
            .iter()
            .map(|((v, c), n)| format!("{v} {c}: {n}"))
            .collect();
        Some(format!(
            "TLS handshakes {total} ({}), {} resumed, {} failed{}",
            kinds.join(", "),
            t.resumed,
            t.failed,
            if self.tls_insecure {
                "; certificates NOT verified (insecure_skip_verify)"
            } else {
                ""
            }
        ))
    }

    fn tls_json(&self) -> Value {
        json!({
            "handshakes": self.tls.negotiated.values().sum::<u64>(),
            "negotiated": self.tls.negotiated.iter().map(|((v, c), n)| json!({"version": v, "cipher_suite": c, "count": n})).collect::<Vec<_>>(),
            "resumed": self.tls.resumed,
            "failed": self.tls.failed,
            "verified": !self.tls_insecure,
        })
    }

    pub fn success_rate(&self) -> f64 {
        if self.totals.count == 0 {
            0.0
        } else {
            self.totals.ok as f64 / self.totals.count as f64
        }
    }

    /// The source addresses the text shows, in address order: all of them when few, else
    /// the busiest and the slowest few; and how many are left out.
    pub(crate) fn sources_shown(&self) -> (Vec<(&String, &Group)>, usize) {
        let mut all: Vec<(&String, &Group)> = self.by_source.iter().collect();
        if all.len() > 2 * SHOWN_SOURCES {
            let mut keep: std::collections::BTreeSet<&String> = std::collections::BTreeSet::new();
            all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
            keep.extend(all.iter().take(SHOWN_SOURCES).map(|(k, _)| *k));
            all.sort_by(|a, b| b.1.p99_ms.total_cmp(&a.1.p99_ms).then(a.0.cmp(b.0)));
            keep.extend(
                all.iter()
                    .filter(|(k, _)| !keep.contains(k))
                    .take(SHOWN_SOURCES)
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>(),
            );
            all.retain(|(k, _)| keep.contains(k));
        }
        let left_out = self.by_source.len() - all.len();
        // Addresses in numeric order (.2 before .10); anything else ("-") after them.
        all.sort_by_key(|(k, _)| {
            (
                k.parse::<std::net::IpAddr>().ok().is_none(),
                k.parse::<std::net::IpAddr>().ok(),
                *k,
            )
        });
        (all, left_out)
    }

    fn group_json(g: &Group) -> Value {
        json!({ "requests": g.count, "ok": g.ok, "failed": g.failed, "mean_ms": g.mean_ms, "p50_ms": g.p50_ms,
                "p90_ms": g.p90_ms, "p95_ms": g.p95_ms, "p99_ms": g.p99_ms, "p99_9_ms": g.p999_ms, "max_ms": g.max_ms,
                "bytes_sent": g.bytes_sent, "bytes_received": g.bytes_received })
    }

    pub fn json(&self) -> Value {
        let map = |m: &BTreeMap<String, Group>| -> Value {
            Value::Object(
                m.iter()
                    .map(|(k, g)| (k.clone(), Self::group_json(g)))
                    .collect(),
            )
        };
        json!({
            "scenario": self.scenario,
            "tls": self.tls_json(),
            "interrupted": self.interrupted,
            "empty_segment": self.empty_segment,
            "run_errors": self.run_errors,
            "elapsed_s": self.elapsed_s,
            "data_exhausted": self.data_exhausted,
            "started_at": self.started_at.map(rfc3339),
            "ended_at": self.ended_at.map(rfc3339),
            "users": { "spawned": self.users_spawned, "finished": self.users_finished },
            "totals": Self::group_json(&self.totals),
            "success_rate": self.success_rate(),
            "by_action": map(&self.by_action),
            "by_tenant": map(&self.by_tenant),
            "by_tag": map(&self.by_tag()),
            "by_source": map(&self.by_source),
            "by_status_class": map(&groups(&self.rec.by_status_class)),
            "errors": self.errors,
            "websocket": (!self.rec.ws.is_empty()).then(|| self.rec.ws.json()),
            "not_sent": self.not_sent,
            "skipped": self.skipped,
            "skipped_reasons": self.actions.iter().filter(|a| self.skipped.contains_key(&a.id)).filter_map(|a| Some((a.id.clone(), Value::from(a.skip_reason.clone()?)))).collect::<serde_json::Map<_, _>>(),
            "never_ran": self.never_ran(),
            "iterations": self.iterations,
            "dropped_iterations": self.dropped_iterations,
            "series": self.series.iter().map(|i| json!({ "t_s": i.t, "requests": i.requests, "failed": i.failed, "p50_ms": i.p50_ms, "p90_ms": i.p90_ms, "p95_ms": i.p95_ms, "p99_ms": i.p99_ms, "max_ms": i.max_ms, "users_active": i.users_active })).collect::<Vec<_>>(),
            "checks": self.checks.iter().map(|c| json!({ "action": c.action, "name": c.name, "passes": c.pass, "fails": c.fail })).collect::<Vec<_>>(),
            "thresholds": self.thresholds.iter().map(|v| json!({ "metric": v.name, "threshold": v.expr, "observed": v.observed, "ok": v.ok })).collect::<Vec<_>>(),
            "aborted_by": self.aborted_by,
            "user_errors": self.user_errors.iter().map(|e| json!({ "user": e.user, "tenant": e.tenant, "error": e.error })).collect::<Vec<_>>(),
            "pools": self.pools.iter().map(|p| json!({ "id": p.id, "name": p.name, "total": p.total, "allocated": p.allocated, "available": p.available })).collect::<Vec<_>>(),
            "target_counts": self.target_counts,
            "servers": self.servers.iter().map(|s| (s.name.clone(), json!({
                "url": s.url, "connections": s.connections, "requests": s.requests,
                "statuses": s.statuses.iter().map(|(c, n)| (c.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "resets": s.resets, "error": s.error,
            }))).collect::<serde_json::Map<_, _>>(),
            "user_sources": self.user_sources,
        })
    }
}

/// A wall-clock time as RFC 3339, in UTC to the millisecond (`2026-12-04T10:40:00.123Z`).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
