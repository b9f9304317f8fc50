//! Result files (`--result FILE`): what a run recorded, counters and serialized HdrHistograms,
//! so that the results of several processes merge exactly (`scheduler merge`): histograms are
//! added, not averaged, and the thresholds are judged again on the sum.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde_json::{Value, json};

use crate::results::record::Stats;
use crate::results::record::{CheckResult, Interval, Recorder};
use crate::results::report::{Collected, DeclaredAction, Report, UserError};
use crate::results::verdict;

const FORMAT: &str = "scheduler-result/1";

fn stats_json(s: &Stats) -> Value {
    let mut bytes = Vec::new();
    let _ = V2Serializer::new().serialize(&s.latency, &mut bytes);
    json!({
        "count": s.count, "ok": s.ok, "failed": s.failed,
        "bytes_sent": s.bytes_sent, "bytes_received": s.bytes_received,
        "latency": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

fn stats_from(v: &Value, what: &str) -> Result<Stats, String> {
    let n = |k: &str| {
        v[k].as_u64()
            .ok_or_else(|| format!("{what}: {k} is not a count"))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v["latency"].as_str().unwrap_or_default())
        .map_err(|e| format!("{what}: latency: {e}"))?;
    let mut latency: hdrhistogram::Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("{what}: latency histogram: {e:?}"))?;
    latency.auto(true);
    Ok(Stats {
        count: n("count")?,
        ok: n("ok")?,
        failed: n("failed")?,
        bytes_sent: n("bytes_sent")?,
        bytes_received: n("bytes_received")?,
        latency,
    })
}

/// The actions that carry tag `(name, value)`.
fn tagged_with(declared: &[DeclaredAction], (name, value): &(String, String)) -> Vec<String> {
    declared
        .iter()
        .filter(|a| a.tags.iter().any(|(k, v)| k == name && v == value))
        .map(|a| a.id.clone())
        .collect()
}

fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn from_unix_ms(ms: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

/// The result file of a finished run.
pub fn to_json(r: &Report) -> Value {
    let groups = |m: &BTreeMap<String, Stats>| -> Value {
        Value::Object(m.iter().map(|(k, s)| (k.clone(), stats_json(s))).collect())
    };
    json!({
        "format": FORMAT,
        "scenario": r.scenario,
        "elapsed_s": r.elapsed_s,
        "started_at_ms": r.started_at.map(unix_ms),
        "data_exhausted": r.data_exhausted,
        "ended_at_ms": r.ended_at.map(unix_ms),
        "interrupted": r.interrupted,
        "users": { "spawned": r.users_spawned, "finished": r.users_finished },
        "iterations": r.iterations,
        "dropped_iterations": r.dropped_iterations,
        "user_errors": r.user_errors.iter().map(|e| json!({ "user": e.user, "tenant": e.tenant, "error": e.error })).collect::<Vec<_>>(),
        "run_errors": r.run_errors,
        "totals": stats_json(&r.rec.totals),
        "by_action": groups(&r.rec.by_action),
        "by_tenant": groups(&r.rec.by_tenant),
        "by_status_class": groups(&r.rec.by_status_class),
        "by_source": Value::Object(r.rec.by_source.iter().map(|(k, s)| (k.to_string(), stats_json(s))).collect()),
        "by_action_tenant": r.rec.by_action_tenant.iter().map(|((a, t), s)| json!({ "action": &**a, "tenant": &**t, "stats": stats_json(s) })).collect::<Vec<_>>(),
        "by_status": r.rec.by_status.iter().map(|((a, t, st), n)| json!([&**a, &**t, crate::results::record::status_text(*st), n])).collect::<Vec<_>>(),
        "errors": r.rec.errors,
        "not_sent": r.rec.not_sent,
        "skipped": r.rec.skipped,
        "actions": r.actions.iter().map(|a| json!({ "id": a.id, "skip_reason": a.skip_reason, "tags": a.tags.iter().cloned().collect::<BTreeMap<_, _>>() })).collect::<Vec<_>>(),
        "user_sources": r.rec.user_sources,
        "source_tenants": r.rec.source_tenants.iter().map(|(k, ts)| (k.to_string(), json!(ts.iter().map(|t| t.to_string()).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>(),
        "checks": r.checks.iter().map(|c| json!({ "action": c.action, "name": c.name, "passes": c.pass, "fails": c.fail })).collect::<Vec<_>>(),
        "thresholds": r.thresholds.iter().map(|v| json!({ "metric": v.name, "threshold": v.expr })).collect::<Vec<_>>(),
        "identity": r.identity.json(),
        "series": r.series.iter().map(interval_json).collect::<Vec<_>>(),
        "websocket": ws_json(&r.rec.ws),
    })
}

fn ws_json(w: &crate::results::ws::WsStats) -> Value {
    json!({
        "connecting": stats_json(&w.connecting),
        "ping": stats_json(&w.ping),
        "msgs_sent": w.msgs_sent,
        "msgs_received": w.msgs_received,
        "steps": Value::Object(w.steps.iter().map(|(k, s)| (k.clone(), stats_json(s))).collect()),
    })
}

/// A result file's WebSocket figures (none in files of runs without them, or older ones).
fn ws_from(v: &Value, what: &str) -> Result<crate::results::ws::WsStats, String> {
    let mut w = crate::results::ws::WsStats::default();
    if v.is_null() {
        return Ok(w);
    }
    w.connecting = stats_from(&v["connecting"], what)?;
    w.ping = stats_from(&v["ping"], what)?;
    w.msgs_sent = v["msgs_sent"].as_u64().unwrap_or(0);
    w.msgs_received = v["msgs_received"].as_u64().unwrap_or(0);
    for (k, s) in v["steps"].as_object().into_iter().flatten() {
        w.steps.insert(k.clone(), stats_from(s, what)?);
    }
    Ok(w)
}

fn interval_json(i: &Interval) -> Value {
    json!({
        "t_s": i.t, "requests": i.requests, "failed": i.failed, "p50_ms": i.p50_ms,
        "p90_ms": i.p90_ms, "p95_ms": i.p95_ms, "p99_ms": i.p99_ms, "max_ms": i.max_ms, "users_active": i.users_active,
    })
}

/// The processes' intervals side by side, second by second: counts and users added; the
/// percentiles are one process's own, or with several the highest of theirs (an upper bound:
/// intervals keep no histograms).
fn add_series(into: &mut Vec<Interval>, v: &Value) {
    for (k, x) in v["series"].as_array().into_iter().flatten().enumerate() {
        let f = |key: &str| x[key].as_f64().unwrap_or(0.0);
        let n = |key: &str| x[key].as_u64().unwrap_or(0);
        if k == into.len() {
            into.push(Interval {
                t: f("t_s"),
                requests: 0,
                failed: 0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
                users_active: 0,
                by_action: Default::default(),
                by_tenant: Default::default(),
                by_tag: Default::default(),
            });
        }
        let i = &mut into[k];
        i.t = i.t.max(f("t_s"));
        i.requests += n("requests");
        i.failed += n("failed");
        i.users_active += n("users_active");
        i.p50_ms = i.p50_ms.max(f("p50_ms"));
        i.p90_ms = i.p90_ms.max(f("p90_ms"));
        i.p95_ms = i.p95_ms.max(f("p95_ms"));
        i.p99_ms = i.p99_ms.max(f("p99_ms"));
        i.max_ms = i.max_ms.max(f("max_ms"));
    }
}

fn add(into: &mut Stats, s: &Stats) -> Result<(), String> {
    into.count += s.count;
    into.ok += s.ok;
    into.failed += s.failed;
    into.bytes_sent += s.bytes_sent;
    into.bytes_received += s.bytes_received;
    into.latency
        .add(&s.latency)
        .map_err(|e| format!("adding histograms: {e:?}"))
}

fn add_to<K: Ord>(m: &mut BTreeMap<K, Stats>, k: K, s: Stats) -> Result<(), String> {
    match m.get_mut(&k) {
        Some(g) => add(g, &s),
        None => {
            m.insert(k, s);
            Ok(())
        }
    }
}

/// The report of several result files together, its thresholds judged on the sum.
pub fn merge(files: &[(String, Value)]) -> Result<Report, String> {
    let mut m = Merged::default();
    for (path, v) in files {
        add_series(&mut m.series, v);
        if v["format"] != FORMAT {
            return Err(format!("{path}: not a result file ({FORMAT})"));
        }
        m.add_run(path, v);
        add_groups(&mut m.c.rec, path, v)?;
        add_sources(&mut m.c.rec, v);
        m.add_checks(v);
        m.add_declared(v);
        if m.thresholds.is_empty() {
            for t in v["thresholds"].as_array().into_iter().flatten() {
                m.thresholds.push((
                    t["metric"].as_str().unwrap_or_default().into(),
                    t["threshold"].as_str().unwrap_or_default().into(),
                ));
            }
        }
    }
    m.report(files)
}

/// What the result files add up to so far.
#[derive(Default)]
struct Merged {
    c: Collected,
    elapsed: f64,
    interrupted: bool,
    iterations: u64,
    dropped: u64,
    name: String,
    checks: Vec<CheckResult>,
    thresholds: Vec<(String, String)>,
    declared: Vec<DeclaredAction>,
    series: Vec<Interval>,
}

impl Merged {
    /// The run's length, iterations, users and errors.
    fn add_run(&mut self, path: &str, v: &Value) {
        self.name = v["scenario"].as_str().unwrap_or_default().to_string();
        // The processes ran side by side: the run lasted as long as the longest.
        self.elapsed = self.elapsed.max(v["elapsed_s"].as_f64().unwrap_or(0.0));
        self.interrupted |= v["interrupted"] == true;
        self.iterations += v["iterations"].as_u64().unwrap_or(0);
        self.dropped += v["dropped_iterations"].as_u64().unwrap_or(0);
        let c = &mut self.c;
        c.users_spawned += v["users"]["spawned"].as_u64().unwrap_or(0);
        c.users_finished += v["users"]["finished"].as_u64().unwrap_or(0);
        for e in v["user_errors"].as_array().into_iter().flatten() {
            c.user_errors.push(UserError {
                user: e["user"].as_u64().unwrap_or(0) as u32,
                tenant: e["tenant"].as_str().unwrap_or_default().into(),
                error: e["error"].as_str().unwrap_or_default().into(),
            });
        }
        for e in v["run_errors"].as_array().into_iter().flatten() {
            c.run_errors
                .push(format!("{path}: {}", e.as_str().unwrap_or_default()));
        }
    }

    /// Each check's passes and fails, by its place in the scenario.
    fn add_checks(&mut self, v: &Value) {
        for (i, ch) in v["checks"].as_array().into_iter().flatten().enumerate() {
            let (p, f) = (
                ch["passes"].as_u64().unwrap_or(0),
                ch["fails"].as_u64().unwrap_or(0),
            );
            match self.checks.get_mut(i) {
                Some(c) => {
                    c.pass += p;
                    c.fail += f;
                }
                None => self.checks.push(CheckResult {
                    action: ch["action"].as_str().unwrap_or_default().into(),
                    name: ch["name"].as_str().unwrap_or_default().into(),
                    pass: p,
                    fail: f,
                }),
            }
        }
    }

    /// The scenario's actions (once each), with their skip reasons and tags.
    fn add_declared(&mut self, v: &Value) {
        for a in v["actions"].as_array().into_iter().flatten() {
            let id = a["id"].as_str().unwrap_or_default().to_string();
            if self.declared.iter().any(|d| d.id == id) {
                continue;
            }
            let tags = a["tags"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            self.declared.push(DeclaredAction {
                id,
                skip_reason: a["skip_reason"].as_str().map(str::to_string),
                tags,
            });
        }
    }

    /// The thresholds, read again from their text (their tag filters over the declared
    /// actions).
    fn judged(&self) -> Result<Vec<crate::format::threshold::Threshold>, String> {
        let mut judged = Vec::new();
        for (metric, expr) in &self.thresholds {
            let (m, filter) = crate::format::threshold::parse_name(metric)?;
            let (agg, op, value) = crate::format::threshold::parse_expr(m, expr)?;
            judged.push(crate::format::threshold::Threshold {
                name: metric.clone(),
                metric: m,
                tagged: filter
                    .tag
                    .as_ref()
                    .map(|t| tagged_with(&self.declared, t))
                    .unwrap_or_default(),
                action: filter.action,
                tenant: filter.tenant,
                tag: filter.tag,
                expr: expr.clone(),
                agg,
                op,
                value,
                abort_on_fail: false,
                delay_abort: std::time::Duration::ZERO,
            });
        }
        Ok(judged)
    }

    /// The merged report, its thresholds judged over the whole.
    fn report(self, files: &[(String, Value)]) -> Result<Report, String> {
        let judged = self.judged()?;
        let mut report = Report::new(
            &self.name,
            self.elapsed,
            self.c,
            Vec::new(),
            self.interrupted,
        );
        // The whole run: from the first process's start to the last one's end.
        let at = |key: &'static str| files.iter().filter_map(move |(_, v)| v[key].as_u64());
        report.started_at = at("started_at_ms").min().map(from_unix_ms);
        report.ended_at = at("ended_at_ms").max().map(from_unix_ms);
        let mut out: Vec<String> = files
            .iter()
            .flat_map(|(_, v)| v["data_exhausted"].as_array().cloned().unwrap_or_default())
            .filter_map(|d| d.as_str().map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        report.data_exhausted = out;
        report.declare(self.declared);
        report.series = self.series;
        report.iterations = self.iterations;
        report.dropped_iterations = self.dropped;
        report.checks = self.checks;
        report.thresholds = verdict::judge(
            &judged,
            &verdict::Observed {
                rec: &report.rec,
                checks: &report.checks,
                iterations: self.iterations,
                elapsed_s: self.elapsed,
            },
        );
        Ok(report)
    }
}

/// The statistics of every group (totals, by action, tenant, status, source), the WebSocket
/// counters, errors and what was not sent.
fn add_groups(rec: &mut Recorder, path: &str, v: &Value) -> Result<(), String> {
    let at = |k: &str| format!("{path}: {k}");
    add(&mut rec.totals, &stats_from(&v["totals"], &at("totals"))?)?;
    rec.ws.merge(&ws_from(&v["websocket"], &at("websocket"))?);
    for (key, m) in [
        ("by_action", &mut rec.by_action),
        ("by_tenant", &mut rec.by_tenant),
        ("by_status_class", &mut rec.by_status_class),
    ] {
        for (k, s) in v[key].as_object().into_iter().flatten() {
            add_to(m, k.clone(), stats_from(s, &at(key))?)?;
        }
    }
    for (k, s) in v["by_source"].as_object().into_iter().flatten() {
        let s = stats_from(s, &at("by_source"))?;
        match rec.by_source.get_mut(k.as_str()) {
            Some(g) => add(g, &s)?,
            None => {
                rec.by_source.insert(Arc::from(k.as_str()), s);
            }
        }
    }
    for e in v["by_action_tenant"].as_array().into_iter().flatten() {
        let key = (
            Arc::from(e["action"].as_str().unwrap_or_default()),
            Arc::from(e["tenant"].as_str().unwrap_or_default()),
        );
        add_to(
            &mut rec.by_action_tenant,
            key,
            stats_from(&e["stats"], &at("by_action_tenant"))?,
        )?;
    }
    for e in v["by_status"].as_array().into_iter().flatten() {
        let s = |i: usize| Arc::from(e[i].as_str().unwrap_or_default());
        // "error" (no answer) is the one status that is not a number.
        let status = e[2].as_str().and_then(|c| c.parse().ok());
        *rec.by_status.entry((s(0), s(1), status)).or_insert(0) += e[3].as_u64().unwrap_or(0);
    }
    for (key, m) in [
        ("errors", &mut rec.errors),
        ("not_sent", &mut rec.not_sent),
        ("skipped", &mut rec.skipped),
    ] {
        for (k, n) in v[key].as_object().into_iter().flatten() {
            *m.entry(k.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
        }
    }
    Ok(())
}

/// Which addresses each user sent from, and which tenants each address served.
fn add_sources(rec: &mut Recorder, v: &Value) {
    for (u, list) in v["user_sources"].as_object().into_iter().flatten() {
        let u: u32 = u.parse().unwrap_or(0);
        let mine = rec.user_sources.entry(u).or_default();
        for ip in list.as_array().into_iter().flatten() {
            let ip = ip.as_str().unwrap_or_default().to_string();
            if !mine.contains(&ip) {
                mine.push(ip);
            }
        }
    }
    for (src, list) in v["source_tenants"].as_object().into_iter().flatten() {
        let mine = rec
            .source_tenants
            .entry(Arc::from(src.as_str()))
            .or_default();
        for t in list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !mine.iter().any(|m| &**m == t) {
                mine.push(Arc::from(t));
            }
        }
    }
}
