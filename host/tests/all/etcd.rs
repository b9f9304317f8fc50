//! Several `scheduler run` processes sharing their pools through etcd (`--etcd`): segments
//! that run every user once, no address held by two users at once in any process, a kill -9
//! whose blocks come back when its lease expires, a race for the last block, and etcd lost
//! mid-run. etcd (Debian's etcd-server) is started here on loopback with its own data dir.
//!
//! `.ci/run` installs etcd. Where it is missing the tests say so and pass, unless
//! REQUIRE_ETCD=1 (as in CI), where they fail.

use integration_tests::scratch::Scratch;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::http_server::{Reply, TestServer, serve};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_scheduler");

/// A scratch directory for the test `name` (removed after a pass, kept after a failure).
fn tmp(name: &str) -> Scratch {
    Scratch::new(&format!("scheduler-etcd-{name}"))
}

fn etcd(name: &str) -> Option<integration_tests::etcd::Etcd> {
    let Some(bin) = integration_tests::etcd::binary() else {
        assert!(
            std::env::var("REQUIRE_ETCD").is_err(),
            "REQUIRE_ETCD is set but etcd is not installed"
        );
        eprintln!("SKIPPED: etcd is not installed (apt-get install etcd-server)");
        return None;
    };
    Some(integration_tests::etcd::Etcd::start(&bin, name).unwrap())
}

/// How many of the IPAM's block keys etcd holds (through its JSON gateway).
fn keys(url: &str) -> Result<usize, String> {
    // The prefix "/scheduler/ipam/v1/" and its range end, base64.
    let body = r#"{"key":"L3NjaGVkdWxlci9pcGFtL3YxLw==","range_end":"L3NjaGVkdWxlci9pcGFtL3YxMA==","count_only":true}"#;
    let v = integration_tests::etcd::post(url, "/v3/kv/range", body)
        .ok_or_else(|| format!("etcd at {url} did not answer"))?;
    Ok(v["count"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// (source address, user, start, end) of each request, as the server saw it.
type Seen = Arc<Mutex<Vec<(String, String, Instant, Instant)>>>;

/// A target that holds each request `hold` and records who sent it, from where, when.
fn target(hold: Duration) -> (TestServer, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        let start = Instant::now();
        std::thread::sleep(hold);
        s.lock().unwrap().push((
            r.peer.ip().to_string(),
            r.header("x-user").unwrap_or("").to_string(),
            start,
            Instant::now(),
        ));
        Reply::ok("ok")
    });
    (server, seen)
}

fn scenario(port: u16, pool: &str, users: u32, tasks: u32, strategy: &str, extra: &str) -> String {
    format!(
        r#"
version: "1.0"
name: shared
workbook:
  ip_pools:
    - {{ id: p, ranges: ["{pool}"] }}
load:
  ramp_up:
    phases:
      - {{ at_second: 0, spawn_users: {users}, ip_pool_override: p }}
  user_lifetime: {{ mode: loop, iterations: {tasks}{extra} }}
  user_resources:
    ip_binding: {{ enabled: true, pool_id: p, strategy: {strategy}, release_on: {release}, wait_on_exhaustion: true, wait_timeout: 30s }}
actions:
  actions:
    - id: get
      call: get
      with: {{ url: "http://127.0.0.1:{port}/x", bind_ip: "{{{{user.allocated_ip}}}}", headers: {{ x-user: "{{{{user.id}}}}" }} }}
workflows:
  nodes:
    - {{ id: start, type: action, action: get, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#,
        release = if strategy == "per_task" {
            "task_end"
        } else {
            "user_exit"
        }
    )
}

fn spawn(path: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("run")
        .arg(path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// No address served two users at overlapping times.
fn assert_no_overlap(seen: &[(String, String, Instant, Instant)]) {
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i + 1..] {
            if a.0 == b.0 && a.1 != b.1 {
                assert!(
                    a.3 <= b.2 || b.3 <= a.2,
                    "{} served users {} and {} at once",
                    a.0,
                    a.1,
                    b.1
                );
            }
        }
    }
}

#[test]
fn three_segments_share_one_pool_and_merge_exactly() {
    let Some(etcd) = etcd("segments") else { return };
    let d = tmp("segments");
    let (server, seen) = target(Duration::from_millis(30));
    // 24 users of 4 tasks each, an address per task from 16 (fewer than the users).
    let path = d.join("s.yaml");
    std::fs::write(
        &path,
        scenario(server.addr.port(), "127.0.70.0/28", 24, 4, "per_task", ""),
    )
    .unwrap();
    let children: Vec<Child> = (0..3)
        .map(|i| {
            let result = d.join(format!("r{i}.json"));
            spawn(
                &path,
                &[
                    "--segment",
                    &format!("{i}/3"),
                    "--etcd",
                    &etcd.url,
                    "--result",
                    result.to_str().unwrap(),
                ],
            )
        })
        .collect();
    for c in children {
        let (code, out) = finish(c);
        assert_eq!(code, Some(0), "{out}");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 96);
    // Every user exactly once over the processes: four requests each.
    let mut per_user = std::collections::BTreeMap::<String, usize>::new();
    for s in &seen {
        *per_user.entry(s.1.clone()).or_default() += 1;
        assert!(s.0.starts_with("127.0.70."), "{}", s.0);
    }
    assert_eq!(per_user.len(), 24, "{per_user:?}");
    assert!(per_user.values().all(|&n| n == 4), "{per_user:?}");
    assert_no_overlap(&seen);
    // The three result files merge into the whole run.
    let merged = d.join("merged.json");
    let out = Command::new(BIN)
        .arg("merge")
        .args((0..3).map(|i| d.join(format!("r{i}.json"))))
        .arg("--json")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(v["totals"]["requests"], 96);
    assert_eq!(v["totals"]["ok"], 96);
    // Every block went back.
    assert_eq!(keys(&etcd.url), Ok(0));
}

#[test]
fn a_killed_process_gives_its_blocks_back_when_its_lease_expires() {
    let Some(etcd) = etcd("kill") else { return };
    let d = tmp("kill");
    let (server, seen) = target(Duration::from_millis(1));
    // The first process's 8 users hold all 8 addresses, for a long time.
    let holder = d.join("holder.yaml");
    std::fs::write(
        &holder,
        scenario(
            server.addr.port(),
            "127.0.71.0/29",
            8,
            1000,
            "per_user",
            ", think_time: 1s",
        ),
    )
    .unwrap();
    let mut a = spawn(&holder, &["--etcd", &etcd.url, "--lease-ttl", "2s"]);
    let start = Instant::now();
    while seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| &s.0)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        < 8
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the holder did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(keys(&etcd.url).unwrap() >= 1);
    a.kill().unwrap();
    let _ = a.wait();
    // A second process needs all 8: it waits for the lease to expire, then gets them.
    seen.lock().unwrap().clear();
    let taker = d.join("taker.yaml");
    std::fs::write(
        &taker,
        // Each user holds its address a while: all 8 are needed at once.
        scenario(
            server.addr.port(),
            "127.0.71.0/29",
            8,
            2,
            "per_user",
            ", think_time: 500ms",
        ),
    )
    .unwrap();
    let (code, out) = finish(spawn(&taker, &["--etcd", &etcd.url]));
    assert_eq!(code, Some(0), "{out}");
    let seen = seen.lock().unwrap().clone();
    let addresses: std::collections::BTreeSet<_> = seen.iter().map(|s| s.0.clone()).collect();
    assert_eq!(addresses.len(), 8, "{addresses:?}");
    assert_eq!(seen.len(), 16);
    assert_eq!(keys(&etcd.url), Ok(0));
}

#[test]
fn two_processes_race_for_the_last_block_and_lose_nothing() {
    let Some(etcd) = etcd("race") else { return };
    let d = tmp("race");
    let (server, seen) = target(Duration::from_millis(20));
    // One block of 4 addresses; each process's 2 users want one each, three times over.
    let path = d.join("s.yaml");
    std::fs::write(
        &path,
        scenario(
            server.addr.port(),
            "127.0.72.0/30",
            4,
            3,
            "per_user",
            ", think_time: 100ms",
        ),
    )
    .unwrap();
    let a = spawn(&path, &["--segment", "0/2", "--etcd", &etcd.url]);
    let b = spawn(&path, &["--segment", "1/2", "--etcd", &etcd.url]);
    for c in [a, b] {
        let (code, out) = finish(c);
        assert_eq!(code, Some(0), "{out}");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 12, "every request of both processes was made");
    assert_no_overlap(&seen);
    assert_eq!(keys(&etcd.url), Ok(0));
}

#[test]
fn etcd_lost_mid_run_ends_the_run_with_a_report() {
    let Some(mut etcd) = etcd("lost") else { return };
    let d = tmp("lost");
    let (server, seen) = target(Duration::from_millis(1));
    let path = d.join("s.yaml");
    std::fs::write(
        &path,
        scenario(
            server.addr.port(),
            "127.0.73.0/28",
            4,
            0,
            "per_task",
            ", duration: 60s, think_time: 50ms",
        ),
    )
    .unwrap();
    let json = d.join("r.json");
    let child = spawn(
        &path,
        &[
            "--etcd",
            &etcd.url,
            "--lease-ttl",
            "1s",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let start = Instant::now();
    while seen.lock().unwrap().len() < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = etcd.child.kill();
    let _ = etcd.child.wait();
    let stopped = Instant::now();
    let (code, out) = finish(child);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("etcd lost"), "{out}");
    assert!(
        stopped.elapsed() < Duration::from_secs(40),
        "the run went on"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["totals"]["requests"].as_u64().unwrap() >= 5);

    // Unreachable at the start: a clear error.
    let out = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .args(["--etcd", "http://127.0.0.1:9", "--etcd-wait", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is etcd running"), "{err}");
}

/// A pool bound to a segment (addresses on one host only): that segment's process has all of
/// it, the other none, with etcd and without.
#[test]
fn a_pool_bound_to_a_segment_is_that_segments_alone() {
    let d = tmp("bound");
    let (server, seen) = target(Duration::from_millis(1));
    let text = scenario(server.addr.port(), "127.0.74.0/29", 4, 2, "per_user", "")
        .replace(
            "ranges: [\"127.0.74.0/29\"] }",
            "ranges: [\"127.0.74.0/29\"], segment: 1 }",
        )
        .replace("wait_on_exhaustion: true", "wait_on_exhaustion: false");
    let path = d.join("s.yaml");
    std::fs::write(&path, text).unwrap();
    let etcd = etcd("bound");
    let mut modes: Vec<Vec<String>> = vec![vec![]];
    if let Some(e) = &etcd {
        modes.push(vec!["--etcd".into(), e.url.clone()]);
    }
    for extra in modes {
        seen.lock().unwrap().clear();
        let run = |i: u32| {
            let mut args = vec!["--segment".to_string(), format!("{i}/2")];
            args.extend(extra.iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            finish(spawn(&path, &args))
        };
        let (code, out) = run(0);
        // Nothing could be tested there (98, before 97: its users failed).
        assert_eq!(code, Some(98), "segment 0 has no address: {out}");
        assert!(
            out.contains("no address from pool p: exhausted: p"),
            "{out}"
        );
        let (code, out) = run(1);
        assert_eq!(code, Some(0), "{out}");
        let seen = seen.lock().unwrap().clone();
        // Users 2 and 4 (segment 1), two requests each, from the bound pool.
        assert_eq!(seen.len(), 4, "{extra:?}");
        assert!(seen.iter().all(|s| s.0.starts_with("127.0.74.")));
        assert!(seen.iter().all(|s| s.1 == "2" || s.1 == "4"), "{seen:?}");
    }
}

/// A run longer than its lease: the keep-alives hold it (no "etcd lost"), and the blocks go
/// back at the end.
#[test]
fn keep_alives_hold_a_run_longer_than_its_lease() {
    let Some(etcd) = etcd("keepalive") else {
        return;
    };
    let d = tmp("keepalive");
    let (server, seen) = target(Duration::from_millis(1));
    let path = d.join("s.yaml");
    std::fs::write(
        &path,
        scenario(
            server.addr.port(),
            "127.0.75.0/29",
            2,
            0,
            "per_user",
            ", duration: 3s, think_time: 100ms",
        ),
    )
    .unwrap();
    let (code, out) = finish(spawn(&path, &["--etcd", &etcd.url, "--lease-ttl", "1s"]));
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("etcd lost"), "{out}");
    assert!(seen.lock().unwrap().len() >= 20);
    assert_eq!(keys(&etcd.url), Ok(0));
}

/// A /30 gives its four addresses through etcd too, as in one process (the original's pool).
#[test]
fn a_cidr_gives_every_address_through_etcd() {
    let Some(e) = etcd("cidr") else { return };
    let (server, seen) = target(Duration::from_millis(300));
    let dir = tmp("cidr");
    let path = dir.join("s.yaml");
    let s = scenario(server.addr.port(), "127.0.96.0/30", 4, 1, "per_user", "");
    std::fs::write(&path, s).unwrap();
    let (code, out) = finish(spawn(&path, &["--etcd", &e.url]));
    assert_eq!(code, Some(0), "{out}");
    let sources: std::collections::BTreeSet<String> =
        seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
    let want: std::collections::BTreeSet<String> =
        (0..4).map(|i| format!("127.0.96.{i}")).collect();
    assert_eq!(sources, want);
}

/// SIGTERM (what Kubernetes sends a pod) ends a run through etcd with its report, and its
/// blocks go back at once, not when the lease expires.
#[test]
fn sigterm_gives_the_blocks_back_at_once() {
    let Some(e) = etcd("sigterm") else { return };
    let (server, _seen) = target(Duration::from_millis(100));
    let dir = tmp("sigterm");
    let path = dir.join("s.yaml");
    let s = scenario(server.addr.port(), "127.0.88.0/26", 6, 0, "per_user", "");
    std::fs::write(&path, s).unwrap();
    let json = dir.join("r.json");
    let child = spawn(
        &path,
        &[
            "--etcd",
            &e.url,
            "--lease-ttl",
            "60s",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let start = Instant::now();
    while keys(&e.url).unwrap() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no block claimed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let (code, out) = finish(child);
    assert_eq!(code, Some(143), "{out}");
    assert_eq!(keys(&e.url).unwrap(), 0, "blocks still held after SIGTERM");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["interrupted"], true);
}

/// A server that holds each request up to `hold`, watching its connection: it records (source
/// address, process tag, when the connection opened, when it closed or was answered). What
/// the client's address was used for, as the network saw it.
fn watching_target(hold: Duration) -> (u16, Seen) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let start = Instant::now();
                let peer = conn.peer_addr().unwrap().ip().to_string();
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let tag = text
                    .lines()
                    .find_map(|l| l.strip_prefix("x-user: "))
                    .unwrap_or("?")
                    .to_string();
                conn.set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                while start.elapsed() < hold {
                    match conn.read(&mut b) {
                        Ok(0) => break,
                        Err(e)
                            if e.kind() == std::io::ErrorKind::WouldBlock
                                || e.kind() == std::io::ErrorKind::TimedOut => {}
                        _ => break,
                    }
                }
                s.lock().unwrap().push((peer, tag, start, Instant::now()));
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            });
        }
    });
    (port, seen)
}

/// etcd paused (SIGSTOP) past the lease while a process holds every address of a pool with
/// long requests: the process gives the addresses up before its lease can have expired (it
/// cuts its requests and stops with exit 1), and a second process that takes them after the
/// lease expired never overlaps it on any address, as the server sees it.
#[test]
fn etcd_paused_past_the_lease_never_shares_an_address() {
    let Some(e) = etcd("paused") else { return };
    let (port, seen) = watching_target(Duration::from_secs(9));
    let dir = tmp("paused");
    let path = dir.join("s.yaml");
    let s = scenario(port, "127.0.89.0/30", 4, 1, "per_user", "").replace(
        "x-user: \"{{user.id}}\"",
        "x-user: \"{{user.id}}-{{user.tenant}}\"",
    );
    std::fs::write(&path, &s).unwrap();
    let first = spawn(&path, &["--etcd", &e.url, "--lease-ttl", "2s"]);
    let start = Instant::now();
    while keys(&e.url).unwrap() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no block claimed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(700));
    let pid = e.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let second_path = dir.join("s2.yaml");
    std::fs::write(&second_path, s.replace("name: shared", "name: second")).unwrap();
    let second = spawn(&second_path, &["--etcd", &e.url, "--lease-ttl", "2s"]);
    let (code, out) = finish(first);
    assert_eq!(code, Some(1), "the first gave its addresses up: {out}");
    assert!(out.contains("given up"), "{out}");
    let (code2, out2) = finish(second);
    assert_eq!(code2, Some(0), "{out2}");
    let seen = seen.lock().unwrap().clone();
    // Tag each request with its process: the second's came after it started.
    let tagged: Vec<(String, String, Instant, Instant)> = seen
        .into_iter()
        .map(|(ip, user, a, b)| {
            (
                ip,
                format!("{user}@{}", a > start + Duration::from_millis(4700)),
                a,
                b,
            )
        })
        .collect();
    assert!(tagged.iter().any(|t| t.1.ends_with("@true")), "{tagged:?}");
    assert_no_overlap(&tagged);
}

/// Segments that start before etcd is ready wait for it (with backoff, up to --etcd-wait)
/// instead of failing at once.
#[test]
fn a_run_waits_for_etcd_at_the_start() {
    let Some(bin) = integration_tests::etcd::binary() else {
        assert!(
            std::env::var("REQUIRE_ETCD").is_err(),
            "REQUIRE_ETCD is set but etcd is not installed"
        );
        eprintln!("SKIPPED: etcd is not installed");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (server, _seen) = target(Duration::from_millis(10));
    let dir = tmp("late-etcd");
    let path = dir.join("s.yaml");
    std::fs::write(
        &path,
        scenario(server.addr.port(), "127.0.87.0/28", 3, 1, "per_user", ""),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = spawn(&path, &["--etcd", &url, "--etcd-wait", "30s"]);
    // etcd starts once the run has found it not ready (however long the run took to start).
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line.contains("not ready"));
            all += &line;
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .unwrap_or_else(|_| panic!("the run never said etcd was not ready"))
    {}
    let _etcd = integration_tests::etcd::Etcd::start_on(&bin, "late", port).unwrap();
    let (code, out) = finish(child);
    let err = lines.join().unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("not ready"), "{err}");
}

/// The most requests of `seen` in progress at one moment.
fn max_at_once(seen: &[&(String, String, Instant, Instant)]) -> usize {
    seen.iter()
        .map(|a| seen.iter().filter(|b| b.2 <= a.2 && a.2 < b.3).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn pools_that_share_addresses_share_one_authority() {
    let Some(etcd) = etcd("overlap") else { return };
    let d = tmp("overlap");
    let (server, seen) = target(Duration::from_millis(300));
    let port = server.addr.port();
    let a = scenario(port, "127.0.93.0/29", 8, 2, "per_user", "");
    // Another id over the same addresses, its ranges in another order.
    let b = a
        .replace(
            r#"- { id: p, ranges: ["127.0.93.0/29"] }"#,
            r#"- { id: other, ranges: ["127.0.93.4/30", "127.0.93.0/30"] }"#,
        )
        .replace("pool_id: p", "pool_id: other")
        .replace("ip_pool_override: p", "ip_pool_override: other")
        .replace(r#"x-user: "{{user.id}}""#, r#"x-user: "b{{user.id}}""#);
    // The same id over other addresses: nothing to share.
    let c = scenario(port, "127.0.94.0/29", 8, 2, "per_user", "")
        .replace(r#"x-user: "{{user.id}}""#, r#"x-user: "c{{user.id}}""#);
    assert!(b.contains("other") && b.contains("b{{user.id}}") && c.contains("c{{user.id}}"));
    let children: Vec<Child> = [("a", &a), ("b", &b), ("c", &c)]
        .into_iter()
        .map(|(name, text)| {
            let path = d.join(format!("{name}.yaml"));
            std::fs::write(&path, text).unwrap();
            spawn(&path, &["--etcd", &etcd.url])
        })
        .collect();
    for c in children {
        let (code, out) = finish(c);
        assert_eq!(code, Some(0), "{out}");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 48, "every request of the three runs was made");
    // No address of the shared range served two users of either scenario at once.
    assert_no_overlap(&seen);
    let shared: Vec<_> = seen
        .iter()
        .filter(|s| s.0.starts_with("127.0.93."))
        .collect();
    let own: Vec<_> = seen
        .iter()
        .filter(|s| s.0.starts_with("127.0.94."))
        .collect();
    assert_eq!((shared.len(), own.len()), (32, 16));
    assert!(own.iter().all(|s| s.1.starts_with('c')));
    // The third run's pool shares an id, not an address: all its users ran at once.
    assert_eq!(max_at_once(&own), 8);
    assert_eq!(keys(&etcd.url), Ok(0));
}

/// A cluster's etcd speaks TLS and asks for a client certificate: `--etcd https://` with
/// `--etcd-cacert`, `--etcd-cert` and `--etcd-key` (certificates made here).
#[test]
fn etcd_over_tls_with_a_client_certificate() {
    use compose::tls::pki::Ca;
    let Some(bin) = integration_tests::etcd::binary() else {
        assert!(
            std::env::var("REQUIRE_ETCD").is_err(),
            "REQUIRE_ETCD is set but etcd is not installed"
        );
        return;
    };
    let d = tmp("etcd-tls");
    let ca = Ca::new("etcd test CA").unwrap();
    let server = ca.peer(&["localhost", "127.0.0.1"]).unwrap();
    let client = ca.client("scheduler").unwrap();
    let file = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (ca_pem, s_cert, s_key) = (
        file("ca.pem", &ca.cert_pem),
        file("s.pem", &server.cert_pem),
        file("s.key", &server.key_pem),
    );
    let (c_cert, c_key) = (
        file("c.pem", &client.cert_pem),
        file("c.key", &client.key_pem),
    );
    let etcd =
        integration_tests::etcd::Etcd::start_tls(&bin, "tls", &s_cert, &s_key, &ca_pem).unwrap();
    let (target, seen) = target(Duration::from_millis(1));
    let path = d.join("s.yaml");
    std::fs::write(
        &path,
        scenario(target.addr.port(), "127.0.95.0/29", 4, 2, "per_user", ""),
    )
    .unwrap();
    let tls = [
        "--etcd-cacert",
        ca_pem.to_str().unwrap(),
        "--etcd-cert",
        c_cert.to_str().unwrap(),
        "--etcd-key",
        c_key.to_str().unwrap(),
    ];
    let mut args = vec!["--etcd", etcd.url.as_str(), "--etcd-wait", "20s"];
    args.extend(tls);
    let (code, out) = finish(spawn(&path, &args));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(seen.lock().unwrap().len(), 8);
    // Without its certificate the process cannot use etcd: an error, not a run.
    let (code, out) = finish(spawn(
        &path,
        &[
            "--etcd",
            &etcd.url,
            "--etcd-cacert",
            ca_pem.to_str().unwrap(),
            "--etcd-wait",
            "2s",
        ],
    ));
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(seen.lock().unwrap().len(), 8);
}

/// No shared volume: each segment puts its result in etcd, and a merge started before them
/// waits for all and merges them (then removes them).
#[test]
fn segments_publish_results_to_etcd_and_the_merge_waits_for_them() {
    let Some(etcd) = etcd("published") else {
        return;
    };
    let d = tmp("published");
    let (server, seen) = target(Duration::from_millis(1));
    let path = d.join("s.yaml");
    std::fs::write(
        &path,
        scenario(server.addr.port(), "127.0.97.0/29", 6, 2, "per_user", ""),
    )
    .unwrap();
    let merged = d.join("merged.json");
    let merge = Command::new(BIN)
        .args([
            "merge", "--etcd", &etcd.url, "--run-id", "r-42", "--wait", "60s", "--json",
        ])
        .arg(&merged)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let runs: Vec<Child> = ["0/2", "1/2"]
        .iter()
        .map(|seg| {
            spawn(
                &path,
                &[
                    "--segment",
                    seg,
                    "--etcd",
                    &etcd.url,
                    "--run-id",
                    "r-42",
                    "--publish-result",
                ],
            )
        })
        .collect();
    for c in runs {
        let (code, out) = finish(c);
        assert_eq!(code, Some(0), "{out}");
    }
    let (code, out) = finish(merge);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(v["totals"]["ok"], 12, "{v}");
    assert_eq!(seen.lock().unwrap().len(), 12);
    // The results are gone from etcd once merged; a second merge finds none.
    let out = Command::new(BIN)
        .args([
            "merge", "--etcd", &etcd.url, "--run-id", "r-42", "--wait", "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With etcd and a run id, a threshold with `abort_on_fail` that one segment crosses stops
/// every segment of the run (the others' shares cross nothing).
#[test]
fn an_abort_threshold_stops_every_segment_through_etcd() {
    let Some(etcd) = etcd("abort") else { return };
    let d = tmp("abort");
    // Odd users (segment 0 of 2) fail; even ones (segment 1) succeed.
    let server = serve("127.0.0.1:0", None, |r| {
        let user: u32 = r.header("x-user").and_then(|u| u.parse().ok()).unwrap_or(0);
        if user % 2 == 1 {
            Reply::status(500, &[])
        } else {
            Reply::ok("ok")
        }
    });
    let text = scenario(
        server.addr.port(),
        "127.0.101.0/29",
        4,
        0,
        "per_user",
        ", think_time: 50ms, duration: 60s",
    ) + "thresholds:\n  http_req_failed: [ { threshold: \"rate<0.5\", abort_on_fail: true } ]\n";
    let path = d.join("s.yaml");
    std::fs::write(&path, text).unwrap();
    let started = Instant::now();
    let runs: Vec<Child> = ["0/2", "1/2"]
        .iter()
        .map(|seg| {
            spawn(
                &path,
                &["--segment", seg, "--etcd", &etcd.url, "--run-id", "abort-1"],
            )
        })
        .collect();
    let outs: Vec<(Option<i32>, String)> = runs.into_iter().map(finish).collect();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    for (code, out) in &outs {
        assert_eq!(*code, Some(99), "{out}");
    }
    assert!(outs[1].1.contains("(in segment 0/2)"), "{}", outs[1].1);
}
