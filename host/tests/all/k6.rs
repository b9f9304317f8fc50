//! What a k6 user reaches for: parameters from outside the file (`{{env.NAME}}`, `--env`),
//! `--users`/`--duration`/`--iterations` over the file's load, random think times, and a
//! login that runs once per user before the loop. Checked at the target.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use integration_tests::http_server::{Reply, serve};

use crate::common::*;

/// (path, source address, cookie-less token header, when) of every request.
type Seen = Arc<Mutex<Vec<(String, String, String, Instant)>>>;

fn login_target() -> (integration_tests::http_server::TestServer, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        let peer = r.peer.ip().to_string();
        let token = r.header("x-token").unwrap_or("-").to_string();
        s.lock()
            .unwrap()
            .push((r.path.clone(), peer.clone(), token.clone(), Instant::now()));
        match r.path.as_str() {
            "/login" => Reply::ok(format!("{{\"token\":\"t-{peer}\"}}")),
            "/me" if token == format!("t-{peer}") => Reply::ok("me"),
            "/me" => Reply::status(401, &[]),
            _ => Reply::ok("ok"),
        }
    });
    (server, seen)
}

const SCENARIO: &str = r#"
version: "1.0"
name: k6-user
workbook:
  ip_pools: [ { id: p, ranges: ["127.0.99.0/29"] } ]
load:
  ramp_up: { phases: [ { spawn_users: {{env.USERS:-2}} } ] }
  user_lifetime: { mode: loop, iterations: 3, think_time: { min: 100ms, max: 200ms } }
  user_resources: { ip_binding: { enabled: true, pool_id: p, strategy: per_user } }
actions:
  actions:
    - id: login
      call: post
      with: { url: "{{env.BASE}}/login", body: "u=1" }
      export: [ { name: token, type: json, pointer: "/token" } ]
    - id: me
      call: get
      with: { url: "{{env.BASE}}/me", headers: { x-token: "{{login.token}}" } }
workflows:
  nodes:
    - { id: a, type: action, action: login, once: true, edges: [ { to: b } ] }
    - { id: b, type: action, action: me, edges: [ { to: end } ] }
    - { id: end, type: end }
"#;

fn per_source(seen: &Seen, path: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (p, ip, _, _) in seen.lock().unwrap().iter().filter(|s| s.0 == path) {
        let _ = p;
        *m.entry(ip.clone()).or_insert(0) += 1;
    }
    m
}

#[test]
fn env_once_and_random_think_times() {
    let (server, seen) = login_target();
    let dir = tmp("k6-user");
    let path = scenario_file(&dir, SCENARIO);
    let p = path.to_str().unwrap();
    // BASE has no default: without it the file is refused, naming it.
    let out = run(&["validate", p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BASE"));
    let base = format!("BASE={}", server.url(""));
    let out = run(&["run", p, "--env", &base, "-e", "USERS=3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Three users (from --env), each logged in once from its address, then 3 authorised GETs.
    let logins = per_source(&seen, "/login");
    let mes = per_source(&seen, "/me");
    assert_eq!(logins.len(), 3, "{logins:?}");
    assert!(logins.values().all(|n| *n == 1), "{logins:?}");
    assert_eq!(
        mes.keys().collect::<Vec<_>>(),
        logins.keys().collect::<Vec<_>>()
    );
    assert!(mes.values().all(|n| *n == 3), "{mes:?}");
    // Think times drawn between 100 and 200 ms: a user's GETs are that far apart (and not
    // all the same).
    let seen = seen.lock().unwrap().clone();
    let mut gaps = Vec::new();
    for ip in mes.keys() {
        let times: Vec<Instant> = seen
            .iter()
            .filter(|s| s.0 == "/me" && &s.1 == ip)
            .map(|s| s.3)
            .collect();
        gaps.extend(times.windows(2).map(|w| (w[1] - w[0]).as_millis()));
    }
    assert_eq!(gaps.len(), 6);
    assert!(gaps.iter().all(|g| (95..400).contains(g)), "{gaps:?}");
    assert!(gaps.iter().any(|g| *g != gaps[0]), "{gaps:?}");
    // The process environment works too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .args(["validate", p])
        .env("BASE", server.url(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn users_duration_and_shared_iterations_from_the_command_line() {
    let (server, seen) = login_target();
    let dir = tmp("k6-flags");
    let path = scenario_file(&dir, SCENARIO);
    let p = path.to_str().unwrap();
    let base = format!("BASE={}", server.url(""));
    // --users 4 --iterations 10: ten passes in all over four users (each logs in once).
    let out = run(&["run", p, "-e", &base, "--users", "4", "--iterations", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(per_source(&seen, "/me").values().sum::<usize>(), 10);
    assert_eq!(per_source(&seen, "/login").len(), 4);
    seen.lock().unwrap().clear();
    // --users 2 --duration 1s: two users looping (think 100-200 ms) for a second.
    let started = Instant::now();
    let out = run(&["run", p, "-e", &base, "--users", "2", "--duration", "1s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(started.elapsed().as_secs_f64() < 10.0);
    let mes = per_source(&seen, "/me");
    assert_eq!(mes.len(), 2);
    assert!(mes.values().all(|n| (4..=11).contains(n)), "{mes:?}");
}

/// Wall-clock times: the JSON report's `started_at`/`ended_at`, each `--out json` line's
/// `time` (RFC 3339, UTC), within the run as the test saw it; the merge keeps the whole span.
#[test]
fn reports_and_streams_say_when() {
    let (server, _seen) = login_target();
    let dir = tmp("k6-time");
    let path = scenario_file(&dir, SCENARIO);
    let base = format!("BASE={}", server.url(""));
    let (json, stream, result) = (
        dir.join("r.json"),
        dir.join("o.jsonl"),
        dir.join("r.result"),
    );
    let before = std::time::SystemTime::now();
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "-e",
        &base,
        "--json",
        json.to_str().unwrap(),
        "--out",
        &format!("json={}", stream.display()),
        "--result",
        result.to_str().unwrap(),
    ]);
    let after = std::time::SystemTime::now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let t = |v: &serde_json::Value| humantime::parse_rfc3339(v.as_str().unwrap()).unwrap();
    let (start, end) = (t(&r["started_at"]), t(&r["ended_at"]));
    let ms = std::time::Duration::from_millis(1);
    assert!(
        before - ms <= start && start <= end && end <= after + ms,
        "{r}"
    );
    for line in std::fs::read_to_string(&stream).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let at = t(&v["time"]);
        assert!(
            start <= at && at <= end + std::time::Duration::from_secs(1),
            "{line}"
        );
    }
    let merged = dir.join("m.json");
    let out = run(&[
        "merge",
        result.to_str().unwrap(),
        "--json",
        merged.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(
        (&m["started_at"], &m["ended_at"]),
        (&r["started_at"], &r["ended_at"])
    );
}

/// `setup:` runs once before any user (its exports every user's), `teardown:` once after the
/// last; a setup that fails stops the run before any user starts.
#[test]
fn setup_and_teardown_run_once_around_the_users() {
    let (server, log) = login_target();
    let dir = tmp("k6-setup");
    let text = |setup_path: &str| {
        format!(
            r#"
version: "1.0"
name: setup
load:
  ramp_up: {{ phases: [ {{ spawn_users: 3 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2 }}
setup: [ admin ]
teardown: [ cleanup ]
actions:
  actions:
    - id: admin
      call: post
      with: {{ url: "{base}{setup_path}", body: "admin" }}
      export: [ {{ name: token, type: json, pointer: "/token" }} ]
    - id: work
      call: get
      with: {{ url: "{base}/work", headers: {{ x-token: "{{{{admin.token}}}}" }} }}
    - id: cleanup
      call: delete
      with: {{ url: "{base}/cleanup", headers: {{ x-token: "{{{{admin.token}}}}" }} }}
workflows:
  nodes:
    - {{ id: a, type: action, action: work, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#,
            base = server.url("")
        )
    };
    let path = scenario_file(&dir, &text("/login"));
    let out = run(&["run", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let seen = log.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(paths.first(), Some(&"/login"), "{paths:?}");
    assert_eq!(paths.last(), Some(&"/cleanup"), "{paths:?}");
    assert_eq!(paths.iter().filter(|p| **p == "/work").count(), 6);
    // Every user's requests and the teardown carry setup's token.
    let token = format!("t-{}", seen[0].1);
    assert!(seen[1..].iter().all(|s| s.2 == token), "{seen:?}");
    // A setup that fails (401 from /me): no user runs, exit 1, the report says why.
    let before = paths.len();
    let path = scenario_file(&dir, &text("/me"));
    let out = run(&["run", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("setup action \"admin\" failed"));
    let after: Vec<String> = log.lock().unwrap()[before..]
        .iter()
        .map(|s| s.0.clone())
        .collect();
    assert_eq!(after, ["/me"], "only the setup's request was sent");
}

/// `workbook.data`: rows from CSV, JSON and JSON-lines files, by user, in sequence, once
/// each (then the users stop, and the report says so); a column no file has is a problem.
#[test]
fn data_files_give_each_pass_its_row() {
    let bodies: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let b = bodies.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        let user = r.header("x-user").unwrap_or("-").to_string();
        b.lock()
            .unwrap()
            .push((user, String::from_utf8_lossy(&r.body).into_owned()));
        Reply::ok("ok")
    });
    let dir = tmp("k6-data");
    std::fs::write(
        dir.join("creds.csv"),
        "username,password\nann,a1\nbob,\"b,2\"\ncid,c3\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("items.json"),
        r#"[{"sku":"s0"},{"sku":"s1"},{"sku":"s2"},{"sku":"s3"}]"#,
    )
    .unwrap();
    std::fs::write(dir.join("codes.jsonl"), "{\"code\":\"k0\"}\n{\"code\":\"k1\"}\n{\"code\":\"k2\"}\n{\"code\":\"k3\"}\n{\"code\":\"k4\"}\n").unwrap();
    let scenario = |body: &str, users: u32, iterations: u32| {
        format!(
            r#"
version: "1.0"
name: data
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.100.0/29"] }} ]
  data:
    - {{ id: creds, file: creds.csv }}
    - {{ id: items, file: items.json, mode: sequential }}
    - {{ id: codes, file: codes.jsonl, mode: unique }}
load:
  ramp_up: {{ phases: [ {{ spawn_users: {users} }} ] }}
  user_lifetime: {{ mode: loop, iterations: {iterations} }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
actions:
  actions:
    - {{ id: a, call: post, with: {{ url: "{}", body: "{body}", headers: {{ x-user: "{{{{user.id}}}}" }} }} }}
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
            server.url("/")
        )
    };
    // per_user: user k has row k-1, every pass.
    let path = scenario_file(
        &dir,
        &scenario("{{creds.username}}:{{creds.password}}", 3, 2),
    );
    let out = run(&["run", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (user, body) in bodies.lock().unwrap().drain(..) {
        by_user.entry(user).or_default().push(body);
    }
    assert_eq!(by_user.len(), 3, "{by_user:?}");
    let mut rows: Vec<&String> = by_user
        .values()
        .map(|v| {
            assert_eq!(v[0], v[1], "a user keeps its row");
            &v[0]
        })
        .collect();
    rows.sort();
    assert_eq!(rows, ["ann:a1", "bob:b,2", "cid:c3"]);
    // sequential: 2 users x 3 passes over 4 rows: s0..s3, then s0, s1 again.
    let path = scenario_file(&dir, &scenario("{{items.sku}}", 2, 3));
    assert!(run(&["run", path.to_str().unwrap()]).status.success());
    let mut got: Vec<String> = bodies.lock().unwrap().drain(..).map(|b| b.1).collect();
    got.sort();
    assert_eq!(got, ["s0", "s0", "s1", "s1", "s2", "s3"]);
    // unique: 5 rows for 2 users x 10 passes: each row once, then the run stops.
    let json = dir.join("r.json");
    let path = scenario_file(&dir, &scenario("{{codes.code}}", 2, 10));
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut got: Vec<String> = bodies.lock().unwrap().drain(..).map(|b| b.1).collect();
    got.sort();
    assert_eq!(got, ["k0", "k1", "k2", "k3", "k4"]);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["data_exhausted"], serde_json::json!(["codes"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("every row used"));
    // A column the file does not have.
    let path = scenario_file(&dir, &scenario("{{creds.email}}", 1, 1));
    let out = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no column \"email\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Tags on actions: the report's `by_tag`, labels on the metrics, threshold filters, and
/// kept through result files and merges.
#[test]
fn tags_group_requests_in_reports_metrics_and_thresholds() {
    let (server, _seen) = login_target();
    let dir = tmp("k6-tags");
    let s = format!(
        r#"
version: "1.0"
name: tags
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 2 }} ] }} }}
thresholds:
  "http_req_duration{{group:api}}": ["p(95)<60000"]
  "http_reqs{{group:static}}": ["count==2"]
actions:
  actions:
    - {{ id: one, call: get, with: {{ url: "{base}/one" }}, tags: {{ group: api, kind: read }} }}
    - {{ id: two, call: get, with: {{ url: "{base}/two" }}, tags: {{ group: api }} }}
    - {{ id: page, call: get, with: {{ url: "{base}/page" }}, tags: {{ group: static }} }}
workflows:
  nodes:
    - {{ id: a, action: one, edges: [ {{ to: b }} ] }}
    - {{ id: b, action: two, edges: [ {{ to: c }} ] }}
    - {{ id: c, action: page }}
"#,
        base = server.url("")
    );
    let path = scenario_file(&dir, &s);
    let (json, metrics, result) = (dir.join("r.json"), dir.join("m.txt"), dir.join("r.result"));
    let (csv, lines) = (dir.join("s.csv"), dir.join("s.jsonl"));
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--metrics",
        metrics.to_str().unwrap(),
        "--result",
        result.to_str().unwrap(),
        "--out",
        &format!("csv={}", csv.display()),
        "--out",
        &format!("json={}", lines.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["by_tag"]["group:api"]["requests"], 4, "{}", r["by_tag"]);
    assert_eq!(r["by_tag"]["group:static"]["requests"], 2);
    assert_eq!(r["by_tag"]["kind:read"]["requests"], 2);
    assert!(
        r["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["ok"] == true),
        "{}",
        r["thresholds"]
    );
    // The streams carry the tags: a CSV row per tag each second (its name in `tag`), and
    // `tags` in each JSON interval; over the run they add up to by_tag.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut rows = text.lines();
    assert!(rows.next().unwrap().ends_with(",users_active,tag"));
    let mut by_tag: std::collections::BTreeMap<String, u64> = Default::default();
    for row in rows {
        let cols: Vec<&str> = row.split(',').collect();
        assert_eq!(cols.len(), 11, "{row}");
        *by_tag.entry(cols[10].to_string()).or_default() += cols[1].parse::<u64>().unwrap();
    }
    assert_eq!(by_tag["group:api"], 4, "{text}");
    assert_eq!(
        (by_tag["group:static"], by_tag["kind:read"], by_tag[""]),
        (2, 2, 6)
    );
    let mut api = 0;
    for l in std::fs::read_to_string(&lines).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        api += v["tags"]["group:api"]["requests"].as_u64().unwrap_or(0);
    }
    assert_eq!(api, 4);
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains("action=\"one\",tenant=\"default-tenant\",group=\"api\",kind=\"read\""),
        "{m}"
    );
    assert!(m.contains("http_requests_total{action=\"page\",tenant=\"default-tenant\",status=\"200\",group=\"static\"} 2"), "{m}");
    // The merge keeps the tags: its by_tag and its threshold verdicts are the same.
    let merged = dir.join("merged.json");
    let out = run(&[
        "merge",
        result.to_str().unwrap(),
        "--json",
        merged.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(v["by_tag"], r["by_tag"]);
    // A threshold on a tag that crosses: 99.
    let crossed = s.replace("count==2", "count==3");
    let path = scenario_file(&dir, &crossed);
    assert_eq!(
        run(&["run", path.to_str().unwrap()]).status.code(),
        Some(99)
    );
}

/// `--iterations N` over an arrival rate: the schedule's first N iterations, no more.
#[test]
fn iterations_bound_an_arrival_rate() {
    let (server, seen) = login_target();
    let dir = tmp("k6-arrival-iterations");
    let s = format!(
        r#"
version: "1.0"
name: arrival
load: {{ arrival_rate: {{ rate: 50/s, duration: 2s, pre_allocated_users: 4, max_users: 10 }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "{}" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.url("/x")
    );
    let path = scenario_file(&dir, &s);
    let out = run(&["run", path.to_str().unwrap(), "--iterations", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(seen.lock().unwrap().len(), 10);
}
