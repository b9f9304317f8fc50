//! Samples from a run, and the report made of them: text, JSON and Prometheus metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};

/// One request. The texts are shared with the user's other samples (a run keeps every sample).
#[derive(Debug, Clone)]
pub struct Sample {
    pub action: Arc<str>,
    pub tenant: Arc<str>,
    pub user: u32,
    /// The source address the request went out from ("-" when unknown).
    pub source: Arc<str>,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_us: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub error: Option<String>,
}

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

#[derive(Debug, Default)]
pub struct Collected {
    pub samples: Vec<Sample>,
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
    pub p99_ms: f64,
    pub max_ms: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx] as f64 / 1000.0
}

fn group<'a>(samples: impl Iterator<Item = &'a Sample>) -> Group {
    let mut lat = Vec::new();
    let mut g = Group::default();
    for s in samples {
        g.count += 1;
        if s.ok {
            g.ok += 1;
        } else {
            g.failed += 1;
        }
        g.bytes_sent += s.bytes_sent;
        g.bytes_received += s.bytes_received;
        lat.push(s.latency_us);
    }
    lat.sort_unstable();
    g.p50_ms = quantile(&lat, 0.50);
    g.p90_ms = quantile(&lat, 0.90);
    g.p99_ms = quantile(&lat, 0.99);
    g.max_ms = lat.last().map(|&x| x as f64 / 1000.0).unwrap_or(0.0);
    g
}

fn by<F: Fn(&Sample) -> String>(samples: &[Sample], key: F) -> BTreeMap<String, Group> {
    let mut keys: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        keys.entry(key(s)).or_default().push(s);
    }
    keys.into_iter()
        .map(|(k, v)| (k, group(v.into_iter())))
        .collect()
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
    pub user_errors: Vec<UserError>,
    pub pools: Vec<PoolState>,
    /// The demo target's own count of requests per source address.
    pub target_counts: Option<BTreeMap<String, u64>>,
    pub interrupted: bool,
    pub run_errors: Vec<String>,
    /// The source addresses each user sent from, in order of first use.
    pub user_sources: BTreeMap<u32, Vec<String>>,
}

impl Report {
    pub fn new(
        scenario: &str,
        elapsed_s: f64,
        c: &Collected,
        pools: Vec<PoolState>,
        interrupted: bool,
    ) -> Report {
        let mut errors = BTreeMap::new();
        for s in &c.samples {
            if let Some(e) = &s.error {
                *errors.entry(e.clone()).or_insert(0) += 1;
            }
        }
        let mut user_sources: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for s in &c.samples {
            let v = user_sources.entry(s.user).or_default();
            if !v.iter().any(|x| **x == *s.source) {
                v.push(s.source.to_string());
            }
        }
        Report {
            user_sources,
            scenario: scenario.to_string(),
            elapsed_s,
            users_spawned: c.users_spawned,
            users_finished: c.users_finished,
            totals: group(c.samples.iter()),
            by_action: by(&c.samples, |s| s.action.to_string()),
            by_tenant: by(&c.samples, |s| s.tenant.to_string()),
            by_source: by(&c.samples, |s| s.source.to_string()),
            errors,
            user_errors: c.user_errors.clone(),
            pools,
            target_counts: None,
            interrupted,
            run_errors: c.run_errors.clone(),
        }
    }

    pub fn success_rate(&self) -> f64 {
        if self.totals.count == 0 {
            0.0
        } else {
            self.totals.ok as f64 / self.totals.count as f64
        }
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nscenario {}{}",
            self.scenario,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "{:.1}s, users {} spawned / {} finished, requests {} ({} ok, {} failed, {:.1}% success), {:.1} req/s",
            self.elapsed_s,
            self.users_spawned,
            self.users_finished,
            self.totals.count,
            self.totals.ok,
            self.totals.failed,
            self.success_rate() * 100.0,
            if self.elapsed_s > 0.0 {
                self.totals.count as f64 / self.elapsed_s
            } else {
                0.0
            }
        );
        let _ = writeln!(
            s,
            "bytes sent {}, received {}",
            self.totals.bytes_sent, self.totals.bytes_received
        );
        let table = |s: &mut String,
                     title: &str,
                     rows: &BTreeMap<String, Group>,
                     extra: Option<&BTreeMap<String, u64>>| {
            let _ = writeln!(
                s,
                "\n{:<22} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}{}",
                title,
                "requests",
                "ok",
                "failed",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                if extra.is_some() { "  target saw" } else { "" }
            );
            for (k, g) in rows {
                let _ = write!(
                    s,
                    "{:<22} {:>8} {:>8} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    k, g.count, g.ok, g.failed, g.p50_ms, g.p90_ms, g.p99_ms, g.max_ms
                );
                if let Some(e) = extra {
                    let _ = write!(s, "  {:>10}", e.get(k).copied().unwrap_or(0));
                }
                s.push('\n');
            }
        };
        table(&mut s, "action", &self.by_action, None);
        table(&mut s, "tenant", &self.by_tenant, None);
        table(
            &mut s,
            "source address",
            &self.by_source,
            self.target_counts.as_ref(),
        );
        if !self.errors.is_empty() {
            let _ = writeln!(s, "\nerrors:");
            for (k, n) in &self.errors {
                let _ = writeln!(s, "  {k}: {n}");
            }
        }
        if !self.user_errors.is_empty() {
            let _ = writeln!(s, "\nusers that could not run or failed:");
            for e in self.user_errors.iter().take(20) {
                let _ = writeln!(s, "  user {} ({}): {}", e.user, e.tenant, e.error);
            }
            if self.user_errors.len() > 20 {
                let _ = writeln!(s, "  ... and {} more", self.user_errors.len() - 20);
            }
        }
        if !self.run_errors.is_empty() {
            let _ = writeln!(s, "\nthe run failed:");
            for e in &self.run_errors {
                let _ = writeln!(s, "  {e}");
            }
        }
        let _ = writeln!(s, "\nip pools at the end:");
        for p in &self.pools {
            let _ = writeln!(
                s,
                "  {} ({}): {} allocated, {} available of {}",
                p.id, p.name, p.allocated, p.available, p.total
            );
        }
        s
    }

    fn group_json(g: &Group) -> Value {
        json!({ "requests": g.count, "ok": g.ok, "failed": g.failed, "p50_ms": g.p50_ms, "p90_ms": g.p90_ms,
                "p99_ms": g.p99_ms, "max_ms": g.max_ms, "bytes_sent": g.bytes_sent, "bytes_received": g.bytes_received })
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
            "interrupted": self.interrupted,
            "run_errors": self.run_errors,
            "elapsed_s": self.elapsed_s,
            "users": { "spawned": self.users_spawned, "finished": self.users_finished },
            "totals": Self::group_json(&self.totals),
            "success_rate": self.success_rate(),
            "by_action": map(&self.by_action),
            "by_tenant": map(&self.by_tenant),
            "by_source": map(&self.by_source),
            "errors": self.errors,
            "user_errors": self.user_errors.iter().map(|e| json!({ "user": e.user, "tenant": e.tenant, "error": e.error })).collect::<Vec<_>>(),
            "pools": self.pools.iter().map(|p| json!({ "id": p.id, "name": p.name, "total": p.total, "allocated": p.allocated, "available": p.available })).collect::<Vec<_>>(),
            "target_counts": self.target_counts,
            "user_sources": self.user_sources,
        })
    }

    /// Prometheus text format.
    pub fn metrics(&self, samples: &[Sample]) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# TYPE scheduler_users_spawned_total counter\nscheduler_users_spawned_total {}",
            self.users_spawned
        );
        let _ = writeln!(
            s,
            "# TYPE scheduler_users_active gauge\nscheduler_users_active {}",
            self.users_spawned - self.users_finished
        );
        let _ = writeln!(s, "# TYPE scheduler_ip_pool_available gauge");
        for p in &self.pools {
            let _ = writeln!(
                s,
                "scheduler_ip_pool_available{{pool=\"{}\"}} {}",
                p.id, p.available
            );
        }
        let _ = writeln!(s, "# TYPE scheduler_ip_pool_allocated gauge");
        for p in &self.pools {
            let _ = writeln!(
                s,
                "scheduler_ip_pool_allocated{{pool=\"{}\"}} {}",
                p.id, p.allocated
            );
        }
        let _ = writeln!(
            s,
            "# TYPE executor_tasks_executed_total counter\nexecutor_tasks_executed_total {}",
            self.totals.count
        );
        let _ = writeln!(
            s,
            "# TYPE executor_tasks_success_total counter\nexecutor_tasks_success_total {}",
            self.totals.ok
        );
        let _ = writeln!(s, "# TYPE http_requests_total counter");
        let mut counts: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for x in samples {
            let status = x
                .status
                .map(|c| c.to_string())
                .unwrap_or_else(|| "error".into());
            *counts
                .entry((x.action.to_string(), x.tenant.to_string(), status))
                .or_insert(0) += 1;
        }
        for ((a, t, st), n) in &counts {
            let _ = writeln!(
                s,
                "http_requests_total{{action=\"{a}\",tenant=\"{t}\",status=\"{st}\"}} {n}"
            );
        }
        let _ = writeln!(s, "# TYPE http_requests_duration_seconds histogram");
        let bounds = [
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        for action in self.by_action.keys() {
            let lat: Vec<f64> = samples
                .iter()
                .filter(|x| *x.action == **action)
                .map(|x| x.latency_us as f64 / 1e6)
                .collect();
            for b in bounds {
                let n = lat.iter().filter(|&&l| l <= b).count();
                let _ = writeln!(
                    s,
                    "http_requests_duration_seconds_bucket{{action=\"{action}\",le=\"{b}\"}} {n}"
                );
            }
            let _ = writeln!(
                s,
                "http_requests_duration_seconds_bucket{{action=\"{action}\",le=\"+Inf\"}} {}",
                lat.len()
            );
            let _ = writeln!(
                s,
                "http_requests_duration_seconds_sum{{action=\"{action}\"}} {}",
                lat.iter().sum::<f64>()
            );
            let _ = writeln!(
                s,
                "http_requests_duration_seconds_count{{action=\"{action}\"}} {}",
                lat.len()
            );
        }
        s
    }
}
