//! `thresholds:` and an action's `checks:`.

use super::*;

/// `thresholds:`: metric (with an optional `{tag:value}` filter) -> a list of expressions,
/// each a string or `{threshold, abort_on_fail, delay_abort_eval}` (k6's camelCase names too).
pub(super) fn thresholds(
    w: &mut Walker,
    v: Option<&Value>,
) -> Vec<crate::format::threshold::Threshold> {
    type Given = indexmap::IndexMap<String, schema::Thresholds>;
    let Some(m) = v
        .filter(|v| !v.is_null())
        .and_then(|v| w.typed::<Given>(v, "thresholds"))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, exprs) in m {
        let path = join("thresholds", &name);
        let (metric, filter) = match crate::format::threshold::parse_name(&name) {
            Ok(x) => x,
            Err(e) => {
                w.problem(&path, e);
                continue;
            }
        };
        let items = match exprs {
            schema::Thresholds::One(item) => vec![item],
            schema::Thresholds::Many(items) => items,
        };
        for (i, item) in items.into_iter().enumerate() {
            let ip = format!("{path}[{i}]");
            let (expr, abort, delay) = match item {
                schema::ThresholdItem::Expression(e) => (e, false, Duration::ZERO),
                schema::ThresholdItem::Full(t) => {
                    let delay = t
                        .delay_abort_eval
                        .as_ref()
                        .or(t.delay_abort_eval_k6.as_ref());
                    let delay = w.dur(delay, &join(&ip, "delay_abort_eval"));
                    let abort = t.abort_on_fail.or(t.abort_on_fail_k6).unwrap_or(false);
                    (t.threshold.text(), abort, delay.unwrap_or_default())
                }
            };
            match crate::format::threshold::parse_expr(metric, &expr) {
                Ok((agg, op, value)) => out.push(crate::format::threshold::Threshold {
                    name: name.clone(),
                    metric,
                    action: filter.action.clone(),
                    tenant: filter.tenant.clone(),
                    tag: filter.tag.clone(),
                    tagged: Vec::new(),
                    expr,
                    agg,
                    op,
                    value,
                    abort_on_fail: abort,
                    delay_abort: delay,
                }),
                Err(e) => w.problem(&ip, e),
            }
        }
    }
    out
}

pub(super) fn regex_at(w: &mut Walker, text: &str, path: &str) -> Option<regex::Regex> {
    // A size limit keeps a hostile pattern from taking the process's memory.
    match regex::RegexBuilder::new(text).size_limit(1 << 20).build() {
        Ok(r) => Some(r),
        Err(e) => {
            w.problem(path, format!("bad regular expression: {e}"));
            None
        }
    }
}

/// How a header or JSON value is matched: `equals`, `contains`, `matches` (a regex), or
/// present when none is given.
pub(super) fn matcher(
    w: &mut Walker,
    [equals, contains, matches]: [&Option<schema::Text>; 3],
    path: &str,
) -> Option<Match> {
    match (opt_text(equals), opt_text(contains), opt_text(matches)) {
        (Some(v), ..) => Some(Match::Equals(v)),
        (_, Some(v), _) => Some(Match::Contains(v)),
        (.., Some(v)) => regex_at(w, &v, &join(path, "matches")).map(Match::Matches),
        _ => Some(Match::Exists),
    }
}

/// One entry of an action's `checks`: exactly one of `status`, `body_contains`,
/// `body_matches`, `header`, `json`, `duration`, with an optional `name`.
pub(super) fn check(w: &mut Walker, c: schema::Check, path: &str) -> Option<Check> {
    let status = c.status.as_ref().map(|codes| match codes {
        schema::Codes::One(n) => (vec![*n], n.to_string()),
        // The name a list had as YAML: `- 200 - 201`.
        schema::Codes::Many(v) => (
            v.clone(),
            v.iter()
                .map(|n| format!("- {n}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    });
    let given: Vec<(&str, String)> = [
        ("status", status.as_ref().map(|s| s.1.clone())),
        ("body_contains", opt_text(&c.body_contains)),
        ("body_matches", opt_text(&c.body_matches)),
        ("header", opt_text(&c.header)),
        ("json", opt_text(&c.json)),
        ("duration", opt_text(&c.duration)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    let [(what, detail)] = &given[..] else {
        w.problem(
            path,
            format!(
                "give exactly one of status, body_contains, body_matches, header, json, \
                 duration (got {})",
                given.len()
            ),
        );
        return None;
    };
    let at = join(path, what);
    let matches = [&c.equals, &c.contains, &c.matches];
    let kind = match *what {
        "status" => {
            let codes = status.map(|s| s.0).unwrap_or_default();
            if codes.iter().any(|c| !(100..=999).contains(c)) {
                w.problem(&at, "expected a status code or a list of them");
            }
            CheckKind::Status(codes.iter().map(|c| *c as u16).collect())
        }
        "body_contains" => CheckKind::BodyContains(detail.clone()),
        "body_matches" => CheckKind::BodyMatches(regex_at(w, detail, &at)?),
        "header" => CheckKind::Header(detail.clone(), matcher(w, matches, path)?),
        "json" => {
            if !detail.is_empty() && !detail.starts_with('/') {
                w.problem(
                    &at,
                    format!("a JSON pointer starts with / (got {detail:?})"),
                );
                return None;
            }
            CheckKind::Json(detail.clone(), matcher(w, matches, path)?)
        }
        _ => duration_check(w, detail, &at)?,
    };
    let name = opt_text(&c.name).unwrap_or_else(|| format!("{what} {detail}"));
    Some(Check { name, kind })
}

/// `duration: "<500ms"`.
fn duration_check(w: &mut Walker, text: &str, at: &str) -> Option<CheckKind> {
    let t = text.trim();
    let op = ["<=", ">=", "<", ">"]
        .into_iter()
        .find(|o| t.starts_with(o));
    let parsed = op.and_then(|op| {
        let d = parse_duration(t[op.len()..].trim())?;
        Some((op, d.as_secs_f64() * 1000.0))
    });
    match parsed {
        Some((op, ms)) => Some(CheckKind::Duration(op, ms)),
        None => {
            w.problem(at, format!("expected e.g. \"<500ms\", got {text:?}"));
            None
        }
    }
}
