//! Thresholds, as k6 writes them: a top-level `thresholds:` map of metric (with an optional
//! tag filter) to expressions, judged on what was recorded. A crossed threshold fails the run
//! (exit 99, as k6); one with `abort_on_fail` stops it while it runs.

use std::fmt;
use std::time::Duration;

use crate::record::{Recorder, Stats};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Request latency (ms): p(N), avg, med, min, max.
    Duration,
    /// Share of sent requests that failed: rate.
    Failed,
    /// Requests sent: count, rate (per second).
    Reqs,
    /// Workflow runs completed: count, rate.
    Iterations,
    /// Checks that passed: rate.
    Checks,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    P(f64),
    Avg,
    Med,
    Min,
    Max,
    Rate,
    Count,
}

#[derive(Debug, Clone)]
pub struct Threshold {
    /// As written: `http_req_duration{action:login}`.
    pub name: String,
    pub metric: Metric,
    pub action: Option<String>,
    pub tenant: Option<String>,
    /// As written: `p(95)<500`.
    pub expr: String,
    pub agg: Agg,
    pub op: &'static str,
    pub value: f64,
    pub abort_on_fail: bool,
    pub delay_abort: Duration,
}

/// `http_req_duration{action:login,tenant:a}` into the metric and its filter.
pub fn parse_name(name: &str) -> Result<(Metric, Option<String>, Option<String>), String> {
    let (base, tags) = match name.split_once('{') {
        Some((b, rest)) => (
            b.trim(),
            Some(
                rest.strip_suffix('}')
                    .ok_or_else(|| format!("{name:?}: unclosed {{"))?,
            ),
        ),
        None => (name.trim(), None),
    };
    let metric = match base {
        "http_req_duration" => Metric::Duration,
        "http_req_failed" => Metric::Failed,
        "http_reqs" => Metric::Reqs,
        "iterations" => Metric::Iterations,
        "checks" => Metric::Checks,
        other => {
            return Err(format!(
                "unknown metric {other:?} (http_req_duration, http_req_failed, http_reqs, iterations, checks)"
            ));
        }
    };
    let (mut action, mut tenant) = (None, None);
    for tag in tags.into_iter().flat_map(|t| t.split(',')) {
        let (k, v) = tag
            .split_once(':')
            .ok_or_else(|| format!("tag {tag:?}: expected key:value"))?;
        let v = v.trim().trim_matches(['"', '\'']).to_string();
        match k.trim() {
            "action" | "name" => action = Some(v),
            "tenant" => tenant = Some(v),
            other => return Err(format!("unknown tag {other:?} (action, tenant)")),
        }
    }
    if metric == Metric::Iterations && (action.is_some() || tenant.is_some()) {
        return Err("iterations takes no tag filter".into());
    }
    if metric == Metric::Checks && tenant.is_some() {
        return Err("checks take an action filter only".into());
    }
    Ok((metric, action, tenant))
}

/// `p(95)<500`, `avg<=200ms`, `rate<0.01`, `count>100`: aggregation, operator, value (a
/// duration's in milliseconds; `ms`, `s` and `m` suffixes allowed).
pub fn parse_expr(metric: Metric, expr: &str) -> Result<(Agg, &'static str, f64), String> {
    let e = expr.trim();
    let at = e
        .find(['<', '>', '=', '!'])
        .ok_or_else(|| format!("{expr:?}: no comparison (<, <=, >, >=, ==, !=)"))?;
    let (lhs, rest) = e.split_at(at);
    let op = ["<=", ">=", "==", "!=", "<", ">"]
        .into_iter()
        .find(|o| rest.starts_with(o))
        .ok_or_else(|| format!("{expr:?}: bad comparison"))?;
    let rhs = rest[op.len()..].trim();
    let lhs = lhs.trim();
    let agg = match lhs {
        "avg" => Agg::Avg,
        "med" => Agg::Med,
        "min" => Agg::Min,
        "max" => Agg::Max,
        "rate" => Agg::Rate,
        "count" => Agg::Count,
        p if p.starts_with("p(") && p.ends_with(')') => {
            let q: f64 = p[2..p.len() - 1]
                .trim()
                .parse()
                .map_err(|_| format!("{expr:?}: bad percentile"))?;
            if !(0.0..=100.0).contains(&q) {
                return Err(format!("{expr:?}: a percentile is from 0 to 100"));
            }
            Agg::P(q)
        }
        other => return Err(format!("{expr:?}: unknown aggregation {other:?}")),
    };
    let allowed = match metric {
        Metric::Duration => matches!(agg, Agg::P(_) | Agg::Avg | Agg::Med | Agg::Min | Agg::Max),
        Metric::Failed | Metric::Checks => agg == Agg::Rate,
        Metric::Reqs | Metric::Iterations => matches!(agg, Agg::Count | Agg::Rate),
    };
    if !allowed {
        return Err(format!("{expr:?}: {lhs} does not apply to this metric"));
    }
    let value = if metric == Metric::Duration {
        let (num, scale) = if let Some(n) = rhs.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = rhs.strip_suffix('s') {
            (n, 1000.0)
        } else if let Some(n) = rhs.strip_suffix('m') {
            (n, 60_000.0)
        } else {
            (rhs, 1.0)
        };
        num.trim().parse::<f64>().map(|v| v * scale)
    } else {
        rhs.parse::<f64>()
    }
    .ok()
    .filter(|v| v.is_finite())
    .ok_or_else(|| format!("{expr:?}: bad value {rhs:?}"))?;
    Ok((agg, op, value))
}

/// What a threshold is judged on.
pub struct Observed<'a> {
    pub rec: &'a Recorder,
    pub checks: &'a [crate::report::CheckResult],
    pub iterations: u64,
    pub elapsed_s: f64,
}

impl Threshold {
    fn stats<'a>(&self, rec: &'a Recorder) -> Option<&'a Stats> {
        match (&self.action, &self.tenant) {
            (None, None) => Some(&rec.totals),
            (Some(a), None) => rec.by_action.get(a),
            (None, Some(t)) => rec.by_tenant.get(t),
            (Some(a), Some(t)) => rec.by_action_tenant.get(&(
                std::sync::Arc::from(a.as_str()),
                std::sync::Arc::from(t.as_str()),
            )),
        }
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
        let s = self.stats(o.rec);
        Some(match (self.metric, self.agg) {
            (Metric::Reqs, Agg::Count) => s.map_or(0, |s| s.count) as f64,
            (Metric::Reqs, _) => per_s(s.map_or(0, |s| s.count)),
            (Metric::Failed, _) => {
                let s = s.filter(|s| s.count > 0)?;
                s.failed as f64 / s.count as f64
            }
            (_, agg) => {
                let s = s.filter(|s| s.count > 0)?;
                match agg {
                    Agg::P(q) => s.quantile_ms(q / 100.0),
                    Agg::Med => s.quantile_ms(0.5),
                    Agg::Avg => s.mean_ms(),
                    Agg::Min => s.min_ms(),
                    _ => s.max_ms(),
                }
            }
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_expressions() {
        assert_eq!(
            parse_name("http_req_duration{action:login, tenant:'a'}").unwrap(),
            (Metric::Duration, Some("login".into()), Some("a".into()))
        );
        assert!(parse_name("http_req_waiting").is_err());
        assert!(parse_name("http_req_duration{host:x}").is_err());
        assert_eq!(
            parse_expr(Metric::Duration, "p(95)<500").unwrap(),
            (Agg::P(95.0), "<", 500.0)
        );
        assert_eq!(
            parse_expr(Metric::Duration, "p(99.9) <= 1.5s").unwrap(),
            (Agg::P(99.9), "<=", 1500.0)
        );
        assert_eq!(
            parse_expr(Metric::Failed, "rate<0.01").unwrap(),
            (Agg::Rate, "<", 0.01)
        );
        for bad in ["p(95)", "rate<0.1", "p(101)<1", "avg<x", "p(95)<inf"] {
            assert!(parse_expr(Metric::Duration, bad).is_err(), "{bad}");
        }
        assert!(parse_expr(Metric::Failed, "p(95)<1").is_err());
    }
}
