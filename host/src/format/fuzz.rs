//! Fuzzing on the stable toolchain (see crates/http-core/tests/fuzz.rs): scenario YAML
//! through the same `parse` that `validate` and `run` use, templates and conditions. Every
//! input is a scenario or a list of problems; every template renders or gives an error.

use proptest::prelude::*;

use crate::format::scenario;
use crate::format::template::{self, Vars};

const SEEDS: &[&str] = &[
    include_str!("../../scenarios/demo.yaml"),
    r#"
version: "1.0"
workbook:
  ip_pools: [ { id: p, ranges: ["127.0.0.0/30", "127.0.1.1-127.0.1.9"] } ]
  resources: [ { id: t, properties: { ip: "127.0.0.1", port: "80" } } ]
load:
  ramp_up: { phases: [ { at_second: 0.5, spawn_users: 2, tenant_id: a, ip_pool_override: p } ] }
  user_lifetime: { mode: loop, iterations: 3, think_time: 10ms, duration: 1m }
  user_resources: { ip_binding: { enabled: true, pool_id: p, strategy: per_task, release_on: task_end } }
  concurrency: { max_concurrent_users: 10, spawn_rate_limit: "5/s" }
actions:
  actions:
    - { id: a-1, call: post, with: { url: "http://{{t.ip}}:{{t.port}}/{{user.id}}", body: "x" }, export: [ { name: n, type: json, pointer: /a } ] }
workflows:
  nodes:
    - { id: start, action: a-1, edges: [ { to: end, trigger: { condition: "{{a-1.status_code == 200 && !(a-1.n != 'x')}}" } } ] }
    - { id: end, type: end }
"#,
    // The original's UDP and HTTP extensions: udp actions, wait nodes, dynamic tasks,
    // capacity management, a rate limit, top-level user_resources.
    r#"
version: v1
workbook:
  ip_pools: [ { id: p, ranges: ["127.0.0.0/29"] }, { id: q, ranges: ["127.0.1.0/29"] } ]
  resources: [ { id: u, type: udp-endpoint, properties: { peer_ip: "127.0.0.1", peer_port: 7 } } ]
load:
  ramp_up: { phases: [ { at_second: 0, spawn_users: 2 } ] }
  user_lifetime: { mode: once, max_concurrency: 1 }
  user_resources:
    capacity_management: { wait_on_exhaustion: true, wait_timeout: 1s, fallback_pool: q }
  concurrency: { action_rate_limit: 10/s }
user_resources: { ip_binding: { enabled: true, pool_id: p } }
actions:
  actions:
    - { id: e, call: udp.send-reply, with: { payload_hex: "00ff", timeout-ms: 100, retry: { max: 1, backoff_ms: 5 }, expect: { contains: "x", len: 2 } } }
    - { id: h, call: get, with: { url: "http://127.0.0.1:1/{{e.ok}}", decompress: true, dynamic_tasks: [ { id: "d-{{user.id}}", action_id: e, outgoing: [ { target: end } ] } ] }, export: [ { type: assert, name: r } ] }
workflows:
  nodes:
    - { id: start, action: e, priority: 1, edges: [ { to: w } ] }
    - { id: w, type: wait, on: { event: packet-rx, match: { action_id: e, payload_hex: "00ff" } }, edges: [ { to: n } ] }
    - { id: n, action: h, edges: [ { to: end } ] }
    - { id: end, type: end }
"#,
];

fn mutated() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(SEEDS),
        proptest::collection::vec((any::<usize>(), any::<char>(), 0u8..5), 0..10),
    )
        .prop_map(|(seed, edits)| {
            let mut v: Vec<char> = seed.chars().collect();
            for (at, c, op) in edits {
                let at = if v.is_empty() { 0 } else { at % (v.len() + 1) };
                match op {
                    0 if at < v.len() => v[at] = c,
                    1 => v.insert(at, c),
                    2 if at < v.len() => {
                        v.remove(at);
                    }
                    3 => {
                        // Repeat a stretch: nesting, long lists.
                        let end = (at + 8).min(v.len());
                        let piece: Vec<char> = v[at..end].to_vec();
                        for _ in 0..(c as usize % 64) {
                            v.splice(at..at, piece.iter().copied());
                        }
                    }
                    _ => v.truncate(at),
                }
            }
            v.into_iter().collect()
        })
}

fn vars() -> Vars {
    let mut v = Vars::new();
    v.entry("a".into())
        .or_default()
        .insert("b".into(), "日本→".into());
    v.entry("user".into())
        .or_default()
        .insert("id".into(), "7".into());
    v
}

proptest! {
    #[test]
    fn scenarios_parse_or_are_refused(text in prop_oneof![mutated(), ".{0,400}"]) {
        match scenario::parse(&text) {
            Ok(s) => {
                prop_assert!(s.total_users() <= scenario::MAX_TOTAL_USERS);
                prop_assert!(!s.actions.is_empty() && !s.nodes.is_empty());
            }
            Err(problems) => prop_assert!(!problems.is_empty()),
        }
    }

    #[test]
    fn templates_render_or_fail(text in prop_oneof![
        "[{}a-z.=!&|()'\" →日0-9<>]{0,80}",
        ".{0,80}",
    ]) {
        let checked = template::check(&text);
        let rendered = template::render(&text, &vars());
        // What `check` refuses, `render` refuses too (validate catches what run would).
        if checked.is_err() {
            prop_assert!(rendered.is_err(), "{:?}", text);
        }
        let _ = template::eval_condition(&text, &vars());
    }
}

/// Findings, kept: each crashed the process before.
#[test]
fn regressions() {
    for text in [
        "x == '→'",
        "'日' == a.b",
        "a.b == →",
        "→",
        &format!("{}true", "!".repeat(50_000)),
        &format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)),
    ] {
        let _ = template::eval_condition(text, &vars());
        let _ = template::check(&format!("{{{{{text}}}}}"));
    }
}
