//! Uploads with `Expect: 100-continue` (RFC 9110 section 10.1.1): an interim `100 Continue`
//! that comes while the body is being written never ends the send. Checked server-side, in
//! `exec` and in `run`, against gunicorn (which answers `100 Continue` as soon as it reads
//! such a head) and a bare socket server that counts the bytes it gets.

use integration_tests::scratch::Scratch;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use integration_tests::gunicorn::Gunicorn;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_scheduler");
const TEN_MIB: u64 = 10 << 20;

/// A WSGI app that reads the whole body and logs `SOURCE BYTES` of each request.
const COUNTING_APP: &str = r#"
def app(environ, start_response):
    n = 0
    body_in = environ["wsgi.input"]
    while True:
        b = body_in.read(65536)
        if not b:
            break
        n += len(b)
    with open("{dir}/counts.log", "a") as f:
        f.write("%s %d\n" % (environ["REMOTE_ADDR"], n))
    out = str(n).encode()
    start_response("200 OK", [("Content-Length", str(len(out)))])
    return [out]
"#;

/// A scratch directory for the test `name` (removed after a pass, kept after a failure).
fn tmp(name: &str) -> Scratch {
    Scratch::new(&format!("upload-test-{name}"))
}

fn exec_upload(url: &str, file: &std::path::Path) -> (Output, Value) {
    let at = format!("@{}", file.display());
    let out = Command::new(BIN)
        .args(["exec", "-X", "POST", url, "--data-binary", &at])
        .args(["-H", "Expect: 100-continue", "--json"])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

fn counts(g: &Gunicorn) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(g.dir.join("counts.log")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let (ip, n) = l.split_once(' ').unwrap();
            (ip.to_string(), n.parse().unwrap())
        })
        .collect()
}

#[test]
fn exec_uploads_10_mib_with_100_continue_to_gunicorn() {
    let Some(g) = Gunicorn::start_or_skip("exec", COUNTING_APP) else {
        return;
    };
    let dir = tmp("exec");
    let file = dir.join("ten.bin");
    std::fs::write(&file, vec![b'z'; TEN_MIB as usize]).unwrap();
    let (out, v) = exec_upload(&format!("http://127.0.0.1:{}/up", g.port), &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(counts(&g), vec![("127.0.0.1".to_string(), TEN_MIB)]);
    assert_eq!(v["status"], 200, "{v}");
    let sent = v["bytes_sent"].as_u64().unwrap();
    assert!(sent > TEN_MIB && sent < TEN_MIB + 1024, "bytes_sent {sent}");
}

/// A bare server: the head, `100 Continue` at once, then the body read slowly and counted.
fn bare_continue_server() -> (u16, thread::JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1, "the head");
            head.push(b[0]);
        }
        let head_len = head.len() as u64;
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        thread::sleep(Duration::from_millis(300));
        let mut got = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        while got < TEN_MIB {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        thread::sleep(Duration::from_millis(200));
        head_len + got
    });
    (port, h)
}

#[test]
fn exec_bytes_sent_is_what_a_bare_server_got() {
    let (port, server) = bare_continue_server();
    let dir = tmp("bare");
    let file = dir.join("ten.bin");
    std::fs::write(&file, vec![b'q'; TEN_MIB as usize]).unwrap();
    let (out, v) = exec_upload(&format!("http://127.0.0.1:{port}/up"), &file);
    let got = server.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(
        v["bytes_sent"].as_u64().unwrap(),
        got,
        "bytes_sent is what the peer got"
    );
    assert!(got > TEN_MIB, "the whole body: {got}");
}

#[test]
fn run_uploads_with_100_continue_from_each_users_address() {
    let Some(g) = Gunicorn::start_or_skip("run", COUNTING_APP) else {
        return;
    };
    let dir = tmp("run");
    let body = "b".repeat(60_000);
    let scenario = format!(
        r#"
version: "1.0"
name: upload
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.77.0/29"] }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 4 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2 }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
actions:
  actions:
    - id: up
      call: post
      with: {{ url: "http://127.0.0.1:{port}/up", headers: {{ expect: 100-continue }}, body: "{body}" }}
workflows:
  nodes:
    - {{ id: a, type: action, action: up, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#,
        port = g.port
    );
    let path = dir.join("s.yaml");
    std::fs::write(&path, scenario).unwrap();
    let json = dir.join("r.json");
    let out = Command::new(BIN)
        .args([
            "run",
            path.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = counts(&g);
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert!(
        seen.iter()
            .all(|(ip, n)| ip.starts_with("127.0.77.") && *n == 60_000),
        "{seen:?}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["totals"]["requests"], 8, "{r}");
}
