//! What a run means, with the original scheduler's meaning, checked where it shows: what the
//! target saw, the report, and `validate`. A run must never be silently green.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::http_server::{Reply, serve};
use serde_json::Value;

use crate::common::*;

/// A scenario of one action per node, `nodes` in the original's form, users from `load`.
fn scenario(port: u16, load: &str, actions: &str, nodes: &str) -> String {
    format!(
        r#"
version: "1.0"
name: meaning
workbook:
  resources: [ {{ id: t, properties: {{ base: "http://127.0.0.1:{port}" }} }} ]
load:
{load}
actions:
  actions:
{actions}
workflows:
  nodes:
{nodes}
"#
    )
}

fn paths(log: &Log) -> Vec<String> {
    let mut p: Vec<String> = log.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
    p.sort();
    p
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ONE_USER: &str = "  ramp_up: { phases: [ { at_second: 0, spawn_users: 1 } ] }";

#[test]
fn strict_validate_refuses_every_warning() {
    let dir = tmp("strict");
    let s = scenario(
        1,
        ONE_USER,
        r#"    - { id: login, call: get, with: { url: "{{t.base}}/login" } }
    - { id: home, call: get, with: { url: "{{t.base}}/home" } }"#,
        r#"    - { id: a, action: login, edges: [ { to: b, trigger: { condition: "{{login.statuss == 200}}" } } ] }
    - { id: b, action: home }"#,
    );
    let path = scenario_file(&dir, &s);
    let lenient = run(&["validate", path.to_str().unwrap()]);
    assert!(lenient.status.success(), "{}", stderr(&lenient));
    assert!(
        stderr(&lenient).contains("login.statuss"),
        "{}",
        stderr(&lenient)
    );
    let strict = run(&["validate", "--strict", path.to_str().unwrap()]);
    assert_eq!(strict.status.code(), Some(2), "{}", stderr(&strict));
    assert!(
        stderr(&strict).contains("workflows.nodes[0].edges[0].trigger.condition"),
        "{}",
        stderr(&strict)
    );
}

#[test]
fn a_threshold_filter_must_name_an_action_or_tenant() {
    let dir = tmp("threshold-filter");
    for (filter, want) in [
        ("action:nosuch", "no action \"nosuch\""),
        ("tenant:nobody", "no tenant \"nobody\""),
        ("group:none", "no action has the tag group:none"),
    ] {
        let s =
            scenario(
                1,
                ONE_USER,
                r#"    - { id: a, call: get, with: { url: "{{t.base}}/" } }"#,
                "    - { id: n, action: a }",
            ) + &format!("thresholds: {{ \"http_req_duration{{{filter}}}\": [\"p(95)<500\"] }}\n");
        let path = scenario_file(&dir, &s);
        let out = run(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{filter}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("thresholds.http_req_duration{{{filter}}}"))
                && stderr(&out).contains(want),
            "{filter}: {}",
            stderr(&out)
        );
    }
}

/// Every declared action has its row; those that never ran are named; a threshold over no
/// samples says so and is crossed.
#[test]
fn actions_that_never_ran_are_named() {
    let (server, _log) = recording_target();
    let dir = tmp("never-ran");
    let s = scenario(
        server.addr.port(),
        ONE_USER,
        r#"    - { id: first, call: get, with: { url: "{{t.base}}/missing/x" } }
    - { id: second, call: get, with: { url: "{{t.base}}/two" } }
    - { id: third, call: get, with: { url: "{{t.base}}/three" } }"#,
        r#"    - { id: a, action: first, edges: [ { to: b, trigger: { on: success } }, { to: end, trigger: { on: failed } } ] }
    - { id: b, action: second, edges: [ { to: c } ] }
    - { id: c, action: third }
    - { id: end, type: end }"#,
    ) + "thresholds: { \"http_req_duration{action:third}\": [\"p(95)<500\"] }\n";
    let (out, r) = report(&dir, &s);
    assert_eq!(out.status.code(), Some(99), "{}{r}", stderr(&out));
    for id in ["second", "third"] {
        assert_eq!(r["by_action"][id]["requests"], 0, "{r}");
    }
    assert_eq!(
        r["never_ran"],
        serde_json::json!(["second", "third"]),
        "{r}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("actions that never ran: second, third"),
        "{text}"
    );
    assert!(text.contains("no data"), "{text}");
    assert_eq!(r["thresholds"][0]["ok"], false, "{r}");
}

/// `mode: loop` with a duration and no count loops until the duration ends.
#[test]
fn a_loop_with_a_duration_loops_until_it_ends() {
    let (server, log) = recording_target();
    let dir = tmp("loop-duration");
    let s = scenario(
        server.addr.port(),
        "  ramp_up: { phases: [ { at_second: 0, spawn_users: 2 } ] }\n  user_lifetime: { mode: loop, think_time: 100ms, duration: 1500ms }",
        r#"    - { id: a, call: get, with: { url: "{{t.base}}/x" } }"#,
        "    - { id: n, action: a }",
    );
    let (out, r) = report(&dir, &s);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    let n = log.lock().unwrap().len();
    // About 15 passes each (1.5 s with 100 ms pauses): far more than one, bounded.
    assert!((10..=40).contains(&n), "{n} requests");
    assert!(r["elapsed_s"].as_f64().unwrap() >= 1.4, "{r}");
}

/// Ramping users (`load.stages`) pause for the lifetime's think time between passes.
#[test]
fn stages_keep_the_think_time() {
    let (server, log) = recording_target();
    let dir = tmp("stages-think");
    let s = scenario(
        server.addr.port(),
        "  stages: [ { duration: 1s, target: 3 }, { duration: 500ms, target: 3 } ]\n  user_lifetime: { mode: loop, think_time: 200ms }",
        r#"    - { id: a, call: get, with: { url: "{{t.base}}/x" } }"#,
        "    - { id: n, action: a }",
    );
    let (out, r) = report(&dir, &s);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    let n = log.lock().unwrap().len();
    // Three users at most, 200 ms apart, for 1.5 s: at most about 25 passes.
    assert!((3..=30).contains(&n), "{n} requests");
}

/// No cap on concurrent users unless one is given, and a cap that applies is printed.
#[test]
fn no_silent_cap_on_concurrent_users() {
    let (server, _log) = recording_target();
    let dir = tmp("no-cap");
    let users = 1_020;
    let s = scenario(
        server.addr.port(),
        &format!(
            "  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: {users} }} ] }}\n  user_lifetime: {{ mode: loop, iterations: 2, think_time: 2s }}"
        ),
        r#"    - { id: a, call: get, with: { url: "{{t.base}}/x" } }"#,
        "    - { id: n, action: a }",
    );
    let (out, r) = report(&dir, &s);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    let peak = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["users_active"].as_u64())
        .max()
        .unwrap_or(0);
    assert_eq!(peak, users, "all users alive at once");
    assert!(!stderr(&out).contains("users at once"), "{}", stderr(&out));
    let capped = s.replace(
        "think_time: 2s }",
        "think_time: 0s }\n  concurrency: { max_concurrent_users: 7 }",
    );
    let (out, r) = report(&dir, &capped);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "at most 7 users at once (load.concurrency.max_concurrent_users); {users} in all"
        )),
        "{}",
        stderr(&out)
    );
}

/// A pass is at most 10,000 nodes: more nodes are refused by validate, and a cycle that runs
/// that many ends its user with an error saying so.
#[test]
fn the_node_limit_is_enforced_and_told() {
    let dir = tmp("node-limit");
    let mut nodes = String::new();
    for i in 0..10_001 {
        nodes.push_str(&format!(
            "    - {{ id: n{i}, action: a, edges: [ {{ to: n{} }} ] }}\n",
            i + 1
        ));
    }
    nodes.push_str("    - { id: n10001, type: end }\n");
    let big = scenario(
        1,
        ONE_USER,
        r#"    - { id: a, call: get, with: { url: "{{t.base}}/" } }"#,
        &nodes,
    );
    let out = run(&["validate", scenario_file(&dir, &big).to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("at most 10000"), "{}", stderr(&out));
    // A cycle of dry runs (the URL keeps a name nothing declares): nothing is sent.
    let cycle = scenario(
        1,
        ONE_USER,
        r#"    - { id: a, call: get, with: { url: "http://127.0.0.1:1/{{nothing.here}}" } }"#,
        "    - { id: n, action: a, edges: [ { to: n } ] }",
    );
    let (out, r) = report(&dir, &cycle);
    // Nothing was sent (98 comes before 97, the users' failure).
    assert_eq!(out.status.code(), Some(98), "{}{r}", stderr(&out));
    let e = r["user_errors"][0]["error"].as_str().unwrap_or_default();
    assert!(e.contains("10000 nodes"), "{r}");
}

/// A request at the start lands in the first interval, whatever the think time after it.
#[test]
fn intervals_hold_what_happened_in_them() {
    let (server, _log) = recording_target();
    let dir = tmp("intervals");
    let s = scenario(
        server.addr.port(),
        "  ramp_up: { phases: [ { at_second: 0, spawn_users: 2 } ] }\n  user_lifetime: { mode: loop, iterations: 2, think_time: 3s }",
        r#"    - { id: a, call: get, with: { url: "{{t.base}}/x" } }"#,
        "    - { id: n, action: a }",
    );
    let (out, r) = report(&dir, &s);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    let early: u64 = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["t_s"].as_f64().unwrap() <= 1.5)
        .map(|i| i["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(early, 2, "{}", r["series"]);
}

/// The original's meanings, as its target sees them: the default tenant, `trigger: {}`
/// skipped, its condition forms, routing on the outcome.
#[test]
fn edges_route_as_the_original() {
    let slow = serve("127.0.0.1:0", None, |_| {
        std::thread::sleep(Duration::from_millis(600));
        Reply::ok("late")
    });
    let (server, log) = recording_target();
    let dir = tmp("edges");
    let s = scenario(
        server.addr.port(),
        "  ramp_up: { phases: [ { at_second: 0, spawn_users: 1 }, { at_second: 0, spawn_users: 1, tenant_id: tb } ] }",
        &format!(
            r#"    - {{ id: who, call: get, with: {{ url: "{{{{t.base}}}}/t/{{{{tenant.id}}}}" }} }}
    - {{ id: never, call: get, with: {{ url: "{{{{t.base}}}}/never" }} }}
    - {{ id: is-tb, call: get, with: {{ url: "{{{{t.base}}}}/is-tb/{{{{tenant.id}}}}" }} }}
    - {{ id: not-tb, call: get, with: {{ url: "{{{{t.base}}}}/not-tb/{{{{tenant.id}}}}" }} }}
    - {{ id: missing, call: get, with: {{ url: "{{{{t.base}}}}/missing/{{{{tenant.id}}}}" }} }}
    - {{ id: failed, call: get, with: {{ url: "{{{{t.base}}}}/failed/{{{{tenant.id}}}}" }} }}
    - {{ id: slow, call: get, with: {{ url: "http://127.0.0.1:{}/", timeout: 200ms }} }}
    - {{ id: timed-out, call: get, with: {{ url: "{{{{t.base}}}}/timed-out/{{{{tenant.id}}}}" }} }}"#,
            slow.addr.port()
        ),
        r#"    - { id: a, action: who, edges: [ { to: x, trigger: {} }, { to: b, trigger: { condition: "{{tenant.id}} == tb" } }, { to: c } ] }
    - { id: x, action: never, edges: [ { to: end } ] }
    - { id: b, action: is-tb, edges: [ { to: d } ] }
    - { id: c, action: not-tb, edges: [ { to: d, trigger: { condition: "user.tenant contains default" } } ] }
    - { id: d, action: missing, edges: [ { to: x, trigger: { on: success } }, { to: e, trigger: { on: failed } } ] }
    - { id: e, action: failed, edges: [ { to: f } ] }
    - { id: f, action: slow, edges: [ { to: x, trigger: { on: failed } }, { to: g, trigger: { on: timeout } } ] }
    - { id: g, action: timed-out, edges: [ { to: end } ] }
    - { id: end, type: end }"#,
    );
    let (out, r) = report(&dir, &s);
    // The slow action timed out: an error, so not every request is ok.
    assert!(out.status.code().is_some(), "{}{r}", stderr(&out));
    assert!(r["user_errors"].as_array().unwrap().is_empty(), "{r}");
    let mut want = Vec::new();
    for t in ["default-tenant", "tb"] {
        want.push(format!("/t/{t}"));
        want.push(format!("/missing/{t}"));
        want.push(format!("/failed/{t}"));
        want.push(format!("/timed-out/{t}"));
    }
    want.push("/is-tb/tb".into());
    want.push("/not-tb/default-tenant".into());
    want.sort();
    assert_eq!(paths(&log), want);
}

/// No edge matching ends the user as an error, and so does an action that cannot be sent:
/// neither goes on to later nodes or iterations.
#[test]
fn a_dead_end_or_an_unsendable_action_stops_the_user() {
    let (server, log) = recording_target();
    let dir = tmp("dead-end");
    let load = "  ramp_up: { phases: [ { at_second: 0, spawn_users: 1 } ] }\n  user_lifetime: { mode: loop, iterations: 3 }";
    let s = scenario(
        server.addr.port(),
        load,
        r#"    - { id: a, call: get, with: { url: "{{t.base}}/a" } }
    - { id: b, call: get, with: { url: "{{t.base}}/b" } }"#,
        r#"    - { id: n, action: a, edges: [ { to: m, trigger: { condition: "a.status_code == 500" } } ] }
    - { id: m, action: b }"#,
    );
    let (out, r) = report(&dir, &s);
    assert_eq!(out.status.code(), Some(97), "{}{r}", stderr(&out));
    assert_eq!(paths(&log), ["/a"], "one pass, then the user ended");
    let e = r["user_errors"][0]["error"].as_str().unwrap_or_default();
    assert!(e.contains("no edge of node \"n\" matched"), "{r}");

    log.lock().unwrap().clear();
    let s = scenario(
        server.addr.port(),
        load,
        r#"    - { id: a, call: get, with: { url: "{{t.base}}/a", headers: { x-n: "{{b.status_code}}" } } }
    - { id: b, call: get, with: { url: "{{t.base}}/b" } }"#,
        r#"    - { id: n, action: a, edges: [ { to: m } ] }
    - { id: m, action: b }"#,
    );
    let (out, r) = report(&dir, &s);
    assert_eq!(out.status.code(), Some(98), "{}{r}", stderr(&out));
    assert!(paths(&log).is_empty(), "{:?}", paths(&log));
    let e = r["user_errors"][0]["error"].as_str().unwrap_or_default();
    assert!(e.contains("action \"a\" could not be sent"), "{r}");
}

/// `per_task`: a task is a workflow node, each with an address of its own.
#[test]
fn per_task_gives_each_node_its_own_address() {
    let (server, log) = recording_target();
    let dir = tmp("per-task");
    let s = format!(
        r#"
version: "1.0"
name: per-task
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.93.0/29"], allocation_strategy: round_robin }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 1 }} ] }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_task }} }}
actions:
  actions:
    - {{ id: one, call: get, with: {{ url: "http://127.0.0.1:{port}/one" }} }}
    - {{ id: two, call: get, with: {{ url: "http://127.0.0.1:{port}/two" }} }}
    - {{ id: three, call: get, with: {{ url: "http://127.0.0.1:{port}/three" }} }}
workflows:
  nodes:
    - {{ id: a, action: one, edges: [ {{ to: b }} ] }}
    - {{ id: b, action: two, edges: [ {{ to: c }} ] }}
    - {{ id: c, action: three }}
"#,
        port = server.addr.port()
    );
    let (out, r) = report(&dir, &s);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    let sources: BTreeSet<String> = log.lock().unwrap().iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(sources.len(), 3, "{:?}", log.lock().unwrap());
    assert!(
        sources.iter().all(|s| s.starts_with("127.0.93.")),
        "{sources:?}"
    );
}

/// A dynamic task waits behind the node already queued; one after a skipped dry run runs.
#[test]
fn dynamic_tasks_queue_behind_nodes() {
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let o = order.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        o.lock().unwrap().push(r.path.clone());
        Reply::ok("{}")
    });
    let dir = tmp("dynamic-order");
    let s = scenario(
        server.addr.port(),
        ONE_USER,
        r#"    - { id: seed, call: get, with: { url: "{{t.base}}/seed", dynamic_tasks: [ { id: d1, action_id: later } ] } }
    - { id: dry, call: get, with: { url: "{{t.base}}/{{nothing.declared}}", dynamic_tasks: [ { id: d2, action_id: after-dry } ] } }
    - { id: next, call: get, with: { url: "{{t.base}}/next" } }
    - { id: later, call: get, with: { url: "{{t.base}}/later" } }
    - { id: after-dry, call: get, with: { url: "{{t.base}}/after-dry" } }"#,
        r#"    - { id: a, action: seed, edges: [ { to: b } ] }
    - { id: b, action: next, edges: [ { to: c } ] }
    - { id: c, action: dry }"#,
    );
    let (out, r) = report(&dir, &s);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    assert_eq!(
        *order.lock().unwrap(),
        ["/seed", "/next", "/later", "/after-dry"]
    );
}

/// A /30 gives its four addresses in every mode: one process, and two segments together
/// (four users alive at once, so each holds its own).
#[test]
fn a_cidr_gives_the_same_addresses_in_every_mode() {
    let (server, log) = recording_target();
    let dir = tmp("cidr-modes");
    let s = format!(
        r#"
version: "1.0"
name: cidr
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.94.0/30"] }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 4 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2, think_time: 500ms }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/x" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let want: BTreeSet<String> = (0..4).map(|i| format!("127.0.94.{i}")).collect();
    let out = run(&["run", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = |log: &Log| -> BTreeSet<String> {
        log.lock().unwrap().iter().map(|(_, s)| s.clone()).collect()
    };
    assert_eq!(seen(&log), want);
    log.lock().unwrap().clear();
    for seg in ["0/2", "1/2"] {
        let out = run(&["run", path.to_str().unwrap(), "--segment", seg]);
        assert!(out.status.success(), "{seg}: {}", stderr(&out));
    }
    assert_eq!(seen(&log), want);
}

/// The original's UDP file binds to a pool `default` it does not declare (its host's own
/// resources pool): it validates and runs, from the host's address; `payload_hex` takes `0x`.
#[test]
fn the_originals_udp_file_with_its_host_pool_runs() {
    let (echo, seen) = udp_server(|p| Some(p.to_vec()));
    let dir = tmp("udp-host-pool");
    let s = format!(
        r#"version: "v1"
name: "udp-echo-minimal"
workbook:
  resources:
    - id: "udp-target"
      type: "udp-endpoint"
      properties: {{ peer_ip: "127.0.0.1", peer_port: {echo}, peer_mac: "02:00:00:00:00:a2", pool: "default" }}
load:
  ramp_up:
    phases:
      - {{ at_second: 0, spawn_users: 1 }}
      - {{ at_second: 1, spawn_users: 1 }}
  user_lifetime: {{ mode: "once", max_concurrency: 1 }}
user_resources:
  ip_binding: {{ enabled: true, pool_id: "default" }}
actions:
  actions:
    - id: "udp-send-reply"
      call: "udp-send-reply"
      with: {{ payload: "hello-ntx", timeout_ms: 3000, retry: {{ max: 0, backoff_ms: 500 }}, expect: {{ payload_hex: "0X68656C6C6F2D6E7478" }} }}
workflows:
  nodes:
    - {{ id: "start", type: "action", priority: 10, action: "udp-send-reply", edges: [ {{ to: "wait-echo", label: "sent" }} ] }}
    - id: "wait-echo"
      type: "wait"
      on: {{ event: "packet-rx", match: {{ action_id: "udp-send-reply", payload_hex: "0x68656c6c6f2d6e7478" }} }}
      edges: [ {{ to: "end", label: "echo-ok" }} ]
    - {{ id: "end", type: "end" }}
"#
    );
    let path = scenario_file(&dir, &s);
    let out = run(&["validate", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("host's own address"),
        "{}",
        stderr(&out)
    );
    let (out, r) = report(&dir, &s);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(r["by_action"]["udp-send-reply"]["ok"], 2, "{r}");
}

/// The original's http_circular_ref file: properties that refer to each other and that no
/// template reads are a warning, and the file runs (its target moved to loopback).
#[test]
fn the_originals_circular_ref_file_runs() {
    let (server, log) = recording_target();
    let dir = tmp("circular");
    let s = format!(
        r#"version: "1.0"
name: http_circular_reference_test
workbook:
  ip_pools:
    - {{ id: eip-pool-1, name: "Test EIP Pool", ranges: ["127.0.95.0/28"], allocation_strategy: round_robin }}
  resources:
    - id: test
      type: http_endpoint
      properties:
        protocol: "http"
        host: "127.0.0.1"
        port: "{}"
        var_a: "Value A references {{{{test.var_b}}}}"
        var_b: "Value B references {{{{test.var_a}}}}"
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 1 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 1, think_time: 100ms }}
  user_resources:
    ip_binding: {{ enabled: true, pool_id: eip-pool-1, strategy: per_user, release_on: user_exit }}
actions:
  actions:
    - id: simple-get
      call: get
      with: {{ url: "{{{{test.protocol}}}}://{{{{test.host}}}}:{{{{test.port}}}}/get", bind_ip: "{{{{user.allocated_ip}}}}" }}
workflows:
  nodes:
    - {{ id: start, type: action, action: simple-get, edges: [ {{ to: end, trigger: {{ condition: "true" }} }} ] }}
    - {{ id: end, type: end }}
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let out = run(&["validate", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("circular reference"),
        "{}",
        stderr(&out)
    );
    let (out, r) = report(&dir, &s);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "/get");
    assert!(seen[0].1.starts_with("127.0.95."), "{seen:?}");
    let v: Value = r;
    assert_eq!(v["totals"]["ok"], 1);
}

/// The original's plugins/scheduler scenario files, as written but for their targets and
/// pools (moved to loopback) and their phases (sooner): http_scenario (a probe, a POST when it
/// returned 200, `release_on: task_end`) and http_recursive_vars (properties that build on
/// each other). What the target saw is what the original's meaning says.
#[test]
fn the_originals_plugin_scenarios_run() {
    let (server, log) = recording_target();
    let port = server.addr.port();
    let dir = tmp("plugin-scenarios");
    let tri_phase = format!(
        r#"version: "1.0"
name: http_tri_phase_demo
workbook:
  ip_pools:
    - id: eip-pool-1
      name: "HTTP Client EIP Pool"
      ranges:
        - "127.0.97.0/24"
        - "127.0.98.0/24"
      allocation_strategy: round_robin
  resources:
    - id: resource
      type: http_endpoint
      properties:
        ip: "127.0.0.1"
        port: "{port}"
load:
  ramp_up:
    phases:
      - at_second: 0
        spawn_users: 10
      - at_second: 1
        spawn_users: 3
  user_lifetime:
    mode: loop
    iterations: 3
    think_time: 100ms
  user_resources:
    ip_binding:
      enabled: true
      pool_id: eip-pool-1
      strategy: per_user
      release_on: task_end
actions:
  actions:
    - id: probe-get
      call: get
      with:
        url: "http://{{{{resource.ip}}}}:{{{{resource.port}}}}/asset"
        bind_ip: "{{{{user.allocated_ip}}}}"
      export:
        - type: content
          name: status_code
          default: 0
    - id: push-post
      call: post
      with:
        url: "http://{{{{resource.ip}}}}:{{{{resource.port}}}}/asset"
        bind_ip: "{{{{user.allocated_ip}}}}"
        headers:
          content-type: application/json
        body: "{{{{asset.body}}}}"
workflows:
  nodes:
    - id: start
      type: action
      action: probe-get
      edges:
        - to: push-node
          trigger:
            condition: "{{{{probe-get.status_code == 200}}}}"
          label: "success"
        - to: end
          trigger:
            condition: "true"
          label: "fail"
    - id: push-node
      type: action
      action: push-post
      edges:
        - to: end
          trigger:
            condition: "{{{{push-post.status_code == 200}}}}"
          label: "success"
    - id: end
      type: end
"#
    );
    let (out, r) = report(&dir, &tri_phase);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    let seen = log.lock().unwrap().clone();
    // 13 users, 3 passes, a GET and a POST each; every request from the pools' addresses.
    assert_eq!(seen.len(), 13 * 3 * 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|(p, s)| p == "/asset"
                && (s.starts_with("127.0.97.") || s.starts_with("127.0.98."))),
        "{seen:?}"
    );
    assert_eq!(r["by_tenant"]["default-tenant"]["requests"], 78, "{r}");

    log.lock().unwrap().clear();
    let recursive = format!(
        r#"version: "1.0"
name: http_recursive_variables_demo
workbook:
  ip_pools:
    - {{ id: eip-pool-1, name: "Test EIP Pool", ranges: ["127.0.99.0/28"], allocation_strategy: round_robin }}
  resources:
    - id: base
      type: http_endpoint
      properties:
        protocol: "http"
        host: "127.0.0.1"
        port: "{port}"
        url: "{{{{base.protocol}}}}://{{{{base.host}}}}:{{{{base.port}}}}"
    - id: final
      type: http_endpoint
      properties:
        endpoint: "{{{{base.url}}}}/get"
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 2 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 1, think_time: 500ms }}
  user_resources:
    ip_binding: {{ enabled: true, pool_id: eip-pool-1, strategy: per_user, release_on: user_exit }}
actions:
  actions:
    - id: test-get
      call: get
      with: {{ url: "{{{{final.endpoint}}}}", bind_ip: "{{{{user.allocated_ip}}}}" }}
      export: [ {{ type: content, name: status_code, default: 0 }} ]
workflows:
  nodes:
    - {{ id: start, type: action, action: test-get, edges: [ {{ to: end, trigger: {{ condition: "true" }} }} ] }}
    - {{ id: end, type: end }}
"#
    );
    let (out, r) = report(&dir, &recursive);
    assert!(out.status.success(), "{}{r}", stderr(&out));
    let seen = log.lock().unwrap().clone();
    let sources: BTreeSet<&str> = seen.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|(p, _)| p == "/get"), "{seen:?}");
    assert_eq!(sources.len(), 2, "{seen:?}");
}
