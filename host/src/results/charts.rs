//! What the HTML report and the live dashboard draw, as one JSON object (`data`): the run's
//! facts and configuration, its seconds as points, the latency histogram, status codes and
//! the tables. `host/assets/report.js` draws it with uPlot, in both.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::results::record::Interval;
use crate::results::report::{Group, Report, rfc3339};

/// Source addresses the tables list at most (the busiest); the page says how many there are.
pub const SHOWN_SOURCES: usize = 500;

/// The page's data for `r`: everything but its points (`points` adds them).
pub fn data(r: &Report) -> Value {
    json!({
        "title": r.scenario,
        "started_at": r.started_at.map(rfc3339),
        "ended_at": r.ended_at.map(rfc3339),
        "started_unix": r.started_at.map(unix_s),
        "summary": summary(r),
        "config": config(r),
        "histogram": histogram(r),
        "status": status_codes(r),
        "tables": {
            "action": rows(r.by_action.iter().map(|(k, g)| (k.as_str(), g, None))),
            "tenant": rows(r.by_tenant.iter().map(|(k, g)| (k.as_str(), g, None))),
            "source": sources(r),
        },
        "thresholds": r.thresholds.iter().map(|v| json!({
            "metric": v.name, "threshold": v.expr, "observed": v.observed, "ok": v.ok,
        })).collect::<Vec<_>>(),
        "checks": r.checks.iter().map(|c| json!({
            "action": c.action, "name": c.name, "passed": c.pass, "of": c.pass + c.fail,
        })).collect::<Vec<_>>(),
        "errors": r.errors.iter().map(|(k, n)| json!([k, n])).collect::<Vec<_>>(),
        "websocket": websocket(&r.rec.ws),
        "points": points(&trimmed(&r.series), 0.0),
    })
}

/// The WebSocket section (none without WebSocket actions): its figures, and a row a step.
fn websocket(w: &crate::results::ws::WsStats) -> Value {
    if w.is_empty() {
        return Value::Null;
    }
    let ms = |s: &crate::results::record::Stats, q: f64| (s.quantile_ms(q) * 100.0).round() / 100.0;
    json!({
        "sessions": w.sessions(),
        "failed_openings": w.connecting.failed,
        "connecting_p50_ms": ms(&w.connecting, 0.5),
        "connecting_p95_ms": ms(&w.connecting, 0.95),
        "msgs_sent": w.msgs_sent,
        "msgs_received": w.msgs_received,
        "steps": w.steps.iter().map(|(k, s)| json!([k, s.count, s.failed, ms(s, 0.5), ms(s, 0.95), ms(s, 0.99)])).collect::<Vec<_>>(),
    })
}

fn unix_s(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The series without a last sliver of an interval (the run's end), which would chart as a
/// spike.
fn trimmed(series: &[Interval]) -> Vec<Interval> {
    let mut s = series.to_vec();
    if let [.., before, last] = s.as_slice()
        && last.t - before.t < 0.5
    {
        s.pop();
    }
    s
}

/// Each interval as a point: seconds into the run at its end, rates over its length, its
/// percentiles, users, and requests a second per tenant and p90 per action.
pub fn points(series: &[Interval], before: f64) -> Vec<Value> {
    let mut last = before;
    series
        .iter()
        .map(|i| {
            let secs = (i.t - last).max(1e-9);
            last = i.t;
            json!({
                "t": i.t, "rps": i.requests as f64 / secs, "errors": i.failed as f64 / secs,
                "p50": i.p50_ms, "p90": i.p90_ms, "p95": i.p95_ms, "p99": i.p99_ms,
                "max": i.max_ms, "users": i.users_active,
                "tenants": i.by_tenant.iter().map(|(k, n, _)| (k.clone(), json!(*n as f64 / secs))).collect::<serde_json::Map<_, _>>(),
                "actions": i.by_action.iter().map(|(k, _, p90)| (k.clone(), json!(p90))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect()
}

fn summary(r: &Report) -> Value {
    json!({
        "elapsed_s": r.elapsed_s, "users_spawned": r.users_spawned,
        "users_finished": r.users_finished, "requests": r.totals.count, "ok": r.totals.ok,
        "failed": r.totals.failed, "success_rate": r.success_rate(), "iterations": r.iterations,
        "dropped_iterations": r.dropped_iterations, "interrupted": r.interrupted,
        "bytes_sent": r.totals.bytes_sent, "bytes_received": r.totals.bytes_received,
        "rps": if r.elapsed_s > 0.0 { r.totals.count as f64 / r.elapsed_s } else { 0.0 },
    })
}

/// The run's configuration as label and value pairs: actions, tenants, pools, thresholds.
fn config(r: &Report) -> Vec<(String, String)> {
    let mut c = vec![
        ("scenario".to_string(), r.scenario.clone()),
        (
            "actions".to_string(),
            r.actions
                .iter()
                .map(|a| a.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "tenants".to_string(),
            r.by_tenant.keys().cloned().collect::<Vec<_>>().join(", "),
        ),
    ];
    for p in &r.pools {
        c.push((
            format!("pool {}", p.id),
            format!(
                "{} addresses, {} allocated at the end",
                p.total, p.allocated
            ),
        ));
    }
    let id = r.identity.json();
    if let Some(seg) = id.get("segment").and_then(Value::as_str) {
        c.push(("segment".into(), seg.to_string()));
    }
    c
}

/// The whole run's latencies in 40 buckets of equal width on a log scale, first to last
/// sample: `[lower edge ms, upper edge ms, count]`.
fn histogram(r: &Report) -> Vec<[f64; 3]> {
    let h = &r.rec.totals.latency;
    if h.is_empty() {
        return Vec::new();
    }
    let (lo, hi) = (h.min().max(1) as f64, h.max().max(1) as f64 + 1.0);
    let n = 40;
    let step = (hi / lo).powf(1.0 / n as f64).max(1.0 + 1e-9);
    let mut out = Vec::with_capacity(n);
    let mut a = lo;
    for _ in 0..n {
        let b = a * step;
        let count = h.count_between(a as u64, (b as u64).saturating_sub(1).max(a as u64));
        out.push([a / 1000.0, b / 1000.0, count as f64]);
        a = b;
    }
    out
}

/// Requests by status code over the run (`error`: no answer), most first.
fn status_codes(r: &Report) -> Vec<(String, u64)> {
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    for ((_, _, status), n) in &r.rec.by_status {
        *by.entry(crate::results::record::status_text(*status))
            .or_default() += n;
    }
    let mut v: Vec<(String, u64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

fn row(name: &str, g: &Group, tenant: Option<String>) -> Value {
    let l = g.latencies();
    let mut v = json!([
        name, g.count, g.ok, g.failed, l[0], l[1], l[2], l[3], l[4], l[5]
    ]);
    if let (Some(t), Some(a)) = (tenant, v.as_array_mut()) {
        a.insert(1, t.into());
    }
    v
}

fn rows<'a>(it: impl Iterator<Item = (&'a str, &'a Group, Option<String>)>) -> Vec<Value> {
    it.map(|(k, g, t)| row(k, g, t)).collect()
}

/// The busiest `SHOWN_SOURCES` addresses, sorted as addresses, each with its tenants.
fn sources(r: &Report) -> Value {
    let mut all: Vec<(&String, &Group)> = r.by_source.iter().collect();
    all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
    all.truncate(SHOWN_SOURCES);
    all.sort_by_key(|(k, _)| {
        (
            k.parse::<IpAddr>().ok().is_none(),
            k.parse::<IpAddr>().ok(),
            *k,
        )
    });
    let tenants = |k: &str| {
        r.rec
            .source_tenants
            .get(k)
            .map(|ts| ts.iter().map(|t| &**t).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    json!({
        "rows": rows(all.iter().map(|(k, g)| (k.as_str(), *g, Some(tenants(k))))),
        "of": r.by_source.len(),
    })
}
