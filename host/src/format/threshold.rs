//! Thresholds as the scenario writes them (k6's syntax): a metric with an optional tag filter,
//! and an expression. Parsed here; judged on what a run recorded in `results::verdict`.

use std::time::Duration;

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
    /// WebSocket openings that reached a server (ms): p(N), avg, med, min, max.
    WsConnecting,
    /// WebSocket sessions the servers upgraded: count, rate.
    WsSessions,
    /// WebSocket messages sent: count, rate.
    WsMsgsSent,
    /// WebSocket messages received: count, rate.
    WsMsgsReceived,
    /// WebSocket ping round trips (ms): p(N), avg, med, min, max.
    WsPing,
}

impl Metric {
    /// Whether it is a latency (aggregated by percentiles, in milliseconds).
    pub fn is_trend(self) -> bool {
        matches!(
            self,
            Metric::Duration | Metric::WsConnecting | Metric::WsPing
        )
    }

    /// Whether it is one of the WebSocket metrics (which take no filter).
    pub fn is_ws(self) -> bool {
        matches!(
            self,
            Metric::WsConnecting
                | Metric::WsSessions
                | Metric::WsMsgsSent
                | Metric::WsMsgsReceived
                | Metric::WsPing
        )
    }
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
    /// A tag filter (`{group:api}`): the actions that carry the tag.
    pub tag: Option<(String, String)>,
    pub tagged: Vec<String>,
    /// As written: `p(95)<500`.
    pub expr: String,
    pub agg: Agg,
    pub op: &'static str,
    pub value: f64,
    pub abort_on_fail: bool,
    pub delay_abort: Duration,
}

/// A threshold's filter: by action, tenant, and one tag of the actions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub action: Option<String>,
    pub tenant: Option<String>,
    pub tag: Option<(String, String)>,
}

/// `http_req_duration{action:login,tenant:a}` (or `{group:api}`, an action tag) into the
/// metric and its filter.
pub fn parse_name(name: &str) -> Result<(Metric, Filter), String> {
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
        "ws_connecting" => Metric::WsConnecting,
        "ws_sessions" => Metric::WsSessions,
        "ws_msgs_sent" => Metric::WsMsgsSent,
        "ws_msgs_received" => Metric::WsMsgsReceived,
        "ws_ping" => Metric::WsPing,
        other => {
            return Err(format!(
                "unknown metric {other:?} (http_req_duration, http_req_failed, http_reqs, iterations, checks, \
                 ws_connecting, ws_sessions, ws_msgs_sent, ws_msgs_received, ws_ping)"
            ));
        }
    };
    let (mut action, mut tenant, mut tag) = (None, None, None);
    for item in tags.into_iter().flat_map(|t| t.split(',')) {
        let (k, v) = item
            .split_once(':')
            .ok_or_else(|| format!("tag {item:?}: expected key:value"))?;
        let v = v.trim().trim_matches(['"', '\'']).to_string();
        match k.trim() {
            "action" | "name" => action = Some(v),
            "tenant" => tenant = Some(v),
            other if tag.is_none() => tag = Some((other.to_string(), v)),
            _ => return Err("one tag filter at most (beside action and tenant)".into()),
        }
    }
    if action.is_some() && tag.is_some() {
        return Err("an action filter and a tag filter: give one".into());
    }
    if (metric == Metric::Iterations || metric.is_ws())
        && (action.is_some() || tenant.is_some() || tag.is_some())
    {
        return Err(format!("{base} takes no tag filter"));
    }
    if metric == Metric::Checks && (tenant.is_some() || tag.is_some()) {
        return Err("checks take an action filter only".into());
    }
    Ok((
        metric,
        Filter {
            action,
            tenant,
            tag,
        },
    ))
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
        m if m.is_trend() => matches!(agg, Agg::P(_) | Agg::Avg | Agg::Med | Agg::Min | Agg::Max),
        Metric::Failed | Metric::Checks => agg == Agg::Rate,
        _ => matches!(agg, Agg::Count | Agg::Rate),
    };
    if !allowed {
        return Err(format!("{expr:?}: {lhs} does not apply to this metric"));
    }
    let value = if metric.is_trend() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_expressions() {
        assert_eq!(
            parse_name("http_req_duration{action:login, tenant:'a'}").unwrap(),
            (
                Metric::Duration,
                Filter {
                    action: Some("login".into()),
                    tenant: Some("a".into()),
                    tag: None
                }
            )
        );
        assert!(parse_name("http_req_waiting").is_err());
        // Another key is an action tag; one at most, and not with an action filter.
        assert_eq!(
            parse_name("http_req_duration{group:api}").unwrap().1.tag,
            Some(("group".into(), "api".into()))
        );
        assert!(parse_name("http_req_duration{group:api,kind:x}").is_err());
        assert!(parse_name("http_req_duration{group:api,action:a}").is_err());
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
