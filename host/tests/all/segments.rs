//! Segments (`run --segment I/N`): a share with no user has nothing to run, which is no
//! failure (the merge of all shares judges the run).

use crate::common::*;

#[test]
fn an_empty_segment_exits_0() {
    let (server, log) = recording_target();
    let dir = tmp("empty-segment");
    let s = format!(
        r#"
version: "1.0"
name: two-users
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 2 }} ] }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let mut codes = Vec::new();
    for seg in ["0/3", "1/3", "2/3"] {
        let out = run(&["run", path.to_str().unwrap(), "--segment", seg]);
        codes.push(out.status.code());
        if seg == "2/3" {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("nothing to run in this segment"), "{text}");
        }
    }
    assert_eq!(codes, [Some(0), Some(0), Some(0)]);
    assert_eq!(log.lock().unwrap().len(), 2, "two users ran, once each");
}

/// `merge` takes one run's parts only: the same scenario, the same run id, each segment once,
/// none missing (unless --partial); each file's totals add up; the time series is kept.
#[test]
fn merge_refuses_wrong_sets() {
    let (server, _log) = recording_target();
    let dir = tmp("merge-sets");
    let s = format!(
        r#"
version: "1.0"
name: six
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 6 }} ] }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let result = |seg: &str, id: &str, path: &std::path::Path| {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let f = dir.join(format!("r-{stem}-{}-{id}.json", seg.replace('/', "of")));
        let out = run(&[
            "run",
            path.to_str().unwrap(),
            "--segment",
            seg,
            "--run-id",
            id,
            "--result",
            f.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        f.display().to_string()
    };
    let (r0, r1, r2) = (
        result("0/3", "a", &path),
        result("1/3", "a", &path),
        result("2/3", "a", &path),
    );
    let merge = |files: &[&str], extra: &[&str]| {
        let mut args = vec!["merge"];
        args.extend_from_slice(files);
        args.extend_from_slice(extra);
        let out = run(&args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let json = dir.join("m.json");
    let (code, err) = merge(&[&r0, &r1, &r2], &["--json", json.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(m["totals"]["requests"], 6);
    let in_series: u64 = m["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(in_series, 6, "the series is kept: {}", m["series"]);

    let (code, err) = merge(&[&r0, &r1], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("segments missing: 2/3"), "{err}");
    let (code, err) = merge(&[&r0, &r1], &["--partial"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("without segment(s) 2"), "{err}");
    let (code, err) = merge(&[&r0, &r0, &r1, &r2], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("segment 0/3 twice"), "{err}");
    let other_run = result("2/3", "b", &path);
    let (code, err) = merge(&[&r0, &r1, &other_run], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("another run"), "{err}");
    let other = dir.join("other.yaml");
    std::fs::write(&other, s.replace("name: six", "name: seven")).unwrap();
    let other_scenario = result("2/3", "a", &other);
    let (code, err) = merge(&[&r0, &r1, &other_scenario], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("another scenario"), "{err}");
    // A file whose totals do not add up.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&r2).unwrap()).unwrap();
    v["totals"]["count"] = 99.into();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let (code, err) = merge(&[&r0, &r1, bad.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("add up"), "{err}");
}

/// When each request a target served started and ended.
type Spans = std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, std::time::Instant)>>>;

/// A target that holds each request for `hold`, recording its span.
fn holding_target(
    hold: std::time::Duration,
) -> (integration_tests::http_server::TestServer, Spans) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = integration_tests::http_server::serve("127.0.0.1:0", None, move |_| {
        let start = std::time::Instant::now();
        std::thread::sleep(hold);
        s.lock().unwrap().push((start, std::time::Instant::now()));
        integration_tests::http_server::Reply::ok("ok")
    });
    (server, seen)
}

fn run_segments(path: &std::path::Path, n: u32) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..n)
        .map(|i| spawn_run(path, &["--segment", &format!("{i}/{n}")]))
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// k6's rules: an arrival schedule is striped over the segments (their union is one run's
/// schedule) and a cap on users alive at once is split so the shares add up to it.
#[test]
fn rates_and_caps_split_exactly() {
    let (server, log) = recording_target();
    let dir = tmp("exact-rate");
    let s = format!(
        r#"
version: "1.0"
name: rate
load: {{ arrival_rate: {{ rate: 50/s, duration: 2s, pre_allocated_users: 6, max_users: 30 }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    for out in run_segments(&path, 3) {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        log.lock().unwrap().len(),
        100,
        "50/s for 2 s over three segments"
    );

    let (server, seen) = holding_target(std::time::Duration::from_millis(250));
    let capped = |cap: u32| {
        format!(
            r#"
version: "1.0"
name: capped
load:
  ramp_up: {{ phases: [ {{ spawn_users: 9 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2 }}
  concurrency: {{ max_concurrent_users: {cap} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
            server.addr.port()
        )
    };
    let path = scenario_file(&dir, &capped(5));
    for out in run_segments(&path, 3) {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 18);
    let most = seen
        .iter()
        .map(|a| seen.iter().filter(|b| b.0 <= a.0 && a.0 < b.1).count())
        .max()
        .unwrap();
    assert!(most <= 5, "{most} users at once over a cap of 5");
    // A cap smaller than the segments leaves one with none (split as users are striped: 1,
    // 1, 0): refused, not overshot.
    let path = scenario_file(&dir, &capped(2));
    let out = run(&["run", path.to_str().unwrap(), "--segment", "2/3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fewer than the 3 segments"));
}

/// A segment records its share's thresholds and leaves the verdict to the merge.
#[test]
fn thresholds_are_judged_by_the_merge() {
    let (server, _log) = recording_target();
    let dir = tmp("segment-thresholds");
    let s = format!(
        r#"
version: "1.0"
name: judged
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 4 }} ] }} }}
thresholds: {{ http_req_duration: ["p(95)<0"] }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let mut files = Vec::new();
    for i in 0..2 {
        let result = dir.join(format!("r{i}.json"));
        let seg = format!("{i}/2");
        let out = run(&[
            "run",
            path.to_str().unwrap(),
            "--segment",
            &seg,
            "--result",
            result.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("merge` judges the whole run"));
        files.push(result.to_str().unwrap().to_string());
    }
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The whole run judges its own.
    let out = run(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(99));
}

/// `run --workers N`: N segment processes, one merged report and exit code; a signal to the
/// command reaches every worker, and the merged report still comes out.
#[test]
fn workers_run_the_segments_and_merge_them() {
    let (server, log) = recording_target();
    let dir = tmp("workers");
    let s = |iterations: &str| {
        format!(
            r#"
version: "1.0"
name: workers
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.81.0/28"] }} ]
load:
  ramp_up: {{ phases: [ {{ spawn_users: 9 }} ] }}
  user_lifetime: {{ mode: loop, {iterations}, think_time: 50ms }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
            server.addr.port()
        )
    };
    let path = scenario_file(&dir, &s("iterations: 2"));
    let json = dir.join("merged.json");
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--workers",
        "3",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["totals"]["ok"], 18, "{r}");
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 18);
    let sources: std::collections::BTreeSet<&str> =
        seen.iter().map(|(_, ip)| ip.as_str()).collect();
    assert_eq!(sources.len(), 9, "each user its own address: {sources:?}");
    assert!(sources.iter().all(|ip| ip.starts_with("127.0.81.")));
    // A long run stopped by SIGTERM: every worker drains, and the merge says so (143).
    let path = scenario_file(&dir, &s("duration: 60s"));
    let child = spawn_run(&path, &["--workers", "2", "--json", json.to_str().unwrap()]);
    // Signalled once the workers are sending (their start takes longer on a loaded machine).
    let sent = || log.lock().unwrap().len();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sent() < 18 + 12 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["interrupted"], true, "{r}");
    assert!(r["totals"]["ok"].as_u64().unwrap() > 9, "{r}");
}

/// Ctrl-C at a terminal reaches the whole foreground group: the workers, in groups of their
/// own, get it once (from the command), so in-flight requests drain instead of being cut.
#[test]
fn a_terminal_ctrl_c_drains_the_workers() {
    use std::os::unix::process::CommandExt;
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = started.clone();
    let server = integration_tests::http_server::serve("127.0.0.1:0", None, move |_| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(700));
        integration_tests::http_server::Reply::ok("ok")
    });
    let dir = tmp("workers-ctrl-c");
    let s = format!(
        r#"
version: "1.0"
name: drain
load:
  ramp_up: {{ phases: [ {{ spawn_users: 4 }} ] }}
  user_lifetime: {{ mode: loop, duration: 60s }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let json = dir.join("r.json");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .args([
            "run",
            path.to_str().unwrap(),
            "--workers",
            "2",
            "--json",
            json.to_str().unwrap(),
        ])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Signalled while every user has a request in flight (however long the workers took to
    // start on a loaded machine).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while started.load(std::sync::atomic::Ordering::SeqCst) < 4
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: kill(2) on the group of the command this test started (its own group).
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        r["errors"]["interrupted"],
        serde_json::Value::Null,
        "drained, not cut: {r}"
    );
    assert!(r["totals"]["ok"].as_u64().unwrap() >= 4, "{r}");
}
