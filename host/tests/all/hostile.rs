//! Hostile inputs and hostile targets that the size limits do not stop: the policy holds
//! before any name lookup, a state dir cannot lend a scenario another scenario's addresses,
//! expansion and node bombs are refused quickly, and a slow scraper costs only itself.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::http_server::{Reply, serve};

use crate::common::*;

/// A DNS server of the test's own on 127.0.0.153:53: it answers `allowed.test` with
/// 127.0.0.1 and every other name with NXDOMAIN, and records every name it was asked.
fn dns_server() -> Option<Arc<Mutex<Vec<String>>>> {
    let sock = UdpSocket::bind("127.0.0.153:53").ok()?;
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let a = asked.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            let (name, end) = qname(q);
            a.lock().unwrap().push(name.clone());
            let qtype = u16::from_be_bytes([q[end], q[end + 1]]);
            let _ = sock.send_to(&answer(q, end + 4, &name, qtype), from);
        }
    });
    Some(asked)
}

/// The question's name and where its type begins.
fn qname(q: &[u8]) -> (String, usize) {
    let mut at = 12;
    let mut labels = Vec::new();
    while at < q.len() && q[at] != 0 {
        let len = q[at] as usize;
        labels.push(String::from_utf8_lossy(&q[at + 1..at + 1 + len]).into_owned());
        at += 1 + len;
    }
    (labels.join("."), at + 1)
}

fn answer(q: &[u8], question_end: usize, name: &str, qtype: u16) -> Vec<u8> {
    let mut r = q[..question_end].to_vec();
    r[2] = 0x81; // a response, recursion desired
    let known = name == "allowed.test";
    r[3] = if known { 0x80 } else { 0x83 }; // NXDOMAIN for every other name
    let a_record = known && qtype == 1;
    r[6..8].copy_from_slice(&u16::from(a_record).to_be_bytes());
    r[8..12].fill(0);
    if a_record {
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    r
}

/// A redirect to a name the scenario never names is refused before it is looked up: the
/// resolver (the test's own) never hears the name, and the request ends `access-denied`.
#[test]
fn a_redirect_name_outside_the_policy_is_never_looked_up() {
    let runnable = Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let asked = if runnable { dns_server() } else { None };
    let Some(asked) = asked else {
        assert!(
            std::env::var("REQUIRE_NAMESPACES").is_err(),
            "REQUIRE_NAMESPACES is set but a mount namespace or port 53 is not available"
        );
        eprintln!("SKIPPED: needs unshare --mount and port 53 on loopback (root)");
        return;
    };
    let target = serve("127.0.0.1:0", None, |r| {
        let port = r
            .header("host")
            .and_then(|h| h.rsplit(':').next())
            .unwrap_or("1");
        let to = format!("http://exfil-token.example.invalid:{port}/x");
        Reply::status(302, &[("location", to.as_str())])
    });
    let dir = tmp("dns-policy");
    let conf = dir.join("resolv.conf");
    std::fs::write(
        &conf,
        "nameserver 127.0.0.153\noptions attempts:1 timeout:1\n",
    )
    .unwrap();
    let s = format!(
        r#"
version: "1.0"
name: dns
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 1 }} ] }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://allowed.test:{}/start" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        target.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let json = dir.join("r.json");
    let script = format!(
        "mount --bind {} /etc/resolv.conf && exec {BIN} run {} --json {}",
        conf.display(),
        path.display(),
        json.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
            .unwrap_or_default();
    let names = asked.lock().unwrap().clone();
    assert!(
        names.iter().any(|n| n == "allowed.test"),
        "our resolver was used: {names:?} {err}"
    );
    assert!(
        !names.iter().any(|n| n.contains("exfil")),
        "the name left: {names:?}"
    );
    assert_eq!(target.stats.requests(), 1, "{r}");
    assert_eq!(r["errors"]["access-denied"], 1, "{r} {err}");
}

/// A state dir written by a scenario whose pool had other addresses is refused with a clear
/// message, before anything is sent from the old addresses.
#[test]
fn a_state_dir_cannot_lend_old_addresses() {
    let (server, log) = recording_target();
    let dir = tmp("state-ranges");
    let state = dir.join("state");
    let scenario_of = |cidr: &str| {
        format!(
            r#"
version: "1.0"
name: state
workbook:
  ip_pools: [ {{ id: p, ranges: ["{cidr}"] }} ]
load:
  ramp_up: {{ phases: [ {{ spawn_users: 3 }} ] }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
            server.addr.port()
        )
    };
    let path = scenario_file(&dir, &scenario_of("127.0.97.0/29"));
    let st = state.to_str().unwrap();
    let out = run(&["run", path.to_str().unwrap(), "--state-dir", st]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    log.lock().unwrap().clear();
    let path = scenario_file(&dir, &scenario_of("127.0.98.0/29"));
    let out = run(&["run", path.to_str().unwrap(), "--state-dir", st]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("pool p")
            && err.contains("127.0.97.0-127.0.97.7")
            && err.contains("127.0.98.0-127.0.98.7"),
        "{err}"
    );
    assert!(log.lock().unwrap().is_empty(), "nothing was sent");
}

/// Properties whose references multiply (34 KB of YAML, gigabytes expanded) and the longest
/// chain of nodes that fits in the size limit are refused quickly, with their paths.
#[test]
fn bombs_are_refused_quickly() {
    let dir = tmp("bombs");
    let mut props = String::from("        a: \"") + &"x".repeat(100) + "\"\n";
    for (p, q) in [("b", "a"), ("c", "b"), ("d", "c")] {
        props += &format!(
            "        {p}: \"{}\"\n",
            format!("{{{{r.{q}}}}}").repeat(1000)
        );
    }
    let bomb = format!(
        "version: \"1.0\"\nname: bomb\nworkbook:\n  resources:\n    - id: r\n      properties:\n{props}load: {{ ramp_up: {{ phases: [ {{ spawn_users: 1 }} ] }} }}\nactions:\n  actions: [ {{ id: a, call: get, with: {{ url: \"http://127.0.0.1:1/{{{{r.d}}}}\" }} }} ]\nworkflows:\n  nodes: [ {{ id: n, action: a }} ]\n"
    );
    let start = Instant::now();
    let out = run(&["validate", scenario_file(&dir, &bomb).to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("workbook.resources[0].properties.b: expands to more than"),
        "{err}"
    );
    // Hang and blow-up guards, not timings: about 5 s for the test on a quiet machine with
    // debug builds, a minute or more when expansion or the graph checks were quadratic.
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );

    let mut chain = String::from(
        "version: \"1.0\"\nname: chain\nload: { ramp_up: { phases: [ { spawn_users: 1 } ] } }\nactions:\n  actions: [ { id: a, call: get, with: { url: \"http://127.0.0.1:1/\" } } ]\nworkflows:\n  nodes:\n",
    );
    let mut i = 0;
    while chain.len() < 4_150_000 {
        chain += &format!("  - {{id: n{i}, action: a, edges: [{{to: n{}}}]}}\n", i + 1);
        i += 1;
    }
    chain += &format!("  - {{id: n{i}, type: end}}\n");
    let start = Instant::now();
    let out = run(&["validate", scenario_file(&dir, &chain).to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("workflows.nodes:") && err.contains("at most 10000"),
        "{err}"
    );
    // Linear: debug builds included, far from the quadratic minute.
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

/// One client sending a byte every 1.5 s holds only its own connection to --metrics-listen:
/// other scrapes are answered at once, and the slow one is cut at its head's deadline.
#[test]
fn a_slow_scraper_costs_only_itself() {
    let (server, _log) = recording_target();
    let dir = tmp("metrics-slow");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = format!(
        r#"
version: "1.0"
name: scrape
load:
  ramp_up: {{ phases: [ {{ spawn_users: 2 }} ] }}
  user_lifetime: {{ mode: loop, duration: 8s, think_time: 100ms }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["run", path.to_str().unwrap(), "--metrics-listen", &listen])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let connect = || loop {
        if let Ok(c) = TcpStream::connect(&listen) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut slow = connect();
    let slow_start = Instant::now();
    let dripper = std::thread::spawn(move || {
        for b in b"GET /metrics HTTP/1.1\r\n" {
            if slow.write_all(&[*b]).is_err() {
                return slow_start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(1500));
        }
        slow_start.elapsed()
    });
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let t = Instant::now();
        let mut c = connect();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        let _ = c.read_to_string(&mut body);
        assert!(body.contains("scheduler_users_spawned_total"), "{body}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    let cut_at = dripper.join().unwrap();
    assert!(
        cut_at < Duration::from_secs(8),
        "the slow client was cut at {cut_at:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
