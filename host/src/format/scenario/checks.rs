//! `thresholds:` and an action's `checks:`.

use super::*;

/// `thresholds:`: metric (with an optional `{tag:value}` filter) -> a list of expressions,
/// each a string or `{threshold, abort_on_fail, delay_abort_eval}` (k6's camelCase names too).
pub(super) fn thresholds(
    w: &mut Walker,
    v: Option<&Value>,
) -> Vec<crate::format::threshold::Threshold> {
    let mut out = Vec::new();
    let Some(m) = v.and_then(|v| {
        if v.is_null() {
            return None;
        }
        let m = v.as_mapping();
        if m.is_none() {
            w.problem("thresholds", "expected a mapping of metric to expressions");
        }
        m
    }) else {
        return out;
    };
    for (k, exprs) in m {
        let name = k.as_str().unwrap_or_default().to_string();
        let path = join("thresholds", &name);
        let (metric, filter) = match crate::format::threshold::parse_name(&name) {
            Ok(x) => x,
            Err(e) => {
                w.problem(&path, e);
                continue;
            }
        };
        let items: Vec<Value> = match exprs {
            Value::Sequence(s) => s.clone(),
            other => vec![other.clone()],
        };
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}[{i}]");
            let (expr, abort, delay) = match item {
                Value::String(e) => (Some(e.clone()), false, Duration::ZERO),
                Value::Mapping(_) => {
                    let Some(im) = w.map(item, &ip, schema::fields::<schema::Threshold>()) else {
                        continue;
                    };
                    let e = w.string(get(im, "threshold"), &join(&ip, "threshold"), true);
                    let abort = w
                        .boolean(
                            get(im, "abort_on_fail").or(get(im, "abortOnFail")),
                            &join(&ip, "abort_on_fail"),
                        )
                        .unwrap_or(false);
                    let delay = w
                        .duration(
                            get(im, "delay_abort_eval").or(get(im, "delayAbortEval")),
                            &join(&ip, "delay_abort_eval"),
                        )
                        .unwrap_or_default();
                    (e, abort, delay)
                }
                _ => {
                    w.problem(&ip, "expected an expression such as \"p(95)<500\"");
                    continue;
                }
            };
            let Some(expr) = expr else { continue };
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
    let text = |t: &Option<schema::Text>| t.as_ref().map(schema::Text::text);
    match (text(equals), text(contains), text(matches)) {
        (Some(v), ..) => Some(Match::Equals(v)),
        (_, Some(v), _) => Some(Match::Contains(v)),
        (.., Some(v)) => regex_at(w, &v, &join(path, "matches")).map(Match::Matches),
        _ => Some(Match::Exists),
    }
}

/// One entry of an action's `checks`: exactly one of `status`, `body_contains`,
/// `body_matches`, `header`, `json`, `duration`, with an optional `name`.
pub(super) fn check(w: &mut Walker, c: schema::Check, path: &str) -> Option<Check> {
    let text = |t: &Option<schema::Text>| t.as_ref().map(schema::Text::text);
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
        ("body_contains", text(&c.body_contains)),
        ("body_matches", text(&c.body_matches)),
        ("header", text(&c.header)),
        ("json", text(&c.json)),
        ("duration", text(&c.duration)),
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
    let name = text(&c.name).unwrap_or_else(|| format!("{what} {detail}"));
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
