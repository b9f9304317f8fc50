//! Scenarios: the YAML format of the scheduler these components came from. Each section (or
//! each item of a list) is read as the format's types (`schema.rs`, filled by serde), then
//! judged in passes (names, ranges, templates, references, overlaps) into the run's model
//! (`model.rs`). Every problem is collected with its field path and YAML line instead of
//! stopping at the first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde_yaml::Value;

use crate::format::schema;
use crate::format::template;

mod actions;
mod checks;
mod data;
mod lines;
mod load;
mod model;
mod pools;
mod properties;
mod proxy;
mod rates;
mod references;
mod servers;
mod think;
mod tls;
mod udp;
mod upload;
mod walker;
mod websocket;
mod workbook;
mod workflows;

use actions::actions;
use checks::*;
pub use data::{DataMode, DataSource};
use load::{Load, load};
pub use model::*;
use pools::*;
pub(crate) use pools::{check_cidr, key_ip};
use properties::*;
pub use proxy::ScenarioProxy;
use proxy::scenario_proxy;
use rates::*;
use references::*;
pub use servers::ServerSpec;
pub use think::Think;
use tls::*;
use udp::*;
pub use upload::UPLOAD_KEYS;
use walker::*;
use websocket::ws_with;
pub use websocket::{WebSocket, WsReceive, WsStep};
use workbook::workbook;
use workflows::workflows;

/// How deeply flow collections nest, outside quoted scalars and comments, and the line of the
/// deepest. An over-estimate at worst (a plain scalar holding brackets counts them).
fn flow_depth(text: &str) -> (usize, usize) {
    let (mut depth, mut max, mut line, mut at_line) = (0usize, 0usize, 1usize, 1usize);
    let mut quote: Option<char> = None;
    let mut prev = '\n';
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match quote {
            Some('\'') if c == '\'' => quote = None,
            Some('"') if c == '\\' => {
                chars.next();
            }
            Some('"') if c == '"' => quote = None,
            Some(_) => {}
            None => match c {
                '#' if prev.is_whitespace() => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            line += 1;
                            break;
                        }
                    }
                }
                '\'' | '"' if prev.is_whitespace() || "[{,:".contains(prev) => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    if depth > max {
                        (max, at_line) = (depth, line);
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = c;
    }
    (max, at_line)
}

/// Read a scenario, ignoring fields it does not know.
pub fn parse(text: &str) -> Result<Scenario, Vec<Problem>> {
    parse_checked(text, false).map(|(s, _)| s)
}

/// The YAML of a scenario file, within the size and nesting limits.
fn decode(text: &str) -> Result<Value, Vec<Problem>> {
    let doc = |message: String, line: Option<usize>| {
        vec![Problem {
            path: "(document)".into(),
            message,
            line,
        }]
    };
    if text.len() > MAX_INPUT {
        return Err(doc(
            format!("{} bytes; a scenario is at most {MAX_INPUT}", text.len()),
            None,
        ));
    }
    let (depth, line) = flow_depth(text);
    if depth > MAX_FLOW_DEPTH {
        return Err(doc(
            format!("[ and {{ nested {depth} deep; at most {MAX_FLOW_DEPTH}"),
            Some(line),
        ));
    }
    serde_yaml::from_str(text).map_err(|e| {
        vec![Problem {
            path: "(document)".into(),
            message: e.to_string(),
            line: e.location().map(|l| l.line()),
        }]
    })
}

/// Walk `text` with `f`: what it read and the warnings, or every problem (with the warnings
/// after them). With `strict`, every warning is a problem.
fn checked<T>(
    text: &str,
    strict: bool,
    f: impl FnOnce(&mut Walker, &Value) -> T,
) -> Result<(T, Vec<Problem>), Vec<Problem>> {
    let root = decode(text)?;
    let mut w = Walker {
        problems: Vec::new(),
        warnings: Vec::new(),
        strict,
    };
    let out = f(&mut w, &root);
    let asked = w
        .problems
        .iter()
        .chain(&w.warnings)
        .map(|p| p.path.as_str());
    let lines = lines::Lines::of(text, asked);
    for p in w.problems.iter_mut().chain(w.warnings.iter_mut()) {
        p.line = p.line.or_else(|| lines.line(&p.path));
    }
    if strict {
        // `--strict`: whatever is worth a warning is a problem.
        w.problems.append(&mut w.warnings);
    }
    if w.problems.is_empty() {
        Ok((out, w.warnings))
    } else {
        w.problems.append(&mut w.warnings);
        Err(w.problems)
    }
}

/// Read a scenario: it and the warnings (unknown fields, ignored), or every problem (with the
/// warnings after them). With `strict`, every warning is a problem.
pub fn parse_checked(text: &str, strict: bool) -> Result<(Scenario, Vec<Problem>), Vec<Problem>> {
    checked(text, strict, walk)
}

/// Read only a scenario's `servers` (and the pools they take addresses from), for `serve`: a
/// file may hold servers alone.
pub fn parse_servers(text: &str) -> Result<(Vec<ServerSpec>, Vec<Problem>), Vec<Problem>> {
    checked(text, false, |w, root| {
        let empty = serde_yaml::Mapping::new();
        let top = w
            .map(root, "", schema::fields::<schema::Scenario>())
            .unwrap_or(&empty);
        let pools = workbook(w, top).pools;
        let servers = servers::scenario_servers(w, get(top, "servers"), &pools);
        if servers.is_empty() {
            w.problem("servers", "no servers to serve");
        }
        servers
    })
}

fn walk(w: &mut Walker, root: &Value) -> Scenario {
    let empty = serde_yaml::Mapping::new();
    let top = w
        .map(root, "", schema::fields::<schema::Scenario>())
        .unwrap_or(&empty);
    // Any 1.x, as the original reads it ("1", "1.0", "v1").
    if let Some(v) = w.text(get(top, "version"), "version")
        && v.trim_start_matches(['v', 'V']).split('.').next() != Some("1")
    {
        w.problem(
            "version",
            format!("unsupported version {v:?} (expected 1.x, such as \"1.0\" or \"v1\")"),
        );
    }
    let name = w
        .text(get(top, "name"), "name")
        .unwrap_or_else(|| "scenario".into());

    let workbook::Book {
        pools,
        resources,
        cycles,
        data,
    } = workbook(w, top);
    let Load {
        phases,
        lifetime,
        ip_binding,
        concurrency,
        arrival,
        stages: user_stages,
    } = load(w, top, &pools);
    let actions = actions(w, top, &resources);
    let (nodes, truncated) = workflows(w, top, &actions);
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    // Past the limit the rest was not read: edges into it are not problems of their own.
    let read_all = !truncated;
    for (i, n) in nodes.iter().enumerate().filter(|_| read_all) {
        for (j, e) in n.edges.iter().enumerate() {
            if !e.to.is_empty() && !ids.contains(e.to.as_str()) {
                w.problem(
                    &format!("workflows.nodes[{i}].edges[{j}].to"),
                    format!("no node {:?}", e.to),
                );
            }
        }
    }
    if nodes.is_empty() {
        w.problem("workflows.nodes", "at least one node is required");
    }
    for (i, a) in actions.iter().enumerate() {
        for (j, t) in a.dynamic.iter().enumerate() {
            if let Some(id) = &t.action
                && !actions.iter().any(|x| x.id == *id)
            {
                w.problem(
                    &format!("actions.actions[{i}].with.dynamic_tasks[{j}].action_id"),
                    format!("unknown action {id:?}"),
                );
            }
        }
    }
    let index = Index::of(&actions, &nodes);
    let servers = servers::scenario_servers(w, get(top, "servers"), &pools);
    let (undeclared, read) = check_references(w, (&resources, &data, &servers), &actions, &nodes);
    judge_cycles(w, cycles, &read);
    let mut thresholds = thresholds(w, get(top, "thresholds"));
    // A tag filter names the actions that carry the tag.
    for t in &mut thresholds {
        if let Some((k, v)) = &t.tag {
            t.tagged = actions
                .iter()
                .filter(|a| a.tags.iter().any(|(n, x)| n == k && x == v))
                .map(|a| a.id.clone())
                .collect();
            if t.tagged.is_empty() {
                w.problem(
                    &join("thresholds", &t.name),
                    format!("no action has the tag {k}:{v} (give actions `tags: {{{k}: {v}}}`)"),
                );
            }
        }
    }
    let tls = scenario_tls(w, get(top, "tls"));
    let proxy = scenario_proxy(w, get(top, "proxy"));
    let setup = once_actions(w, get(top, "setup"), "setup", &actions);
    let teardown = once_actions(w, get(top, "teardown"), "teardown", &actions);
    let sc = Scenario {
        servers,
        dir: std::path::PathBuf::from("."),
        data,
        setup,
        teardown,
        tls,
        proxy,
        stages: user_stages,
        arrival,
        thresholds,
        name,
        pools,
        resources,
        phases,
        lifetime,
        ip_binding,
        concurrency,
        actions,
        index,
        nodes,
        undeclared,
    };
    check_threshold_filters(w, &sc);
    sc
}

/// The tenants users of this scenario can have.
fn tenants(sc: &Scenario) -> BTreeSet<&str> {
    let named = sc.phases.iter().map(|p| p.tenant.as_deref());
    let named = named
        .chain(sc.arrival.iter().map(|a| a.tenant.as_deref()))
        .chain(sc.stages.iter().map(|s| s.tenant.as_deref()));
    named.map(|t| t.unwrap_or(DEFAULT_TENANT)).collect()
}

/// A threshold whose tag filter names no action or tenant of the scenario can see no sample:
/// a typo that would pass (or fail) silently.
fn check_threshold_filters(w: &mut Walker, sc: &Scenario) {
    let tenants = tenants(sc);
    for t in &sc.thresholds {
        let path = join("thresholds", &t.name);
        if let Some(a) = &t.action
            && sc.action_index(a).is_none()
        {
            let known: Vec<&str> = sc.actions.iter().map(|a| a.id.as_str()).collect();
            w.problem(
                &path,
                format!("no action {a:?} (actions: {})", known.join(", ")),
            );
        }
        if let Some(x) = &t.tenant
            && !tenants.contains(x.as_str())
        {
            let known: Vec<&str> = tenants.iter().copied().collect();
            w.problem(
                &path,
                format!("no tenant {x:?} (tenants: {})", known.join(", ")),
            );
        }
    }
}

/// `setup:` or `teardown:`: ids of actions (HTTP ones) run once for the whole run.
fn once_actions(w: &mut Walker, v: Option<&Value>, path: &str, actions: &[Action]) -> Vec<String> {
    let given = match v.filter(|v| !v.is_null()) {
        Some(v) => w.typed::<Vec<schema::Text>>(v, path).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for (i, id) in given.iter().map(schema::Text::text).enumerate() {
        let p = format!("{path}[{i}]");
        match actions.iter().find(|a| a.id == id) {
            Some(a) if a.udp.is_some() => w.problem(
                &p,
                format!("{id:?} is a UDP action; setup and teardown run HTTP actions"),
            ),
            Some(_) => out.push(id),
            None => w.problem(&p, format!("no action {id:?}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(stages: Vec<(f64, Duration)>, start: f64) -> Vec<f64> {
        let a = ArrivalRate {
            stages,
            start_rate: start,
            pre_allocated_users: 1,
            max_users: 1,
            tenant: None,
            stride: (0, 1),
        };
        a.schedule().map(|d| d.as_secs_f64()).collect()
    }

    #[test]
    fn segments_split_an_arrival_schedule_exactly() {
        // 50/s for 4 s: 200 iterations; three segments take every third, 67 + 67 + 66.
        let whole = ArrivalRate {
            stages: vec![(50.0, Duration::from_secs(4))],
            start_rate: 50.0,
            pre_allocated_users: 5,
            max_users: 5,
            tenant: None,
            stride: (0, 1),
        };
        let all: Vec<Duration> = whole.schedule().collect();
        assert_eq!(all.len(), 200);
        let mut union = Vec::new();
        for i in 0..3 {
            let mut part = whole.clone();
            part.stride = (i, 3);
            union.extend(part.schedule());
        }
        union.sort();
        assert_eq!(union, all);
    }

    /// A scenario with one action whose `with` is `with` and one edge condition.
    fn one_action(with: &str, condition: &str) -> String {
        format!(
            r#"
workbook:
  resources:
    - {{ id: base, properties: {{ scheme: http, host: "127.0.0.1", url: "{{{{base.scheme}}}}://{{{{base.host}}}}:8080" }} }}
    - {{ id: spare, properties: {{ x: "1" }} }}
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 1 }} ] }} }}
actions:
  actions:
    - id: a
      call: get
      with: {with}
      export: [ {{ type: json, name: token, pointer: /t }} ]
workflows:
  nodes:
    - {{ id: n, action: a, edges: [ {{ to: end, trigger: {{ condition: "{condition}" }} }} ] }}
    - {{ id: end, type: end }}
"#
        )
    }

    fn problems(text: &str) -> Vec<String> {
        match parse_checked(text, false) {
            Ok(_) => Vec::new(),
            Err(p) => p
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        }
    }

    /// `validate` refuses what the executor would refuse on every request, with the field's
    /// path, by the executor's own rules; and every template name must be something the run
    /// has.
    #[test]
    fn validate_checks_with_and_template_references() {
        let ok = one_action(
            r#"{ url: "{{base.url}}/x?u={{user.id}}&t={{a.token}}", bind_ip: "{{user.allocated_ip}}", timeouts: { total_ms: 100 } }"#,
            "{{a.status_code == 200 && a.ok && tenant.id != user.tenant}}",
        );
        assert_eq!(problems(&ok), Vec::<String>::new());
        let (_, warnings) = parse_checked(&ok, false).unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.path == "workbook.resources[1]" && w.message.contains("not used")),
            "{warnings:?}"
        );
        for (with, want) in [
            (
                r#"{ url: "ftp://127.0.0.1/" }"#,
                "actions.actions[0].with.url: ",
            ),
            (r#"{ url: "{{base.scheme}}s://{{base.host}}:0/" }"#, ""),
            (
                r#"{ url: "http://x/", timeouts: { total: 5 } }"#,
                "with.timeouts.total: unknown timeout",
            ),
            (
                r#"{ url: "http://x/", timeouts: { total_ms: 0 } }"#,
                "with.timeouts.total_ms: must be at least 1 ms",
            ),
            (
                r#"{ url: "http://x/", retries: "3" }"#,
                "with.retries: expected a number or an object",
            ),
            (
                r#"{ url: "http://x/", keep_alive: "{{user.id}}" }"#,
                "with.keep_alive: expected true or false",
            ),
            (
                r#"{ url: "http://x/", bind_ip: "10.0.0.300" }"#,
                "with.bind_ip: not an IP address",
            ),
            (
                r#"{ url: "http://x/", release: never }"#,
                "with.release: expected after_action or keep",
            ),
            (
                r#"{ url: "http://x/", color: red }"#,
                "with.color: unknown parameter",
            ),
            (
                r#"{ url: "http://x/", headers: { a: [1] } }"#,
                "with.headers.a: expected a string",
            ),
        ] {
            let p = problems(&one_action(with, "true"));
            assert!(
                p.iter().any(|p| p.contains(want)) && !p.is_empty(),
                "{with}: {p:?}"
            );
        }
        // A url whose start is a template of the run (an export) is left to the run.
        assert_eq!(
            problems(&one_action(r#"{ url: "{{a.token}}" }"#, "true")),
            Vec::<String>::new()
        );
        // Names nothing declares: warnings naming what the scope has; the run leaves them as
        // written (as the original does).
        for (with, condition, want) in [
            (
                r#"{ url: "http://x/{{base.prot}}" }"#,
                "true",
                r#"with.url: "base.prot": "base" has no "prot""#,
            ),
            (
                r#"{ url: "http://x/{{b.url}}" }"#,
                "true",
                r#"with.url: "b.url": no resource, action, user or tenant "b""#,
            ),
            (
                r#"{ url: "http://x/{{a.tokn}}" }"#,
                "true",
                r#""a" has no "tokn" (it has: error, ok, status_code, token)"#,
            ),
            (
                r#"{ url: "http://x/", headers: { a: "{{user.name}}" } }"#,
                "true",
                r#"with.headers.a: "user.name": "user" has no "name""#,
            ),
            (
                r#"{ url: "http://x/" }"#,
                "{{a.code == 200}}",
                r#"workflows.nodes[0].edges[0].trigger.condition: "a.code": "a" has no "code""#,
            ),
        ] {
            let text = one_action(with, condition);
            let (s, warnings) =
                parse_checked(&text, false).unwrap_or_else(|p| panic!("{with}: {p:?}"));
            let warnings: Vec<String> = warnings
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect();
            assert!(
                warnings.iter().any(|w| w.contains(want)),
                "{with}: {warnings:?}"
            );
            assert_eq!(s.undeclared.len(), 1, "{with}");
        }
    }

    /// Each field is read as its type with its path and line; a bad item is one problem, not
    /// one more for everything that names it; the other items and sections are still judged.
    #[test]
    fn segments_cap_users_as_they_are_striped() {
        // 50,000 users in three segments: user k (from 0) runs in segment k mod 3, so the
        // first two run 16,667 and the last 16,666; a cap of one fewer would keep a user
        // waiting for another to end (and take its address), never all alive at once.
        let text = r#"
load:
  ramp_up: { phases: [ { spawn_users: 50000 } ] }
  concurrency: { max_concurrent_users: 50000 }
actions:
  actions: [ { id: a, call: get, with: { url: "http://127.0.0.1/" } } ]
workflows:
  nodes: [ { id: n, action: a } ]
"#;
        let caps: Vec<u32> = (0..3)
            .map(|i| {
                let mut sc = parse(text).unwrap();
                sc.segment(i, 3).unwrap();
                sc.concurrency.max_users.unwrap()
            })
            .collect();
        let striped: Vec<u32> = (0..3)
            .map(|i| (0..50_000u32).filter(|k| k % 3 == i).count() as u32)
            .collect();
        assert_eq!(caps, striped);
        assert_eq!(caps, [16_667, 16_667, 16_666]);
    }

    #[test]
    fn typed_reads_name_the_field_and_its_line() {
        let text = r#"
workbook:
  ip_pools:
    - { id: p, ranges: ["127.0.0.0/30"], segment: x }
load:
  ramp_up: { phases: [ { spawn_users: 1 } ] }
  user_lifetime: { mode: loop, iterations: many }
  user_resources: { ip_binding: { pool_id: p } }
actions:
  actions: [ { id: a, call: get, with: { url: "http://x/" } } ]
workflows:
  nodes: [ { id: n, action: a } ]
"#;
        let p = parse_checked(text, false).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [
                "workbook.ip_pools[0].segment: expected a non-negative integer (line 4)",
                "load.user_lifetime.iterations: expected a non-negative integer (line 7)",
            ],
            "the pool that could not be read keeps its id: the binding naming it is fine"
        );
    }

    #[test]
    fn arrival_schedules_follow_the_rate() {
        // 10/s for 2 s: 20 iterations, 0.1 s apart.
        let t = times(vec![(10.0, Duration::from_secs(2))], 10.0);
        assert_eq!(t.len(), 20);
        assert!(
            (t[0] - 0.1).abs() < 1e-9 && (t[19] - 2.0).abs() < 1e-9,
            "{t:?}"
        );
        // 0 -> 20/s over 2 s, then 20/s for 1 s: 20 + 20 iterations, denser as it ramps.
        let t = times(
            vec![
                (20.0, Duration::from_secs(2)),
                (20.0, Duration::from_secs(1)),
            ],
            0.0,
        );
        assert_eq!(t.len(), 40);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert!((t[19] - 2.0).abs() < 1e-6, "{}", t[19]);
        assert!(t[1] - t[0] > t[19] - t[18]);
        // A stage at rate 0 schedules nothing.
        assert!(times(vec![(0.0, Duration::from_secs(5))], 0.0).is_empty());
    }

    #[test]
    fn user_stages_ramp_linearly() {
        let s = UserStages {
            start_users: 0,
            stages: vec![
                (10, Duration::from_secs(10)),
                (10, Duration::from_secs(5)),
                (0, Duration::from_secs(5)),
            ],
            tenant: None,
        };
        let at = |ms: u64| s.target(Duration::from_millis(ms));
        assert_eq!(at(0), Some(0));
        assert_eq!(at(5_000), Some(5));
        assert_eq!(at(12_000), Some(10));
        assert_eq!(at(17_500), Some(5));
        assert_eq!(at(20_000), None);
        assert_eq!(s.max_users(), 10);
    }
}
