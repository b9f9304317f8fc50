//! Thresholds, as k6 writes them: a top-level `thresholds:` map of metric (with an optional
//! tag filter) to expressions, judged on what was recorded. A crossed threshold fails the run
//! (exit 99, as k6); one with `abort_on_fail` stops it while it runs.

use std::fmt;

use crate::format::threshold::{Agg, Metric, Threshold};
use crate::results::record::{Recorder, Stats};

/// What a threshold is judged on.
pub struct Observed<'a> {
    pub rec: &'a Recorder,
    pub checks: &'a [crate::results::record::CheckResult],
    pub iterations: u64,
    pub elapsed_s: f64,
}

impl Threshold {
    fn stats<'a>(&self, rec: &'a Recorder) -> Option<std::borrow::Cow<'a, Stats>> {
        use std::borrow::Cow;
        if self.tag.is_some() {
            // The tagged actions' requests together (of the tenant, with a tenant filter).
            let parts: Vec<&Stats> = self
                .tagged
                .iter()
                .filter_map(|a| match &self.tenant {
                    None => rec.by_action.get(a),
                    Some(t) => rec.by_action_tenant.get(&(
                        std::sync::Arc::from(a.as_str()),
                        std::sync::Arc::from(t.as_str()),
                    )),
                })
                .collect();
            return crate::results::record::Stats::sum(&parts).map(Cow::Owned);
        }
        let found = match (&self.action, &self.tenant) {
            (None, None) => Some(&rec.totals),
            (Some(a), None) => rec.by_action.get(a),
            (None, Some(t)) => rec.by_tenant.get(t),
            (Some(a), Some(t)) => rec.by_action_tenant.get(&(
                std::sync::Arc::from(a.as_str()),
                std::sync::Arc::from(t.as_str()),
            )),
        };
        found.map(Cow::Borrowed)
    }

    /// The observed value, or None when nothing was recorded for it.
    pub fn observe(&self, o: &Observed) -> Option<f64> {
        let per_s = |n: u64| {
            if o.elapsed_s > 0.0 {
                n as f64 / o.elapsed_s
            } else {
                0.0
            }
        };
        if self.metric == Metric::Iterations {
            return Some(match self.agg {
                Agg::Count => o.iterations as f64,
                _ => per_s(o.iterations),
            });
        }
        if self.metric == Metric::Checks {
            let (pass, all) = o
                .checks
                .iter()
                .filter(|c| self.action.as_ref().is_none_or(|a| *a == c.action))
                .fold((0, 0), |(p, n), c| (p + c.pass, n + c.pass + c.fail));
            return (all > 0).then(|| pass as f64 / all as f64);
        }
        if self.metric.is_ws() {
            return self.observe_ws(o);
        }
        let s = self.stats(o.rec);
        Some(match (self.metric, self.agg) {
            (Metric::Reqs, Agg::Count) => s.map_or(0, |s| s.count) as f64,
            (Metric::Reqs, _) => per_s(s.map_or(0, |s| s.count)),
            (Metric::Failed, _) => {
                let s = s.filter(|s| s.count > 0)?;
                s.failed as f64 / s.count as f64
            }
            (_, agg) => trend(s.filter(|s| s.count > 0)?.as_ref(), agg),
        })
    }

    /// A WebSocket metric's value (k6's names): counts and rates of sessions and messages,
    /// latencies of openings and pings.
    fn observe_ws(&self, o: &Observed) -> Option<f64> {
        let ws = &o.rec.ws;
        let count = match self.metric {
            Metric::WsSessions => Some(ws.sessions()),
            Metric::WsMsgsSent => Some(ws.msgs_sent),
            Metric::WsMsgsReceived => Some(ws.msgs_received),
            _ => None,
        };
        if let Some(n) = count {
            return Some(match self.agg {
                Agg::Count => n as f64,
                _ if o.elapsed_s > 0.0 => n as f64 / o.elapsed_s,
                _ => 0.0,
            });
        }
        let s = match self.metric {
            Metric::WsPing => &ws.ping,
            _ => &ws.connecting,
        };
        (s.count > 0).then(|| trend(s, self.agg))
    }

    /// Whether it holds. Nothing recorded for a latency or failure threshold fails it: a
    /// threshold on requests that never happened proves nothing.
    pub fn holds(&self, o: &Observed) -> (bool, Option<f64>) {
        let Some(v) = self.observe(o) else {
            return (false, None);
        };
        let ok = match self.op {
            "<" => v < self.value,
            "<=" => v <= self.value,
            ">" => v > self.value,
            ">=" => v >= self.value,
            "==" => v == self.value,
            _ => v != self.value,
        };
        (ok, Some(v))
    }
}

/// A latency aggregate, in milliseconds.
fn trend(s: &Stats, agg: Agg) -> f64 {
    match agg {
        Agg::P(q) => s.quantile_ms(q / 100.0),
        Agg::Med => s.quantile_ms(0.5),
        Agg::Avg => s.mean_ms(),
        Agg::Min => s.min_ms(),
        _ => s.max_ms(),
    }
}

/// A threshold's verdict, for the report.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub name: String,
    pub expr: String,
    pub observed: Option<f64>,
    pub ok: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seen = match self.observed {
            Some(v) => format!("{v:.4}"),
            None => "no data".into(),
        };
        write!(
            f,
            "{} {} {} (observed {seen})",
            if self.ok { "ok  " } else { "FAIL" },
            self.name,
            self.expr
        )
    }
}

pub fn judge(thresholds: &[Threshold], o: &Observed) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|t| {
            let (ok, observed) = t.holds(o);
            Verdict {
                name: t.name.clone(),
                expr: t.expr.clone(),
                observed,
                ok,
            }
        })
        .collect()
}
