//! The `scheduler` binary end to end: demo, tenants and pools, exhaustion, conditions,
//! validation, and a kill -9 with --state-dir. Targets are in-process servers on loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::http_server::{Reply, serve};
use serde_json::Value;

use crate::common::*;

fn in_cidr24(ip: &str, prefix: &str) -> bool {
    ip.starts_with(prefix)
}

#[test]
fn demo_runs_and_target_counts_match_the_report() {
    let dir = tmp("demo");
    let json = dir.join("r.json");
    let metrics = dir.join("m.prom");
    let out = run(&[
        "demo",
        "--short",
        "--json",
        json.to_str().unwrap(),
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["success_rate"], 1.0);
    assert_eq!(r["users"]["spawned"], 12);
    let target = r["target_counts"].as_object().unwrap();
    let by_source = r["by_source"].as_object().unwrap();
    assert!(!target.is_empty());
    assert_eq!(target.len(), by_source.len());
    for (ip, n) in target {
        assert_eq!(
            &by_source[ip]["requests"], n,
            "target and report agree for {ip}"
        );
        assert!(
            ip.starts_with("127.0.30.") || ip.starts_with("127.0.31."),
            "{ip} from the pool"
        );
    }
    let m = std::fs::read_to_string(&metrics).unwrap();
    for name in [
        "scheduler_users_spawned_total 12",
        "scheduler_users_active",
        "scheduler_ip_pool_available",
        "scheduler_ip_pool_allocated",
        "executor_tasks_executed_total",
        "executor_tasks_success_total",
        "http_requests_total",
        "http_requests_duration_seconds_bucket",
    ] {
        assert!(m.contains(name), "metrics lack {name}");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("target saw") && text.contains("p99 ms"));
    // The GETs' target is a server of the http-server component: it answered each of them.
    let gets = &r["by_action"]["probe-get"]["requests"];
    assert_eq!(
        &r["servers"]["target[0]"]["requests"], gets,
        "{}",
        r["servers"]
    );
    assert_eq!(&r["servers"]["target[0]"]["statuses"]["200"], gets);
}

/// The tenant and user in the path by templates, or one fixed URL (`fixed`: the action renders
/// the same every time, apart from the source address).
fn two_tenant_scenario(port: u16, strategy: &str, iterations: u32, fixed: bool) -> String {
    let url = if fixed {
        format!("http://127.0.0.1:{port}/fixed")
    } else {
        "http://{{target.ip}}:{{target.port}}/{{user.tenant}}/{{user.id}}".to_string()
    };
    format!(
        r#"
version: "1.0"
name: two-tenants
workbook:
  ip_pools:
    - {{ id: pool-a, ranges: ["127.0.40.0/24"], allocation_strategy: round_robin }}
    - {{ id: pool-b, ranges: ["127.0.41.0/28"], allocation_strategy: sequential }}
  resources:
    - {{ id: target, type: http_endpoint, properties: {{ ip: "127.0.0.1", port: "{port}" }} }}
load:
  ramp_up:
    phases:
      - {{ at_second: 0, spawn_users: 6, tenant_id: tenant-a, ip_pool_override: pool-a }}
      - {{ at_second: 0, spawn_users: 4, tenant_id: tenant-b, ip_pool_override: pool-b }}
  user_lifetime: {{ mode: loop, iterations: {iterations}, think_time: 10ms }}
  user_resources:
    ip_binding: {{ enabled: true, strategy: {strategy}, release_on: user_exit, wait_on_exhaustion: true, wait_timeout: 10s }}
  concurrency: {{ max_concurrent_users: 50 }}
actions:
  actions:
    - id: hit
      call: get
      with: {{ url: "{url}" }}
workflows:
  nodes:
    - {{ id: start, type: action, action: hit, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#
    )
}

#[test]
fn tenants_use_their_own_pools_per_user_and_per_task() {
    let dir = tmp("tenants");
    // One run against a fresh recording target: the report, and what the target saw.
    let run_with = |strategy: &str, fixed: bool| {
        let (server, log) = recording_target();
        let (out, r) = report(
            &dir,
            &two_tenant_scenario(server.addr.port(), strategy, 3, fixed),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(r["success_rate"], 1.0, "{r}");
        let log = log.lock().unwrap().clone();
        (r, log)
    };
    let (r, log) = run_with("per_user", false);
    assert_eq!(log.len(), 30);
    let mut by_user: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, ip) in &log {
        if path.starts_with("/tenant-a/") {
            assert!(in_cidr24(ip, "127.0.40."), "tenant-a request from {ip}");
        } else {
            assert!(path.starts_with("/tenant-b/"));
            assert!(in_cidr24(ip, "127.0.41."), "tenant-b request from {ip}");
        }
        by_user.entry(path.clone()).or_default().insert(ip.clone());
    }
    // per_user: one address per user for its whole life, and no address used by two users at
    // once. A user may take an address another has given back on exit (pool-b hands out the
    // lowest free one): on a busy machine the first users can finish before the last start.
    assert_eq!(by_user.len(), 10);
    for (user, ips) in &by_user {
        assert_eq!(ips.len(), 1, "{user} used {ips:?}");
    }
    let mut turns: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (user, ip) in &log {
        let users = turns.entry(ip).or_default();
        if users.last() != Some(&user.as_str()) {
            assert!(
                !users.contains(&user.as_str()),
                "{ip}: {users:?} then {user} again"
            );
            users.push(user);
        }
    }
    assert!(
        r["pools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["allocated"] == 0),
        "all released: {}",
        r["pools"]
    );

    // per_task: a fresh address for each task (round robin does not hand a released one back at once).
    let (_, log) = run_with("per_task", false);
    let mut tenant_a: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, ip) in &log {
        if path.starts_with("/tenant-a/") {
            tenant_a.entry(path.clone()).or_default().push(ip.clone());
        }
    }
    for (user, ips) in &tenant_a {
        let distinct: BTreeSet<&String> = ips.iter().collect();
        assert_eq!(distinct.len(), 3, "{user} per_task addresses {ips:?}");
    }

    // per_task with a fixed URL: the call is rendered once, but each task still goes out from
    // its own fresh address.
    let (r, log) = run_with("per_task", true);
    assert_eq!(log.len(), 30);
    assert!(log.iter().all(|(path, _)| path == "/fixed"), "{log:?}");
    let sources = r["user_sources"].as_object().unwrap();
    assert_eq!(sources.len(), 10, "{r}");
    let mut seen = BTreeSet::new();
    for (user, ips) in sources {
        let ips: Vec<&str> = ips
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        // Round robin (tenant-a) does not hand a released address back at once; sequential
        // (tenant-b) may.
        if in_cidr24(ips[0], "127.0.40.") {
            assert_eq!(ips.len(), 3, "user {user} per_task addresses {ips:?}");
        }
        for ip in &ips {
            assert!(
                in_cidr24(ip, "127.0.40.") || in_cidr24(ip, "127.0.41."),
                "{ip}"
            );
            seen.insert(ip.to_string());
        }
    }
    let logged: BTreeSet<String> = log.iter().map(|(_, ip)| ip.clone()).collect();
    assert_eq!(
        logged, seen,
        "the target saw the addresses the report names"
    );
}

fn exhaustion_scenario(port: u16, wait: bool, reserve: bool) -> String {
    format!(
        r#"
version: "1.0"
name: exhaustion
workbook:
  ip_pools: [ {{ id: tiny, ranges: ["127.0.42.0/30"], reserve_network_broadcast: {reserve} }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{port}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 5, tenant_id: x }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2, think_time: 100ms }}
  user_resources:
    ip_binding: {{ enabled: true, pool_id: tiny, strategy: per_user, wait_on_exhaustion: {wait}, wait_timeout: 20s }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/x" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#
    )
}

#[test]
fn exhaustion_fails_or_waits_as_configured() {
    let (server, _) = recording_target();
    let dir = tmp("exhaust");
    // A /30 gives its four addresses, as the original's pool does; five users.
    let (out, r) = report(&dir, &exhaustion_scenario(server.addr.port(), false, false));
    assert_eq!(
        out.status.code(),
        Some(97),
        "users that could not run fail the run"
    );
    let errors = r["user_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{r}");
    let sources: BTreeSet<&str> = r["by_source"]
        .as_object()
        .unwrap()
        .keys()
        .map(|s| s.as_str())
        .collect();
    let all4 = ["127.0.42.0", "127.0.42.1", "127.0.42.2", "127.0.42.3"];
    assert_eq!(sources, BTreeSet::from(all4));
    // Reserving the network and broadcast addresses leaves two.
    let (out, r) = report(&dir, &exhaustion_scenario(server.addr.port(), false, true));
    assert_eq!(out.status.code(), Some(97));
    let errors = r["user_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{r}");
    assert!(
        errors
            .iter()
            .all(|e| e["error"].as_str().unwrap().contains("exhausted")),
        "{errors:?}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("users that could not run"));

    let (out, r) = report(&dir, &exhaustion_scenario(server.addr.port(), true, true));
    assert!(out.status.success());
    assert_eq!(r["user_errors"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["totals"]["requests"], 10, "all five users ran");
    let sources: BTreeSet<&str> = r["by_source"]
        .as_object()
        .unwrap()
        .keys()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(sources, BTreeSet::from(["127.0.42.1", "127.0.42.2"]));
}

#[test]
fn conditions_route_the_workflow() {
    let (server, log) = recording_target();
    let dir = tmp("conditions");
    let port = server.addr.port();
    let scenario = format!(
        r#"
version: "1.0"
name: routes
workbook:
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{port}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 2, tenant_id: ok }}, {{ at_second: 0, spawn_users: 2, tenant_id: missing }} ] }}
actions:
  actions:
    - {{ id: probe, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/{{{{user.tenant}}}}/probe" }}, export: [ {{ type: content, name: status_code }} ] }}
    - {{ id: found, call: post, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/found", body: {{ from: "{{{{user.id}}}}" }} }} }}
    - {{ id: fallback, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/fallback?code={{{{probe.status_code}}}}" }} }}
workflows:
  nodes:
    - id: start
      action: probe
      edges:
        - {{ to: found-node, trigger: {{ condition: "{{{{probe.status_code == 200 && user.tenant == 'ok'}}}}" }} }}
        - {{ to: fallback-node, trigger: {{ condition: "probe.status_code >= 400 || !probe.ok" }} }}
        - {{ to: end }}
    - {{ id: found-node, action: found, edges: [ {{ to: end }} ] }}
    - {{ id: fallback-node, action: fallback, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#
    );
    let (out, r) = report(&dir, &scenario);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["by_action"]["probe"]["requests"], 4);
    assert_eq!(r["by_action"]["found"]["requests"], 2);
    assert_eq!(r["by_action"]["fallback"]["requests"], 2);
    let paths: Vec<String> = log.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(
        paths.iter().filter(|p| *p == "/fallback?code=404").count(),
        2,
        "{paths:?}"
    );
}

#[test]
fn bad_scenarios_are_refused_with_paths() {
    let dir = tmp("bad");
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        r#"
version: "1.0"
name: bad
surprise: 1
workbook:
  ip_pools: [ { id: p, ranges: ["10.0.0.0/33"] } ]
load:
  ramp_up: { phases: [ { at_second: 0, spawn_users: 1 } ] }
  user_lifetime: { mode: loop, iterations: 2, think_time: 5 parsecs }
actions:
  actions: [ { id: a, call: get, with: { url: "http://127.0.0.1:1/" } } ]
workflows:
  nodes:
    - { id: start, action: nope, edges: [ { to: nowhere } ] }
"#,
    )
    .unwrap();
    for cmd in ["validate", "run"] {
        let out = run(&[cmd, path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        for want in [
            "surprise: unknown field",
            "workbook.ip_pools[0].ranges[0]: invalid CIDR",
            "load.user_lifetime.think_time: bad duration",
            "workflows.nodes[0].action: unknown action \"nope\"",
            "workflows.nodes[0].edges[0].to: no node \"nowhere\"",
        ] {
            assert!(err.contains(want), "{cmd}: missing {want:?} in:\n{err}");
        }
    }
    // A YAML syntax error carries its line.
    std::fs::write(&path, "version: \"1.0\"\nname: [unclosed\n").unwrap();
    let out = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line"));
    // Usage errors are messages, not panics.
    for args in [
        &[][..],
        &["nope"],
        &["run"],
        &["exec", "GET"],
        &["run", "/no/such/file.yaml"],
        &["demo", "--json"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    assert!(run(&["validate", "scenarios/demo.yaml"]).status.success());
    // So are bad settings in the environment, before anything starts; `validate` reads none.
    for (var, value) in [
        ("SCHEDULER_THREADS", "0"),
        ("SCHEDULER_MEMORY", "bogus"),
        ("SCHEDULER_SOCKETS", "Own"),
    ] {
        let out = Command::new(BIN)
            .args(["run", "scenarios/demo.yaml"])
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {err}");
        assert!(err.contains(var) && out.stdout.is_empty(), "{var}: {err}");
        let out = Command::new(BIN)
            .args(["validate", "scenarios/demo.yaml"])
            .env(var, value)
            .output()
            .unwrap();
        assert!(out.status.success(), "validate with {var}={value}");
    }
}

/// Fields the format does not know (the original's `monitoring`, a typo) are ignored with a
/// warning, as the original scheduler ignores them; `validate --strict` refuses them.
#[test]
fn unknown_fields_warn_and_strict_refuses_them() {
    let (server, log) = recording_target();
    let dir = tmp("strict");
    let path = scenario_file(
        &dir,
        &format!(
            r#"
version: "1.0"
name: strict
monitoring: {{ enabled: true, interval: 5s }}
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 1 }} ] }}
  user_lifetime: {{ mode: once, colour: blue }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/ok" }} }} ]
workflows:
  nodes: [ {{ id: start, action: a, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#,
            server.addr.port()
        ),
    );
    let out = run(&["validate", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: monitoring: unknown field, ignored"),
        "{err}"
    );
    assert!(
        err.contains("warning: load.user_lifetime.colour: unknown field, ignored"),
        "{err}"
    );
    let out = run(&["validate", "--strict", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("2 problem(s)"), "{err}");
    assert!(err.contains("monitoring: unknown field"), "{err}");
    // run takes it as validate does, and runs it.
    let out = run(&["run", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[test]
fn exec_runs_one_action() {
    let (server, _) = recording_target();
    let url = format!("http://127.0.0.1:{}/x", server.addr.port());
    let out = run(&[
        "exec",
        "POST",
        &url,
        "--bind-ip",
        "127.0.43.9",
        "--header",
        "X-A: 1",
        "--body",
        "hi",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 200);
    assert!(
        v["source_address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.43.9:")
    );
    // Anything the command does not name is out of reach, even with -L: here a redirect
    // to another host (with -L, another port of the same host is followed, as curl).
    let other = serve("127.0.0.2:0", None, |_| Reply::ok("secret"));
    let to = format!("http://127.0.0.2:{}/", other.addr.port());
    let hop = serve("127.0.0.1:0", None, move |_| {
        Reply::status(302, &[("Location", to.as_str())])
    });
    let out = run(&[
        "exec",
        "-L",
        "GET",
        &format!("http://127.0.0.1:{}/", hop.addr.port()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("access-denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SCHEDULER_EXECUTOR: another build of the artifact (here a copy), or a clear error.
    let dir = tmp("executor-override");
    let copy = dir.join("copy.wasm");
    std::fs::copy(compose::EXECUTOR_ARTIFACT, &copy).unwrap();
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let with = |path: &Path| {
        Command::new(BIN)
            .args(["exec", "GET", &url])
            .env("SCHEDULER_EXECUTOR", path)
            .output()
            .unwrap()
    };
    let out = with(&copy);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for bad in [dir.join("missing.wasm"), junk] {
        let out = with(&bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains(&format!("loading the artifact {}", bad.display())),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn kill_9_keeps_bindings_and_a_restart_duplicates_none() {
    let (server, log) = recording_target();
    let dir = tmp("kill9");
    let state = dir.join("state");
    let port = server.addr.port();
    let scenario = |duration: &str| {
        format!(
            r#"
version: "1.0"
name: persistent
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.44.0/24"], allocation_strategy: random }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{port}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 5, tenant_id: k }} ] }}
  user_lifetime: {{ mode: loop, iterations: 0, think_time: 50ms, duration: {duration} }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/{{{{user.id}}}}" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#
        )
    };
    let path = dir.join("s.yaml");
    std::fs::write(&path, scenario("60s")).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "run",
            path.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until all five users have sent requests, then kill -9.
    let start = Instant::now();
    while log
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect::<BTreeSet<_>>()
        .len()
        < 5
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "users did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before: BTreeMap<String, String> = {
        let log = log.lock().unwrap();
        log.iter()
            .map(|(p, ip)| (p.trim_start_matches('/').to_string(), ip.clone()))
            .collect()
    };

    // The persisted state holds every binding, each address once.
    let mut pools = persisted_pools(&state);
    let held = pools.list_by_tenant("p", "k").unwrap();
    assert_eq!(held.len(), 5, "{held:?}");
    let ips: BTreeSet<String> = held.iter().map(|b| b.ip.to_string()).collect();
    assert_eq!(ips.len(), 5);
    for b in &held {
        let user = b.resource.trim_start_matches("user-");
        assert_eq!(
            before[user],
            b.ip.to_string(),
            "the persisted binding is the one user {user} used"
        );
    }

    // Restart on the same state: each user gets its own address back, nobody else gets it.
    log.lock().unwrap().clear();
    std::fs::write(&path, scenario("1s")).unwrap();
    let json = dir.join("r.json");
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (p, ip) in log.lock().unwrap().iter() {
        assert_eq!(
            &before[p.trim_start_matches('/')],
            ip,
            "user {p} kept its address after the restart"
        );
    }
    assert_eq!(
        persisted_pools(&state).stats("p").unwrap().allocated,
        0,
        "released at the end of the clean run"
    );
}

#[test]
fn ctrl_c_stops_releases_and_reports() {
    let (server, log) = recording_target();
    let dir = tmp("sigint");
    let state = dir.join("state");
    let port = server.addr.port();
    let scenario = format!(
        r#"
version: "1.0"
name: endless
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.45.0/24"] }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{port}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 4, tenant_id: s }}, {{ at_second: 30, spawn_users: 4, tenant_id: s }} ] }}
  user_lifetime: {{ mode: loop, iterations: 0, think_time: 20ms }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/{{{{user.id}}}}" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#
    );
    let path = dir.join("s.yaml");
    std::fs::write(&path, scenario).unwrap();
    let json = dir.join("r.json");
    let child = Command::new(BIN)
        .args([
            "run",
            path.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while log.lock().unwrap().len() < 20 {
        assert!(start.elapsed() < Duration::from_secs(60), "no traffic");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "an interrupted run exits 130: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "stopped within the drain bound"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(interrupted)") && text.contains("ip pools at the end"),
        "{text}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["interrupted"], true);
    assert_eq!(
        r["users"]["spawned"], 4,
        "the second phase was never spawned"
    );
    assert_eq!(r["pools"][0]["allocated"], 0, "addresses released");
    assert_eq!(
        persisted_pools(&state).stats("p").unwrap().allocated,
        0,
        "and persisted as released"
    );
}

/// A plain scenario around one action URL and one edge condition, for hostile variations.
fn plain_scenario(port: u16, url: &str, condition: &str, extra_load: &str, at: &str) -> String {
    format!(
        r#"
version: "1.0"
name: plain
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.47.0/28"] }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{port}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: {at}, spawn_users: 2, tenant_id: "日本" }} ] }}
  user_lifetime: {{ mode: once }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
{extra_load}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "{url}" }} }} ]
workflows:
  nodes:
    - {{ id: start, action: hit, edges: [ {{ to: again, trigger: {{ condition: "{condition}" }} }}, {{ to: end }} ] }}
    - {{ id: again, action: hit, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#
    )
}

fn validate_and_run(dir: &Path, name: &str, scenario: &str) -> (Output, Output, Duration) {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, scenario).unwrap();
    let start = Instant::now();
    let v = run(&["validate", path.to_str().unwrap()]);
    let took = start.elapsed();
    let r = run(&["run", path.to_str().unwrap()]);
    (v, r, took)
}

/// Inputs that crashed the process, took minutes, or wrapped around: each is refused by
/// `validate` and by `run` alike, exit 2, with its field path, and quickly.
#[test]
fn hostile_scenarios_are_refused_with_their_path() {
    let dir = tmp("hostile");
    let url = "http://127.0.0.1:9/x";
    let ok_cond = "{{hit.status_code == 200}}";
    let deep = |n: usize| format!("{}1 == 1{}", "(".repeat(n), ")".repeat(n));
    let phases = {
        let mut p = String::from("load:\n  ramp_up:\n    phases:\n");
        for _ in 0..43_000 {
            p.push_str("      - { at_second: 0, spawn_users: 100000 }\n");
        }
        p
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "inf-at-second",
            plain_scenario(9, url, ok_cond, "", ".inf"),
            "at_second",
        ),
        (
            "huge-at-second",
            plain_scenario(9, url, ok_cond, "", "1e300"),
            "at_second",
        ),
        (
            "tiny-rate",
            plain_scenario(
                9,
                url,
                ok_cond,
                "  concurrency: { spawn_rate_limit: \"1e-300/s\" }",
                "0",
            ),
            "spawn_rate_limit",
        ),
        (
            "deep-parens",
            plain_scenario(9, url, &deep(10_000), "", "0"),
            "trigger.condition",
        ),
        (
            "deep-not",
            plain_scenario(9, url, &format!("{}true", "!".repeat(50_000)), "", "0"),
            "trigger.condition",
        ),
        (
            "deep-parens-in-url",
            plain_scenario(
                9,
                &format!("http://127.0.0.1:9/{{{{{}}}}}", deep(3_000)),
                ok_cond,
                "",
                "0",
            ),
            "with.url",
        ),
        (
            "nested-brackets",
            format!("name: x\nload: {}{}\n", "[".repeat(200_000), "]".repeat(200_000)),
            "(document)",
        ),
        (
            "user-total",
            plain_scenario(9, url, ok_cond, "", "0").replacen(
                "load:\n  ramp_up: { phases: [ { at_second: 0, spawn_users: 2, tenant_id: \"日本\" } ] }\n",
                &phases,
                1,
            ),
            "4300000000 users",
        ),
        (
            "overlapping-pools",
            plain_scenario(9, url, ok_cond, "", "0").replace(
                "ip_pools: [ { id: p, ranges: [\"127.0.47.0/28\"] } ]",
                "ip_pools: [ { id: p, ranges: [\"127.0.47.0/28\"] }, { id: q, ranges: [\"127.0.47.8-127.0.47.20\"] } ]",
            ),
            "overlaps",
        ),
    ];
    for (name, scenario, path) in cases {
        let (v, r, took) = validate_and_run(&dir, name, &scenario);
        for (what, out) in [("validate", &v), ("run", &r)] {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name}: {what}: {err}");
            assert!(err.contains(path), "{name}: {what} names {path}: {err}");
        }
        assert!(
            took < Duration::from_secs(5),
            "{name}: validate took {took:?}"
        );
    }
}

/// Multi-byte characters in conditions and templates (the condition scanner sliced inside a
/// character): they validate and run.
#[test]
fn multibyte_conditions_and_templates_run() {
    let (server, log) = recording_target();
    let dir = tmp("utf8");
    let s = plain_scenario(
        server.addr.port(),
        "http://{{t.ip}}:{{t.port}}/{{user.tenant == '日本'}}/{{user.tenant != '→'}}",
        "{{user.tenant == '日本'}}",
        "",
        "0",
    );
    let (v, r, _) = validate_and_run(&dir, "utf8", &s);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.len(),
        4,
        "two users, the condition true for both: {log:?}"
    );
    assert!(log.iter().all(|(p, _)| p == "/true/true"), "{log:?}");
}

/// A panic inside a user's task is that user's error, and fails the run.
#[test]
fn a_panicking_user_is_reported_and_fails_the_run() {
    let (server, log) = recording_target();
    let dir = tmp("panic");
    let scenario = plain_scenario(
        server.addr.port(),
        "http://{{t.ip}}:{{t.port}}/x",
        "false",
        "",
        "0",
    );
    let env = [("SCHEDULER_TEST_PANIC_USER", "2")];
    let (out, r) = report_in_env(&dir, &scenario, &[], &env);
    assert_eq!(
        out.status.code(),
        Some(97),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = r["user_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{r}");
    assert_eq!(errors[0]["user"], 2);
    assert!(errors[0]["error"].as_str().unwrap().contains("panicked"));
    assert_eq!(log.lock().unwrap().len(), 1, "user 1 ran");
    assert_eq!(
        r["pools"][0]["allocated"], 0,
        "the panicked user's address is released"
    );
}

/// A trap ends the pass it happened in, and the user goes on in a fresh instance (as a k6 VU
/// goes on after an exception): its next passes run, none sees "cannot enter component
/// instance". The trap is a real one, from a memory made to trap past 8 MiB (a debug build's
/// fault injection) while a 16 MiB body is kept.
#[test]
fn a_trapped_instance_is_replaced_and_the_user_goes_on() {
    let server = serve("127.0.0.1:0", None, |r| match r.path.as_str() {
        "/big" => Reply::ok(vec![b'b'; 16 << 20]),
        _ => Reply::ok("small"),
    });
    let dir = tmp("trap");
    let port = server.addr.port();
    let scenario = format!(
        r#"
version: "1.0"
name: trap
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 1 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 3 }}
actions:
  actions:
    - {{ id: big, call: get, with: {{ url: "http://127.0.0.1:{port}/big", max_response_body: 100000000 }} }}
    - {{ id: small, call: get, with: {{ url: "http://127.0.0.1:{port}/small" }} }}
workflows:
  nodes:
    - {{ id: start, action: big, once: true, edges: [ {{ to: next }} ] }}
    - {{ id: next, action: small, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#
    );
    let limit = (8u32 << 20).to_string();
    let env = [("SCHEDULER_TEST_TRAP_GROW_PAST", limit.as_str())];
    let (out, r) = report_in_env(&dir, &scenario, &[], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(r["by_action"]["big"]["requests"], 1, "{r}\n{stderr}");
    let errors = r["errors"].as_object().unwrap();
    assert_eq!(errors.len(), 1, "{r}");
    let (kind, n) = errors.iter().next().unwrap();
    assert_eq!(
        kind, "trap: execute-action trapped: fault injected: a memory grew past 8388608 bytes",
        "the cause, without the backtrace's offsets"
    );
    assert_eq!(n, 1);
    // The trapped pass ended there; the next two ran `small` in a fresh instance.
    assert_eq!(r["by_action"]["small"]["requests"], 2, "{r}");
    assert_eq!(r["by_status_class"]["2xx"]["requests"], 2, "{r}");
    assert!(r["user_errors"].as_array().unwrap().is_empty(), "{r}");
}

/// With an address from the pool in force, a user cannot send from another one: not the
/// wildcard, not an address of its own choosing.
#[test]
fn a_binding_in_force_cannot_be_bypassed() {
    let (server, log) = recording_target();
    let dir = tmp("bypass");
    for bind in ["0.0.0.0", "127.0.48.1"] {
        let s = plain_scenario(
            server.addr.port(),
            "http://{{t.ip}}:{{t.port}}/x",
            "false",
            "",
            "0",
        )
        .replace(
            "with: { url: \"http://{{t.ip}}:{{t.port}}/x\" }",
            &format!(
                "with: {{ url: \"http://{{{{t.ip}}}}:{{{{t.port}}}}/x\", bind_ip: \"{bind}\" }}"
            ),
        );
        let (out, r) = report(&dir, &s);
        assert_eq!(
            out.status.code(),
            Some(98),
            "nothing was tested: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Refused before sending: errors of their kind, not requests with a latency.
        assert_eq!(r["totals"]["requests"], 0, "{bind}: {r}");
        assert_eq!(r["not_sent"]["hit"], 2, "{bind}: {r}");
        let errors = r["errors"].as_object().unwrap();
        assert!(
            errors
                .keys()
                .all(|k| k.contains("bind_ip") && k.contains(bind)),
            "{errors:?}"
        );
        assert!(log.lock().unwrap().is_empty(), "{bind}: nothing was sent");
    }
}

/// `per_task`: each task's address is released, and the connections kept alive from it are
/// closed (they piled up to the fd limit before). The scheduler's fds stay flat.
#[test]
fn per_task_release_closes_the_connections_from_it() {
    let (server, log) = recording_target();
    let dir = tmp("per-task-fds");
    let s = format!(
        r#"
version: "1.0"
name: per-task
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.49.0/24"], allocation_strategy: round_robin }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 4 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 80, think_time: 5ms }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_task }} }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/x" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let mut child = Command::new(BIN)
        .args(["run", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fd_dir = format!("/proc/{}/fd", child.id());
    let mut most = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Ok(d) = std::fs::read_dir(&fd_dir) {
            most = most.max(d.count());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success());
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 320);
    let sources: BTreeSet<&String> = log.iter().map(|(_, ip)| ip).collect();
    assert!(
        sources.len() > 100,
        "each task its own address: {}",
        sources.len()
    );
    assert!(most < 120, "fds stay flat: at most {most} open (320 tasks)");
    assert_eq!(
        server.stats.connections(),
        320,
        "one connection per task's address"
    );
}

/// A scenario that loops until stopped, with its state in `--state-dir`.
fn endless_scenario(port: u16, pool: &str, extra_load: &str) -> String {
    format!(
        r#"
version: "1.0"
name: endless
workbook:
  ip_pools: [ {{ id: p, ranges: ["{pool}"] }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{port}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 3 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 0, think_time: 20ms }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
{extra_load}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/x", timeouts: {{ first_byte_ms: 60000, total_ms: 60000 }} }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#
    )
}

fn interrupt(child: &std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One process per state dir (a second gets a clear error); the state file is 0600 and a link
/// planted where a temp file used to be written is not followed.
#[test]
fn the_state_dir_is_locked_and_written_safely() {
    use std::os::unix::fs::PermissionsExt;
    let (server, log) = recording_target();
    let dir = tmp("state-lock");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, state.join("pool-state.bin.tmp")).unwrap();
    let path = dir.join("s.yaml");
    std::fs::write(
        &path,
        endless_scenario(server.addr.port(), "127.0.50.0/28", ""),
    )
    .unwrap();
    let first = spawn_run(&path, &["--state-dir", state.to_str().unwrap()]);
    wait_for("traffic", || log.lock().unwrap().len() >= 5);
    let second = run(&[
        "run",
        path.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(err.contains("in use by another scheduler process"), "{err}");
    interrupt(&first);
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let mode = std::fs::metadata(state.join("pool-state.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // Unlocked again once the first is gone.
    let third = spawn_run(&path, &["--state-dir", state.to_str().unwrap()]);
    let seen = log.lock().unwrap().len();
    wait_for("traffic again", || log.lock().unwrap().len() >= seen + 5);
    interrupt(&third);
    assert_eq!(third.wait_with_output().unwrap().status.code(), Some(130));
}

/// The state can no longer be written mid-run (its dir is gone): the run stops, prints and
/// writes its report with the reason, and exits non-zero.
#[test]
fn a_state_write_failure_ends_the_run_with_its_report() {
    let (server, log) = recording_target();
    let dir = tmp("state-fault");
    let state = dir.join("state");
    let path = dir.join("s.yaml");
    let json = dir.join("r.json");
    // Users of 2 tasks each with per_task addresses keep writing the state.
    let s = endless_scenario(server.addr.port(), "127.0.51.0/28", "").replace(
        "ip_binding: { enabled: true, pool_id: p }",
        "ip_binding: { enabled: true, pool_id: p, strategy: per_task }",
    );
    std::fs::write(&path, s).unwrap();
    let child = spawn_run(
        &path,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    wait_for("traffic", || log.lock().unwrap().len() >= 10);
    // Renamed away in one step (the run may be creating a file in it at that moment).
    std::fs::rename(&state, dir.join("state-gone")).unwrap();
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(15));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the run failed") && text.contains("writing pool state"),
        "{text}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(r["totals"]["requests"].as_u64().unwrap() >= 10, "{r}");
    assert!(
        r["run_errors"][0]
            .as_str()
            .unwrap()
            .contains("writing pool state")
    );
}

/// Ctrl-C during a long gap between spawns stops at once, exit 130.
#[test]
fn ctrl_c_in_a_spawn_gap_stops_at_once() {
    let (server, log) = recording_target();
    let dir = tmp("spawn-gap");
    let path = dir.join("s.yaml");
    std::fs::write(
        &path,
        endless_scenario(
            server.addr.port(),
            "127.0.52.0/28",
            "  concurrency: { spawn_rate_limit: \"0.01/s\" }",
        ),
    )
    .unwrap();
    let child = spawn_run(&path, &[]);
    wait_for("traffic", || log.lock().unwrap().len() >= 3);
    interrupt(&child);
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    // Well under what not stopping would take (the next spawn in 100 s, the drain's 10 s),
    // with room for a loaded machine.
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopped.elapsed()
    );
    assert_eq!(out.status.code(), Some(130));
}

/// A target that accepts and never answers: the first Ctrl-C starts the drain, the second cuts
/// it short; the requests cut off are counted as interrupted, and the addresses released.
#[test]
fn a_second_ctrl_c_cuts_the_drain_and_counts_interrupted_requests() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    let dir = tmp("silent");
    let path = dir.join("s.yaml");
    let json = dir.join("r.json");
    std::fs::write(&path, endless_scenario(port, "127.0.53.0/28", "")).unwrap();
    let child = spawn_run(&path, &["--json", json.to_str().unwrap()]);
    wait_for("connections", || held.lock().unwrap().len() >= 3);
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    // Well under what not stopping would take (the next spawn in 100 s, the drain's 10 s),
    // with room for a loaded machine.
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopped.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["totals"]["requests"], 3, "{r}");
    assert_eq!(r["errors"]["interrupted"], 3, "{r}");
    assert_eq!(r["by_action"]["hit"]["failed"], 3, "{r}");
    assert_eq!(r["pools"][0]["allocated"], 0);
}

/// Memory mappings per user instance, read off the running process: a process may hold
/// `vm.max_map_count` (65,530) of them, so this is what bounds the users alive at once (about
/// 14 a user, a 4,600-user ceiling, before memories stopped starting from copy-on-write
/// images). `memory`: `SCHEDULER_MEMORY`, the pooling allocator or the arena.
fn mappings_per_user(memory: &str) -> f64 {
    let (server, log) = recording_target();
    let dir = tmp(&format!("mappings-{memory}"));
    let users = 400;
    let s = format!(
        r#"
version: "1.0"
name: mappings
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.2.0.0/16"] }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: {users} }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2, think_time: 3s }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/x" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let child = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .env("SCHEDULER_MEMORY", memory)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let maps = format!("/proc/{}/maps", child.id());
    let count = || {
        std::fs::read_to_string(&maps)
            .map(|m| m.lines().count())
            .unwrap_or(0)
    };
    let idle = count();
    // Every user has sent its first request and is thinking: all instances are alive.
    wait_for("every user's first request", || {
        log.lock().unwrap().len() >= users
    });
    let alive = count();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(log.lock().unwrap().len(), 2 * users);
    let per_user = alive.saturating_sub(idle) as f64 / users as f64;
    eprintln!(
        "{memory}: {per_user:.1} mappings per user ({idle} before, {alive} with {users} users)"
    );
    per_user
}

#[test]
fn a_user_instance_holds_few_memory_mappings() {
    // The pooling allocator: three memories (a slot and its guard each), a stack and its guard.
    assert!(mappings_per_user("pool") <= 9.0);
    // The arena (runs of thousands of users): the stack and its guard page.
    assert!(mappings_per_user("arena") <= 3.0);
}

/// `SCHEDULER_PERFMAP=1`: perf's map of the JIT code names the guests' functions; without
/// it, no map is written.
#[test]
fn perfmap_names_the_guests_code_when_asked() {
    let (server, _log) = recording_target();
    let dir = tmp("perfmap");
    let s = format!(
        r#"
version: "1.0"
name: perfmap
workbook:
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 1 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 1 }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/x" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let run = |perfmap: bool| {
        let mut cmd = Command::new(BIN);
        cmd.arg("run").arg(&path).stdout(Stdio::null());
        if perfmap {
            cmd.env("SCHEDULER_PERFMAP", "1");
        }
        let child = cmd.spawn().unwrap();
        let map = format!("/tmp/perf-{}.map", child.id());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = std::fs::read_to_string(&map).ok();
        let _ = std::fs::remove_file(&map);
        text
    };
    let map = run(true).expect("a perf map");
    assert!(
        map.lines()
            .any(|l| l.contains("wasm[") && l.contains("::function[")),
        "{}",
        &map[..map.len().min(500)]
    );
    assert_eq!(run(false), None);
}

/// Bytes that are not UTF-8 (every byte value, a few times over).
fn binary_bytes() -> Vec<u8> {
    (0..320_000u32).map(|i| (i * 7 + i / 256) as u8).collect()
}

/// `exec` as a curl user expects: the exact bytes with -o, binary bodies as base64 in JSON,
/// --data-binary @FILE sent byte for byte, -X, -H, --max-time, trailers and reuse in JSON.
#[test]
fn exec_handles_bytes_files_and_curl_flags() {
    // (method, body, X-Test) of each request.
    type Seen = Vec<(String, Vec<u8>, Option<String>)>;
    let got: Arc<Mutex<Seen>> = Arc::default();
    let g = got.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        g.lock().unwrap().push((
            r.method.clone(),
            r.body.clone(),
            r.header("x-test").map(str::to_string),
        ));
        Reply::ok(binary_bytes())
    });
    let url = format!("http://127.0.0.1:{}/bin", server.addr.port());
    let dir = tmp("exec-bytes");
    // -o: the exact bytes.
    let file = dir.join("body.bin");
    let out = run(&["exec", &url, "-o", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), binary_bytes());
    // Plain output: the body's bytes after the head, as they came.
    let out = run(&["exec", "GET", &url]);
    assert!(out.stdout.ends_with(&binary_bytes()));
    // --json: base64, flagged; trailers and reuse present.
    let out = run(&["exec", &url, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["body_base64"], true);
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD
        .decode(v["body"].as_str().unwrap())
        .unwrap();
    assert_eq!(body, binary_bytes());
    assert!(
        v["trailers"].is_array() && v["reused_connection"] == false,
        "{v}"
    );
    // --data-binary @FILE and -X PUT, -H: the server got the exact bytes.
    let upload = dir.join("up.bin");
    std::fs::write(&upload, binary_bytes()).unwrap();
    let at = format!("@{}", upload.display());
    let out = run(&[
        "exec",
        "-X",
        "PUT",
        &url,
        "--data-binary",
        &at,
        "-H",
        "X-Test: yes",
        "-o",
        "/dev/null",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // -d @FILE with text, and POST by default when a body is given.
    let text = dir.join("t.txt");
    std::fs::write(&text, "héllo").unwrap();
    let out = run(&[
        "exec",
        &url,
        "-d",
        &format!("@{}", text.display()),
        "-o",
        "/dev/null",
    ]);
    assert!(out.status.success());
    let got = got.lock().unwrap();
    let n = got.len();
    assert_eq!(
        got[n - 2],
        ("PUT".into(), binary_bytes(), Some("yes".into()))
    );
    assert_eq!(
        got[n - 1],
        ("POST".into(), "héllo".as_bytes().to_vec(), None)
    );

    // --compressed: gzip asked for and decoded; without it, the bytes as served.
    let gz = {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&binary_bytes()).unwrap();
        e.finish().unwrap()
    };
    let asked: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let a = asked.clone();
    let zipped = serve("127.0.0.1:0", None, move |r| {
        a.lock()
            .unwrap()
            .push(r.header("accept-encoding").map(str::to_string));
        Reply::Full(
            200,
            vec![("Content-Encoding".into(), "gzip".into())],
            gz.clone(),
        )
    });
    let zurl = format!("http://127.0.0.1:{}/z", zipped.addr.port());
    let file = dir.join("z.bin");
    let out = run(&["exec", &zurl, "--compressed", "-o", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), binary_bytes());
    let out = run(&["exec", &zurl, "-o", file.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(&std::fs::read(&file).unwrap()[..2], b"\x1f\x8b");
    assert_eq!(
        *asked.lock().unwrap(),
        [Some("gzip, deflate".to_string()), None]
    );

    // --max-time against a server that never answers: the interface's name of the phase.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let start = Instant::now();
    let out = run(&[
        "exec",
        &format!("http://127.0.0.1:{port}/"),
        "--max-time",
        "500ms",
        "--json",
    ]);
    // A hang guard (the server never answers): a loaded machine with debug builds can take
    // seconds to start `exec`; the phase and the exit code below say it was --max-time.
    assert!(start.elapsed() < Duration::from_secs(20));
    // curl's code for a timeout.
    assert_eq!(out.status.code(), Some(28));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "timeout(total)", "{v}");
    assert_eq!(v["exit_code"], 28, "{v}");
    assert!(v["message"].as_str().unwrap().contains("total"), "{v}");
    drop(silent);
}

/// The CLI's conventions: --version, help, --json=FILE, options that do not belong to a
/// command refused, and an upper-case scheme reaches what the policy allows.
#[test]
fn the_cli_follows_the_usual_conventions() {
    let v = run(&["--version"]);
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("scheduler "));
    let h = run(&["help"]);
    assert!(h.status.success());
    let help = String::from_utf8_lossy(&h.stdout);
    for cmd in ["demo", "run", "validate", "exec", "Exit codes"] {
        assert!(help.contains(cmd), "{help}");
    }
    let h = run(&["exec", "--help"]);
    let help = String::from_utf8_lossy(&h.stdout);
    for flag in [
        "--data-binary",
        "--output",
        "--max-time",
        "--connect-timeout",
        "--retry",
        "-X",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    let out = run(&["validate", "scenarios/demo.yaml", "--metrics", "m.prom"]);
    assert_eq!(out.status.code(), Some(2), "validate has no --metrics");
    assert!(!Path::new("m.prom").exists());

    let dir = tmp("cli");
    let json = dir.join("r.json");
    let out = run(&["demo", "--short", &format!("--json={}", json.display())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(json.exists());

    let (server, log) = recording_target();
    let out = run(&[
        "exec",
        "GET",
        &format!("HTTP://127.0.0.1:{}/up", server.addr.port()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(log.lock().unwrap().len(), 1);
}

/// The artifact is built into the binary: a copy of it elsewhere runs with no build tree.
#[test]
fn the_binary_carries_its_artifact() {
    let artifact = std::fs::read(compose::EXECUTOR_ARTIFACT).unwrap();
    let binary = std::fs::read(BIN).unwrap();
    assert!(
        binary
            .windows(4096)
            .any(|w| w == &artifact[artifact.len() / 2..][..4096]),
        "the artifact's bytes are inside the binary"
    );
    let (server, log) = recording_target();
    let dir = tmp("copied-binary");
    let copy = dir.join("scheduler");
    std::fs::copy(BIN, &copy).unwrap();
    let out = Command::new(&copy)
        .args([
            "exec",
            &format!("http://127.0.0.1:{}/c", server.addr.port()),
        ])
        .current_dir(&dir)
        .env_remove("SCHEDULER_EXECUTOR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(log.lock().unwrap().len(), 1);
}

/// The compiled artifact is kept in `SCHEDULER_CACHE_DIR` by the first command and used by
/// the next; an unusable cache directory, or none, still runs.
#[test]
fn the_compiled_artifact_is_kept_between_commands() {
    let (server, log) = recording_target();
    let dir = tmp("compile-cache");
    let url = format!("http://127.0.0.1:{}/c", server.addr.port());
    let exec = |cache: &Path| {
        let out = Command::new(BIN)
            .args(["exec", &url])
            .env("SCHEDULER_CACHE_DIR", cache)
            .env_remove("SCHEDULER_EXECUTOR")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        assert!(err.is_empty(), "{err}");
    };
    let cache = dir.join("cache");
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.ends_with(".lock"))
            .collect();
        names.sort();
        names
    };
    exec(&cache);
    let first = listing();
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].ends_with(".cwasm"), "{first:?}");
    let written = std::fs::metadata(cache.join(&first[0])).unwrap();
    exec(&cache);
    assert_eq!(listing(), first);
    let again = std::fs::metadata(cache.join(&first[0])).unwrap();
    assert_eq!(again.ino(), written.ino(), "read, not written again");
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    exec(&file.join("cache"));
    exec(Path::new(""));
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    assert_eq!(log.lock().unwrap().len(), 4);
}

/// A scenario of 4 users hitting `/ok` and `/missing` (404) in turn, with `thresholds`.
fn threshold_scenario(port: u16, thresholds: &str, mode: &str) -> String {
    format!(
        r#"
version: "1.0"
name: thresholds
workbook:
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{port}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 4, tenant_id: a }} ] }}
  user_lifetime: {mode}
actions:
  actions:
    - {{ id: good, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/ok" }} }}
    - {{ id: bad, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/missing" }} }}
workflows:
  nodes:
    - {{ id: start, action: good, edges: [ {{ to: b }} ] }}
    - {{ id: b, action: bad, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
thresholds:
{thresholds}
"#
    )
}

/// k6's thresholds: each judged and shown; all held: 0; one crossed: 99; tag filters select
/// an action or a tenant; with abort_on_fail a crossed one stops the run while it goes.
#[test]
fn thresholds_gate_the_run() {
    let (server, log) = recording_target();
    let port = server.addr.port();
    let dir = tmp("thresholds");
    let once = "{ mode: loop, iterations: 3 }";
    let held = r#"  http_req_duration: ["p(95)<5s", "avg<5000", "max<10s"]
  "http_req_failed{action:good}": ["rate<0.01"]
  "http_req_failed{action:bad}": ["rate>0.99"]
  "http_req_failed{tenant:a}": ["rate==0.5"]
  http_reqs: ["count==24"]
  iterations: ["count>=12"]"#;
    let (out, r) = report(&dir, &threshold_scenario(port, held, once));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let verdicts = r["thresholds"].as_array().unwrap();
    assert_eq!(verdicts.len(), 8, "{r}");
    assert!(verdicts.iter().all(|v| v["ok"] == true), "{verdicts:?}");
    assert_eq!(r["iterations"], 12);
    assert_eq!(r["by_status_class"]["2xx"]["requests"], 12, "{r}");
    assert_eq!(r["by_status_class"]["4xx"]["requests"], 12, "{r}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("thresholds:"));

    let crossed = r#"  http_req_failed: ["rate<0.01"]
  http_req_duration: ["p(99)<10s"]"#;
    let (out, r) = report(&dir, &threshold_scenario(port, crossed, once));
    assert_eq!(out.status.code(), Some(99));
    let v = &r["thresholds"];
    assert_eq!(v[0]["ok"], false, "{v}");
    assert_eq!(v[0]["observed"], 0.5, "{v}");
    assert_eq!(v[1]["ok"], true, "{v}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL http_req_failed rate<0.01"));

    // abort_on_fail: an endless run stops at the first judgement after its delay.
    let seen = log.lock().unwrap().len();
    let abort = r#"  http_req_failed: [ { threshold: "rate<0.1", abort_on_fail: true, delay_abort_eval: 1s } ]"#;
    let start = Instant::now();
    let (out, r) = report(
        &dir,
        &threshold_scenario(
            port,
            abort,
            "{ mode: loop, iterations: 0, think_time: 10ms }",
        ),
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        r["aborted_by"].as_str().unwrap().contains("rate<0.1"),
        "{r}"
    );
    assert!(log.lock().unwrap().len() > seen);

    // Bad thresholds are refused by validate, with their path.
    for (t, want) in [
        (
            "  http_req_waiting: [\"p(95)<1\"]",
            "thresholds.http_req_waiting",
        ),
        (
            "  http_req_duration: [\"p(95)\"]",
            "thresholds.http_req_duration[0]",
        ),
        (
            "  \"http_req_duration{host:x}\": [\"p(95)<1\"]",
            "no action has the tag host:x",
        ),
        ("  http_req_failed: [\"p(95)<1\"]", "does not apply"),
    ] {
        let path = dir.join("bad.yaml");
        std::fs::write(&path, threshold_scenario(port, t, once)).unwrap();
        let out = run(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{want}: {err}");
    }
}

/// A run in which no request succeeded tested nothing: exit 98, whatever else happened.
#[test]
fn a_run_that_tested_nothing_says_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tmp("nothing");
    let (out, r) = report(
        &dir,
        &threshold_scenario(port, "  http_reqs: [\"count>=0\"]", "{ mode: once }"),
    );
    assert_eq!(out.status.code(), Some(98), "{r}");
    assert_eq!(r["totals"]["ok"], 0);
    assert_eq!(r["errors"]["connect"], 8, "{r}");
}

/// Checks on status, a header, the body (contains, regex), a JSON pointer and the duration:
/// pass rates per check; they do not route the workflow; `checks` thresholds judge them.
#[test]
fn checks_are_recorded_as_pass_rates() {
    let server = serve("127.0.0.1:0", None, |r| {
        if r.path == "/json" {
            Reply::Full(
                200,
                vec![("Content-Type".into(), "application/json".into())],
                br#"{"id": 7, "name": "seven"}"#.to_vec(),
            )
        } else {
            Reply::status(404, &[])
        }
    });
    let dir = tmp("checks");
    let s = format!(
        r#"
version: "1.0"
name: checks
workbook:
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 2 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 3 }}
actions:
  actions:
    - id: j
      call: get
      with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/json" }}
      checks:
        - {{ name: is 200, status: 200 }}
        - {{ header: content-type, contains: json }}
        - {{ body_contains: seven }}
        - {{ body_matches: '"id":\s*\d+' }}
        - {{ json: /id, equals: "7" }}
        - {{ json: /missing }}
        - {{ duration: "<30s" }}
    - id: m
      call: get
      with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/missing" }}
      checks: [ {{ status: [200, 201] }} ]
workflows:
  nodes:
    - {{ id: start, action: j, edges: [ {{ to: m }} ] }}
    - {{ id: m, action: m, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
thresholds:
  "checks{{action:j}}": ["rate>=0.85"]
  checks: ["rate>0.9"]
"#,
        server.addr.port()
    );
    let (out, r) = report(&dir, &s);
    let checks = r["checks"].as_array().unwrap();
    let rate = |i: usize| {
        let c = &checks[i];
        (c["passes"].as_u64().unwrap(), c["fails"].as_u64().unwrap())
    };
    assert_eq!(checks.len(), 8, "{r}");
    assert_eq!(checks[0]["name"], "is 200");
    for i in [0, 1, 2, 3, 4, 6] {
        assert_eq!(rate(i), (6, 0), "check {i}: {}", checks[i]);
    }
    assert_eq!(rate(5), (0, 6), "a missing pointer fails");
    assert_eq!(rate(7), (0, 6), "404 is not 200 or 201");
    // 36 of 42 for j (0.857), 36 of 48 in all (0.75): the first holds, the second not.
    let t = &r["thresholds"];
    assert_eq!(t[0]["ok"], true, "{t}");
    assert_eq!(t[1]["ok"], false, "{t}");
    assert_eq!(out.status.code(), Some(99));
    assert!(String::from_utf8_lossy(&out.stdout).contains("checks:"));
    // Checks never route: every iteration ran both actions.
    assert_eq!(r["by_action"]["m"]["requests"], 6);
    // A bad check is refused with its path.
    let bad = s.replace("- { json: /missing }", "- { json: missing }");
    let path = dir.join("bad.yaml");
    std::fs::write(&path, bad).unwrap();
    let out = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("actions.actions[0].checks[5].json"));
}

/// The metrics file parses with a real Prometheus parser (Python's prometheus_client), with a
/// tenant whose name holds a quote, a backslash and a newline; every family has HELP and TYPE.
#[test]
fn metrics_parse_with_a_real_prometheus_parser() {
    let have = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var_os("REQUIRE_PROMETHEUS_CLIENT").is_none(),
            "python3 with prometheus_client is required"
        );
        eprintln!("SKIPPED: python3 -m pip install prometheus-client");
        return;
    }
    let (server, _) = recording_target();
    let dir = tmp("metrics");
    let s = threshold_scenario(
        server.addr.port(),
        "  http_reqs: [\"count>0\"]",
        "{ mode: once }",
    )
    .replace("tenant_id: a", "tenant_id: \"te\\\"n\\\\a\\nnt\"");
    let path = scenario_file(&dir, &s);
    let metrics = dir.join("m.prom");
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = {f.name: f for f in text_string_to_metric_families(text)}
for f in fams.values():
    assert f.documentation, f.name
tenants = {s.labels.get("tenant") for s in fams["http_requests"].samples}
assert 'te"n\\a\nnt' in tenants, tenants
total = sum(s.value for s in fams["http_requests"].samples)
assert total == 8, total
h = [s for s in fams["http_requests_duration_seconds"].samples if s.name.endswith("_count")]
assert sum(s.value for s in h) == 8, h
print("ok", len(fams))
"#;
    let py = Command::new("python3")
        .args(["-c", script, metrics.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
}

/// The original scheduler's fields, with its meaning: export `default` (and `scope`), edge
/// `label`, `{{tenant.id}}` and `{{user.iteration}}`, properties that name properties,
/// `with.timeout`, `version: v1`, and a disabled binding whose pool does not exist.
#[test]
fn the_original_formats_fields_run_with_its_meaning() {
    let (server, log) = recording_target();
    let dir = tmp("original");
    let s = format!(
        r#"
version: v1
name: original
workbook:
  ip_pools: [ {{ id: p, name: "P", ranges: ["127.0.54.0/28"] }} ]
  resources:
    - id: base
      type: http_endpoint
      properties:
        scheme: "http"
        host: "127.0.0.1"
        port: "{}"
        url: "{{{{base.scheme}}}}://{{{{base.host}}}}:{{{{base.port}}}}"
    - id: final
      type: http_endpoint
      properties:
        endpoint: "{{{{ base.url }}}}/t"
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 2, tenant_id: acme }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2, think_time: 10ms }}
  user_resources:
    ip_binding: {{ enabled: false, pool_id: noop, strategy: per_user, release_on: user_exit }}
actions:
  actions:
    - id: first
      call: get
      with: {{ url: "{{{{final.endpoint}}}}/{{{{tenant.id}}}}/{{{{user.iteration}}}}", timeout: 5s }}
      export:
        - {{ type: json, name: token, pointer: /token, default: none, scope: user }}
        - {{ type: content, name: status_code, default: 0 }}
    - id: second
      call: get
      with: {{ url: "{{{{final.endpoint}}}}/second/{{{{first.token}}}}" }}
workflows:
  nodes:
    - {{ id: start, type: action, action: first, edges: [ {{ to: s2, label: next, trigger: {{ condition: "{{{{first.token == 'none'}}}}" }} }} ] }}
    - {{ id: s2, type: action, action: second, edges: [ {{ to: end, label: done }} ] }}
    - {{ id: end, type: end }}
"#,
        server.addr.port()
    );
    let (out, r) = report(&dir, &s);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{r}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut paths: Vec<String> = log.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/t/acme/1",
            "/t/acme/1",
            "/t/acme/2",
            "/t/acme/2",
            "/t/second/none",
            "/t/second/none",
            "/t/second/none",
            "/t/second/none",
        ],
        "the default stood in for the missing export, and routed"
    );
    // A cycle among properties is named; a bad timeout is refused.
    for (from, to, want) in [
        (
            "scheme: \"http\"",
            "scheme: \"{{final.endpoint}}\"",
            "circular reference",
        ),
        ("timeout: 5s", "timeout: soon", "with.timeout"),
    ] {
        let path = dir.join("bad.yaml");
        std::fs::write(&path, s.replace(from, to)).unwrap();
        let out = run(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{want}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{want}: {err}");
    }
}

/// The open model: iterations start on schedule whatever the target does. A target that
/// stalls 1.5 s once shows in p90 and p99 (latency counts from the scheduled start), where
/// the closed model's users would simply send less.
#[test]
fn arrival_rate_shows_a_stall_in_the_percentiles() {
    let stall_until: Arc<Mutex<Option<Instant>>> = Arc::default();
    let started = Instant::now();
    let su = stall_until.clone();
    let server = serve("127.0.0.1:0", None, move |_| {
        let until = {
            let mut s = su.lock().unwrap();
            if s.is_none() && started.elapsed() > Duration::from_millis(800) {
                *s = Some(Instant::now() + Duration::from_millis(1500));
            }
            *s
        };
        if let Some(u) = until {
            std::thread::sleep(u.saturating_duration_since(Instant::now()));
        }
        Reply::ok("ok")
    });
    let dir = tmp("arrival");
    let s = format!(
        r#"
version: "1.0"
name: arrival
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.55.0/24"] }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{}" }} }} ]
load:
  arrival_rate: {{ rate: 40/s, duration: 3s, pre_allocated_users: 4, max_users: 120 }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/x" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
thresholds:
  http_req_duration: ["p(99)<1000"]
"#,
        server.addr.port()
    );
    let (out, r) = report(&dir, &s);
    assert_eq!(
        out.status.code(),
        Some(99),
        "the stall crosses p(99)<1000: {r}"
    );
    assert_eq!(
        r["iterations"].as_u64().unwrap() + r["dropped_iterations"].as_u64().unwrap(),
        120,
        "{r}"
    );
    assert_eq!(r["dropped_iterations"], 0, "{r}");
    let p90 = r["totals"]["p90_ms"].as_f64().unwrap();
    let p99 = r["totals"]["p99_ms"].as_f64().unwrap();
    assert!(p99 >= 1000.0, "p99 {p99} ms");
    assert!(p90 >= 300.0, "p90 {p90} ms");
    // The users were added as the stall held the first ones: more than pre-allocated.
    assert!(r["users"]["spawned"].as_u64().unwrap() > 4, "{r}");
    // Each user kept its own address.
    let sources = r["by_source"].as_object().unwrap();
    assert_eq!(
        sources.len() as u64,
        r["users"]["spawned"].as_u64().unwrap()
    );

    // max_users reached: the iterations that find no free user are dropped, and counted.
    *stall_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(60));
    let capped = s
        .replace("max_users: 120", "max_users: 4")
        .replace("duration: 3s", "duration: 1s")
        .replace("/x\" }", "/x\", timeout: 1s }");
    let (_, r) = report(&dir, &capped.replace("p(99)<1000", "p(99)<100000"));
    assert_eq!(
        r["dropped_iterations"], 36,
        "40 due, 4 users held by the stall: {r}"
    );
}

/// Result files merge exactly: counts add up, percentiles are those of the added histograms,
/// and thresholds are judged again on the sum (each half fails `count==16`, the sum holds).
#[test]
fn result_files_merge_exactly() {
    use base64::Engine as _;
    use hdrhistogram::serialization::Deserializer;
    let (server, _) = recording_target();
    let dir = tmp("merge");
    let s = threshold_scenario(
        server.addr.port(),
        "  http_reqs: [\"count==16\"]\n  \"http_req_failed{action:good}\": [\"rate==0\"]",
        "{ mode: once }",
    );
    let path = scenario_file(&dir, &s);
    let mut files = Vec::new();
    for i in 0..2 {
        let f = dir.join(format!("r{i}.json"));
        let out = run(&[
            "run",
            path.to_str().unwrap(),
            "--result",
            f.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(99), "8 requests each, not 16");
        files.push(f);
    }
    let merged = dir.join("merged.json");
    let out = run(&[
        "merge",
        files[0].to_str().unwrap(),
        files[1].to_str().unwrap(),
        "--json",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(m["totals"]["requests"], 16);
    assert_eq!(m["by_action"]["bad"]["failed"], 8);
    assert_eq!(m["by_status_class"]["4xx"]["requests"], 8);
    assert_eq!(m["users"]["spawned"], 8);
    assert!(
        m["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["ok"] == true),
        "{m}"
    );
    // The percentiles are the added histograms'.
    let mut sum: Option<hdrhistogram::Histogram<u64>> = None;
    for f in &files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v["totals"]["latency"].as_str().unwrap())
            .unwrap();
        let mut h: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .unwrap();
        h.auto(true);
        match sum.as_mut() {
            Some(s) => s.add(&h).unwrap(),
            None => sum = Some(h),
        }
    }
    let sum = sum.unwrap();
    for (q, key) in [(0.5, "p50_ms"), (0.9, "p90_ms"), (0.99, "p99_ms")] {
        assert_eq!(
            m["totals"][key].as_f64().unwrap(),
            sum.value_at_quantile(q) as f64 / 1000.0,
            "{key}"
        );
    }
    assert_eq!(
        m["totals"]["max_ms"].as_f64().unwrap(),
        sum.max() as f64 / 1000.0
    );
    // Not a result file: a clear error.
    let out = run(&["merge", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--segment I/N`: three processes side by side run the scenario once between them. Every
/// user (global id) runs in exactly one, each process takes addresses only from its own slice
/// of the pool (so no address can serve users of two processes), and `merge` gives exactly
/// the totals of the three.
#[test]
fn three_segments_run_the_scenario_once() {
    let (server, log) = recording_target();
    let dir = tmp("segments");
    let s = format!(
        r#"
version: "1.0"
name: segments
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.56.0/28"] }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{}" }} }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 24 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 4, think_time: 5ms }}
  user_resources:
    ip_binding: {{ enabled: true, pool_id: p, strategy: per_task, wait_on_exhaustion: true, wait_timeout: 20s }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/{{{{user.id}}}}" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let children: Vec<_> = (0..3)
        .map(|i| {
            let result = dir.join(format!("r{i}.json"));
            let child = spawn_run(
                &path,
                &[
                    "--segment",
                    &format!("{i}/3"),
                    "--result",
                    result.to_str().unwrap(),
                ],
            );
            (child, result)
        })
        .collect();
    let mut results = Vec::new();
    for (child, result) in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        results.push(result);
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 96, "24 users x 4 tasks, once");
    let mut per_user: BTreeMap<u32, usize> = BTreeMap::new();
    let mut segment_of_ip: BTreeMap<String, u32> = BTreeMap::new();
    for (path, ip) in log.iter() {
        let user: u32 = path.trim_start_matches('/').parse().unwrap();
        *per_user.entry(user).or_default() += 1;
        let seg = (user - 1) % 3;
        let prev = segment_of_ip.insert(ip.clone(), seg);
        assert!(
            prev.is_none_or(|p| p == seg),
            "{ip} served users of two segments"
        );
        assert!(ip.starts_with("127.0.56."), "{ip}");
    }
    assert_eq!(per_user.len(), 24);
    assert!(per_user.values().all(|&n| n == 4), "{per_user:?}");
    let merged = dir.join("m.json");
    let mut args = vec!["merge".to_string()];
    args.extend(results.iter().map(|r| r.display().to_string()));
    args.extend(["--json".to_string(), merged.display().to_string()]);
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(m["totals"]["requests"], 96);
    assert_eq!(m["users"]["spawned"], 24);
    assert_eq!(m["iterations"], 96);
    // More segments than addresses: a clear error.
    let out = run(&["run", path.to_str().unwrap(), "--segment", "0/64"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fewer than the 64 segments"));
}

/// `--out json=FILE` and `--out csv=FILE`: one interval a second as the run goes (and each
/// error in JSON); the intervals add up to the report's totals, which keeps them as `series`.
#[test]
fn the_run_streams_intervals_and_errors() {
    let (server, _) = recording_target();
    let dir = tmp("out");
    let s = threshold_scenario(
        server.addr.port(),
        "  http_reqs: [\"count>0\"]",
        "{ mode: loop, iterations: 0, duration: 2500ms, think_time: 50ms }",
    );
    let path = scenario_file(&dir, &s);
    let (json, csv, rep) = (dir.join("o.jsonl"), dir.join("o.csv"), dir.join("r.json"));
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        &format!("json={}", json.display()),
        "--out",
        &format!("csv={}", csv.display()),
        "--json",
        rep.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&rep).unwrap()).unwrap();
    let total = r["totals"]["requests"].as_u64().unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let intervals: Vec<&Value> = lines.iter().filter(|l| l["type"] == "interval").collect();
    assert!(intervals.len() >= 3, "{}", intervals.len());
    let sum: u64 = intervals
        .iter()
        .map(|l| l["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, total);
    let errors = lines.iter().filter(|l| l["type"] == "error").count() as u64;
    assert_eq!(
        errors,
        r["errors"]["http 404"].as_u64().unwrap(),
        "each 404 listed"
    );
    assert!(
        lines
            .iter()
            .filter(|l| l["type"] == "error")
            .all(|l| l["action"] == "bad")
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut rows = text.lines();
    assert!(rows.next().unwrap().starts_with("t_s,requests,failed"));
    let sum: u64 = rows
        .map(|row| row.split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sum, total);
    assert_eq!(r["series"].as_array().unwrap().len(), intervals.len());
    // A file that cannot be created: an error at the start.
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        "json=/no/such/dir/x",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out /no/such/dir/x"));
}

/// `--report FILE.html`: one self-contained page (no script, nothing fetched) that headless
/// Chromium renders with no console errors, with the charts, tables, checks and thresholds.
#[test]
fn the_html_report_renders_in_chromium() {
    let (server, _) = recording_target();
    let dir = tmp("html");
    let s = threshold_scenario(
        server.addr.port(),
        "  http_req_duration: [\"p(95)<5000\"]",
        "{ mode: loop, iterations: 0, duration: 2200ms, think_time: 50ms }",
    )
    .replace("tenant_id: a", "tenant_id: \"<b>&amp;\"");
    let path = scenario_file(&dir, &s);
    let page = dir.join("r.html");
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--report",
        page.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    // The data inline (nothing can close its script element), uPlot and the drawing inline.
    for want in [
        "<script type=\"application/json\" id=\"data\">",
        "p(95)\\u003c5000",
        "\\u003cb\\u003e\\u0026amp;",
        "uPlot v1.6.32",
        "showReport()",
    ] {
        assert!(html.contains(want), "{want}");
    }
    for banned in ["http://", "https://", "src=", "<b>&amp;"] {
        assert!(
            !html.contains(banned),
            "self-contained and escaped: {banned}"
        );
    }
    let Some(chromium) = chromium() else {
        return;
    };
    let shot = dir.join("r.png");
    let browse = |what: &str| {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1100,3000",
                &format!("--user-data-dir={}", dir.join("profile").display()),
                what,
                &format!("file://{}", page.display()),
            ])
            .output()
            .unwrap()
    };
    let out = browse(&format!("--screenshot={}", shot.display()));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains("CONSOLE") && !log.contains("Uncaught"),
        "console errors: {log}"
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a page was drawn"
    );
    // What the script drew: the charts (canvas), with titles and legends, and the tables.
    let out = browse("--dump-dom");
    let dom = String::from_utf8_lossy(&out.stdout);
    for want in [
        "Thresholds",
        "p(95)&lt;5000",
        "&lt;b&gt;&amp;amp;",
        "by action",
        "by tenant",
        "Requests per source address",
        "u-title\">Latency<",
        "Latency histogram",
        "Status codes",
        "Configuration",
        "<time",
    ] {
        assert!(dom.contains(want), "{want}: {dom}");
    }
    assert!(dom.matches("<canvas").count() >= 7, "charts: {dom}");
}

/// `--metrics-listen`: the metrics served while the run goes (users active, requests so far),
/// valid for a real Prometheus parser.
#[test]
fn metrics_are_served_live() {
    use std::io::{Read, Write};
    let (server, log) = recording_target();
    let dir = tmp("metrics-live");
    let path = dir.join("s.yaml");
    std::fs::write(
        &path,
        endless_scenario(server.addr.port(), "127.0.57.0/28", ""),
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let child = spawn_run(&path, &["--metrics-listen", &addr]);
    wait_for("traffic", || log.lock().unwrap().len() >= 10);
    // Users hand their samples over every 250 ms at the latest.
    std::thread::sleep(Duration::from_millis(600));
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    interrupt(&child);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(130));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains("version=0.0.4"),
        "{head}"
    );
    assert!(body.contains("scheduler_users_active 3"), "{body}");
    // The pool gauges have samples while the run goes (3 users hold 3 of its 16), and the
    // iterations and the latency by tenant are there.
    assert!(
        body.contains("scheduler_ip_pool_allocated{pool=\"p\"} 3"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("scheduler_iterations_total ")),
        "{body}"
    );
    assert!(body.contains("tenant=\"default-tenant\",le="), "{body}");
    let requests: u64 = body
        .lines()
        .filter(|l| l.starts_with("executor_tasks_executed_total "))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(requests >= 5, "{body}");
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys; from prometheus_client.parser import text_string_to_metric_families as p; print(len(list(p(sys.stdin.read()))))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(body.as_bytes())?;
            c.wait_with_output()
        });
    if let Ok(o) = parsed
        && std::env::var_os("REQUIRE_PROMETHEUS_CLIENT").is_some()
    {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// `load.stages`: users ramped up to a target, held, and down to none (k6's ramping-vus);
/// each leaves after its current iteration.
#[test]
fn users_ramp_up_and_down_by_stages() {
    let (server, log) = recording_target();
    let dir = tmp("stages");
    let s = format!(
        r#"
version: "1.0"
name: stages
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.58.0/28"] }} ]
  resources: [ {{ id: t, properties: {{ ip: "127.0.0.1", port: "{}" }} }} ]
load:
  stages: [ {{ target: 6, duration: 1s }}, {{ target: 6, duration: 1s }}, {{ target: 0, duration: 1s }} ]
  user_lifetime: {{ mode: loop, think_time: 20ms }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://{{{{t.ip}}}}:{{{{t.port}}}}/{{{{user.id}}}}" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#,
        server.addr.port()
    );
    let start = Instant::now();
    let (out, r) = report(&dir, &s);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(r["users"]["spawned"], 6, "{r}");
    assert_eq!(r["users"]["finished"], 6);
    let active: Vec<u64> = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["users_active"].as_u64().unwrap())
        .collect();
    assert!(active.contains(&6), "held at 6: {active:?}");
    assert_eq!(*active.last().unwrap(), 0, "down to none: {active:?}");
    let users: BTreeSet<String> = log.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(users.len(), 6);
    assert_eq!(r["pools"][0]["allocated"], 0);
}

/// The original's `with.dynamic_tasks` (its docs/HTTP_DYNAMIC_TASKS.md): a successful action
/// adds follow-up tasks that run right after it, each id once per user; a failed one adds
/// none. And its dry run: a URL that keeps a template nothing declares is skipped (not sent,
/// counted done), as the original's `{{undefined.endpoint}}` example relies on.
#[test]
fn dynamic_tasks_and_undeclared_templates_as_the_original() {
    let (server, log) = recording_target();
    let dir = tmp("dynamic");
    let s = format!(
        r#"
version: "1.0"
name: http_dynamic_tasks
workbook:
  resources:
    - {{ id: resource, type: http_endpoint, properties: {{ ip: "127.0.0.1", port: "{}" }} }}
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 2 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2, think_time: 0s }}
  user_resources:
    ip_binding: {{ enabled: false, pool_id: noop, strategy: per_user, release_on: user_exit }}
actions:
  actions:
    - id: seed-dynamic
      call: get
      with:
        url: "http://{{{{resource.ip}}}}:{{{{resource.port}}}}/seed/{{{{user.id}}}}"
        dynamic_tasks:
          - id: "dyn-followup-{{{{user.id}}}}-{{{{user.iteration}}}}"
            action_id: follow-up
            kind: action
            outgoing: [ {{ target: dyn-end, label: done }} ]
          - {{ id: "once-{{{{user.id}}}}", action_id: extra }}
          - {{ id: closing, kind: end }}
    - id: follow-up
      call: get
      with:
        url: "http://{{{{resource.ip}}}}:{{{{resource.port}}}}/follow/{{{{user.id}}}}/{{{{user.iteration}}}}"
    - id: extra
      call: get
      with: {{ url: "http://{{{{resource.ip}}}}:{{{{resource.port}}}}/extra/{{{{user.id}}}}" }}
    - id: failing
      call: get
      with:
        url: "http://{{{{resource.ip}}}}:{{{{resource.port}}}}/missing/{{{{user.id}}}}"
        dynamic_tasks: [ {{ id: "never-{{{{user.id}}}}", action_id: extra }} ]
    - id: dry
      call: get
      with:
        url: "http://{{{{resource.ip}}}}:{{{{resource.port}}}}/{{{{undefined.endpoint}}}}"
        headers: {{ authorization: "Bearer {{{{tenant.token}}}}" }}
workflows:
  nodes:
    - {{ id: seed-node, type: action, action: seed-dynamic, edges: [ {{ to: fail-node }} ] }}
    - {{ id: fail-node, type: action, action: failing, edges: [ {{ to: dry-node }} ] }}
    - {{ id: dry-node, type: action, action: dry, edges: [ {{ to: dyn-end }} ] }}
    - {{ id: dyn-end, type: end }}
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let out = run(&["validate", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for name in ["undefined.endpoint", "tenant.token"] {
        assert!(
            err.contains(&format!("\"{name}\"")) && err.contains("left as written"),
            "{name}: {err}"
        );
    }
    let (out, r) = report(&dir, &s);
    assert!(
        out.status.success(),
        "{}{r}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut paths: Vec<String> = log.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
    paths.sort();
    let mut want = Vec::new();
    // User ids count from 1.
    for u in 1..=2 {
        want.push(format!("/extra/{u}"));
        // `user.iteration` counts from 1, as the original's.
        for i in 1..=2 {
            want.push(format!("/follow/{u}/{i}"));
            want.push(format!("/missing/{u}"));
            want.push(format!("/seed/{u}"));
        }
    }
    want.sort();
    assert_eq!(
        paths, want,
        "follow-ups each iteration, extra once, none after a 404"
    );
    // The dry action: never sent, no error, counted as skipped.
    assert_eq!(r["skipped"]["dry"], 4, "{r}");
    assert!(r["not_sent"].get("dry").is_none(), "{r}");
    // Every declared action has its row; the skipped one says why.
    assert_eq!(r["by_action"]["dry"]["requests"], 0, "{r}");
    assert!(
        r["skipped_reasons"]["dry"]
            .as_str()
            .is_some_and(|w| w.contains("{{undefined.endpoint}}")),
        "{r}"
    );
    assert_eq!(r["never_ran"], serde_json::json!([]), "{r}");
    assert_eq!(r["by_action"]["follow-up"]["requests"], 4, "{r}");
}

/// The original's `capacity_management` (its fallback pool takes over when the binding's pool
/// has no address left) and `concurrency.action_rate_limit` (action starts spaced 1/rate over
/// all users), checked server-side.
#[test]
fn capacity_management_and_action_rate_limit() {
    let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let s2 = seen.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        s2.lock()
            .unwrap()
            .push((Instant::now(), r.peer.ip().to_string()));
        Reply::ok("ok")
    });
    let dir = tmp("capacity");
    let s = format!(
        r#"
version: "1.0"
name: capacity
workbook:
  ip_pools:
    - {{ id: small, ranges: ["127.0.61.1-127.0.61.2"] }}
    - {{ id: spare, ranges: ["127.0.62.0/29"] }}
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 5 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 6, think_time: 0s }}
  user_resources:
    ip_binding: {{ enabled: true, pool_id: small, strategy: per_user, release_on: user_exit }}
    capacity_management: {{ wait_on_exhaustion: false, wait_timeout: 1s, fallback_pool: spare }}
  concurrency: {{ max_concurrent_users: 5, spawn_rate_limit: 100/s, action_rate_limit: 40/s }}
actions:
  actions:
    - {{ id: hit, call: get, with: {{ url: "http://127.0.0.1:{}/x" }} }}
workflows:
  nodes:
    - {{ id: start, action: hit, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#,
        server.addr.port()
    );
    let (out, r) = report(&dir, &s);
    assert!(
        out.status.success(),
        "{}{r}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 30, "every user ran");
    let sources: BTreeSet<&str> = seen.iter().map(|(_, ip)| ip.as_str()).collect();
    let small = sources
        .iter()
        .filter(|ip| ip.starts_with("127.0.61."))
        .count();
    let spare = sources
        .iter()
        .filter(|ip| ip.starts_with("127.0.62."))
        .count();
    assert_eq!((small, spare), (2, 3), "{sources:?}");
    // 30 starts at 40/s: the last at least 29/40 s after the first, however the machine runs.
    let span = seen.last().unwrap().0 - seen.first().unwrap().0;
    assert!(span >= Duration::from_millis(700), "{span:?}");
    drop(seen);
    // Without the fallback, the third user finds no address.
    let (out, _) = report(&dir, &s.replace(", fallback_pool: spare", ""));
    assert_eq!(
        out.status.code(),
        Some(97),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A fallback that names no pool, and a zero rate, are refused.
    for (from, to, want) in [
        (
            "fallback_pool: spare",
            "fallback_pool: nope",
            "capacity_management.fallback_pool: no ip pool",
        ),
        (
            "action_rate_limit: 40/s",
            "action_rate_limit: 0/s",
            "action_rate_limit: at least one a day",
        ),
    ] {
        let path = scenario_file(&dir, &s.replace(from, to));
        let out = run(&["validate", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(2) && err.contains(want),
            "{want}: {err}"
        );
    }
}

/// UDP actions through the socket component (the original's `udp.send-reply`, `wait` nodes):
/// each user sends from its own pool address, the echo server sees the payloads, a reply is
/// matched, exported and waited on, a silent peer is retried then a timeout, a wrong reply a
/// mismatch; each per action in the report like HTTP's.
#[test]
fn udp_actions_send_from_pool_addresses_and_match_replies() {
    let (echo, echo_seen) = udp_server(|p| Some(p.to_vec()));
    let (sink, sink_seen) = udp_server(|_| None);
    let dir = tmp("udp");
    let s = format!(
        r#"
version: v1
name: udp
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.70.0/24"] }} ]
  resources:
    - {{ id: udp-target, type: udp-endpoint, properties: {{ peer_ip: "127.0.0.1", peer_port: {echo}, peer_mac: "02:00:00:00:00:a2", pool: default }} }}
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 3 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2, think_time: 0s, max_concurrency: 1 }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
actions:
  actions:
    - id: echo
      call: udp.send-reply
      with: {{ payload: "hello-{{{{user.id}}}}-{{{{user.iteration}}}}", timeout_ms: 2000,
              retry: {{ max: 1, backoff_ms: 10 }}, expect: {{ contains: "hello-" }} }}
      export: [ {{ type: content, name: reply }} ]
      checks: [ {{ body_matches: "^hello-[0-9]+-[0-9]+$" }}, {{ duration: "<2s" }} ]
    - id: again
      call: udp-send-reply
      with: {{ target: "127.0.0.1:{echo}", payload: "{{{{echo.reply}}}}!", expect: {{ len: 10, matches: "!$" }} }}
    - id: fire
      call: udp.send
      with: {{ peer_ip: "127.0.0.1", peer_port: "{sink}", payload_hex: "00ff10" }}
    - id: silent
      call: udp.send-reply
      with: {{ target: "127.0.0.1:{sink}", payload: x, timeout_ms: 100, retry: {{ max: 2, backoff_ms: 5 }} }}
    - id: wrong
      call: udp.send-reply
      with: {{ payload: abc, expect: {{ equals: "abd" }} }}
workflows:
  nodes:
    - {{ id: start, action: echo, priority: 10, edges: [ {{ to: wait-echo, label: sent }} ] }}
    - id: wait-echo
      type: wait
      on: {{ event: packet-rx, match: {{ action_id: echo, contains: "hello" }} }}
      edges: [ {{ to: again-node }} ]
    - {{ id: again-node, action: again, edges: [ {{ to: fire-node }} ] }}
    - {{ id: fire-node, action: fire, edges: [ {{ to: silent-node }} ] }}
    - {{ id: silent-node, action: silent, edges: [ {{ to: wrong-node }} ] }}
    - {{ id: wrong-node, action: wrong, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#
    );
    let (out, r) = report(&dir, &s);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{r}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Server-side: each user's datagrams from one pool address, its own.
    let echo_seen = echo_seen.lock().unwrap();
    let mut by_user: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, p) in echo_seen.iter() {
        assert!(from.ip().to_string().starts_with("127.0.70."), "{from}");
        let text = String::from_utf8_lossy(p).to_string();
        if let Some(rest) = text.strip_prefix("hello-") {
            let user = rest.split('-').next().unwrap().to_string();
            by_user
                .entry(user)
                .or_default()
                .insert(from.ip().to_string());
        }
    }
    assert_eq!(by_user.len(), 3, "{echo_seen:?}");
    let addrs: BTreeSet<&String> = by_user.values().flatten().collect();
    assert!(
        by_user.values().all(|a| a.len() == 1) && addrs.len() == 3,
        "{by_user:?}"
    );
    let payloads: BTreeSet<String> = echo_seen
        .iter()
        .map(|(_, p)| String::from_utf8_lossy(p).to_string())
        .collect();
    for u in 1..=3 {
        for i in 1..=2 {
            assert!(payloads.contains(&format!("hello-{u}-{i}")), "{payloads:?}");
            // The export went into the next action's payload.
            assert!(
                payloads.contains(&format!("hello-{u}-{i}!")),
                "{payloads:?}"
            );
        }
    }
    assert!(payloads.contains("abc"));
    // The sink: the hex payload 6 times, the silent action 3 tries x 6.
    let sink_seen = sink_seen.lock().unwrap();
    let hex = sink_seen
        .iter()
        .filter(|(_, p)| p == &[0, 0xff, 0x10])
        .count();
    let tries = sink_seen.iter().filter(|(_, p)| p == b"x").count();
    assert_eq!((hex, tries), (6, 18), "{sink_seen:?}");
    // The report, per action.
    let by = &r["by_action"];
    assert_eq!(by["echo"]["requests"], 6, "{r}");
    assert_eq!(by["echo"]["ok"], 6, "{r}");
    assert_eq!(by["again"]["ok"], 6, "{r}");
    assert_eq!(by["fire"]["ok"], 6, "{r}");
    assert_eq!(by["silent"]["ok"], 0, "{r}");
    assert_eq!(r["errors"]["timeout(udp-reply)"], 6, "{r}");
    assert_eq!(r["errors"]["udp-reply-mismatch"], 6, "{r}");
    assert!(
        by["echo"]["bytes_received"].as_u64().unwrap() >= 6 * 9,
        "{r}"
    );
}

/// The original's UDP scenario file (component/conf/udp-echo-minimal), with the peer moved to
/// loopback and a pool named as its ip_binding says: top-level user_resources, `timeout-ms`,
/// `retry.max: 0`, a `wait` node on `packet.rx`, `priority`, `max_concurrency`.
#[test]
fn the_original_udp_scenario_runs() {
    let (echo, seen) = udp_server(|p| Some(p.to_vec()));
    let dir = tmp("udp-original");
    let s = format!(
        r#"version: "v1"
name: "udp-echo-minimal"

workbook:
  ip_pools: [ {{ id: default, ranges: ["127.0.71.0/30"] }} ]
  resources:
    - id: "udp-target"
      type: "udp-endpoint"
      properties:
        peer_ip: "127.0.0.1"
        peer_port: {echo}
        peer_mac: "02:00:00:00:00:a2"
        pool: "default"

actions:
  actions:
    - id: "udp-send-reply"
      call: "udp.send-reply"
      with:
        payload: "hello-ntx"
        timeout-ms: 3000
        retry:
          max: 0
          backoff_ms: 500

workflows:
  nodes:
    - id: "start"
      type: "action"
      priority: 10
      action: "udp-send-reply"
      edges:
        - to: "wait-echo"
          label: "sent"

    - id: "wait-echo"
      type: "wait"
      on:
        event: "packet.rx"
        match:
          action_id: "udp-send-reply"
      edges:
        - to: "end"
          label: "echo-ok"

    - id: "end"
      type: "end"

load:
  ramp_up:
    phases:
      - at_second: 0
        spawn_users: 1
  user_lifetime:
    mode: "once"
    max_concurrency: 1

user_resources:
  ip_binding:
    enabled: true
    pool_id: "default"
"#
    );
    let path = scenario_file(&dir, &s);
    let out = run(&["validate", "--strict", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, r) = report(&dir, &s);
    assert!(
        out.status.success(),
        "{}{r}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].1, b"hello-ntx");
    assert!(
        seen[0].0.ip().to_string().starts_with("127.0.71."),
        "{seen:?}"
    );
    assert_eq!(r["by_action"]["udp-send-reply"]["ok"], 1, "{r}");
}
