//! `scheduler serve`: the http-server component's instances, each on its own address, against
//! real clients (curl, Python's http.client and requests, wrk, the project's own executor
//! through `exec`) and hostile ones (malformed heads, request smuggling shapes, a slowloris
//! client), with the counts each instance prints checked against what was sent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn servers(port: u16, pool: &str, extra: &str) -> String {
    format!(
        r#"
workbook:
  ip_pools: [ {{ id: backends, ranges: ["{pool}"] }} ]
servers:
  - id: api
    pool: backends
    instances: 2
    port: {port}
    routes:
      - {{ method: GET, path: "/users/{{id}}", body: '{{"id": "{{{{path.id}}}}", "q": "{{{{query.q}}}}", "at": "{{{{server.address}}}}"}}', headers: {{ Content-Type: application/json }} }}
      - {{ method: POST, path: /echo, echo: true }}
      - {{ path: "/files/*", body: "rest={{{{path.rest}}}}" }}
      - {{ path: /slow, delay_ms: 400 }}
    middleware:
      - {{ access_log: true }}
      - {{ headers: {{ X-Served-By: "{{{{server.id}}}}" }} }}
    limits: {{ head_timeout_ms: 1000, max_body: 100000 }}
{extra}
"#
    )
}

/// `serve` started, and the URLs it printed (in instance order).
fn start(dir: &std::path::Path, text: &str, secs: u32) -> (Child, Vec<String>) {
    let path = scenario_file(dir, text);
    let mut child = Command::new(BIN)
        .args([
            "serve",
            path.to_str().unwrap(),
            "--duration",
            &format!("{secs}s"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 256];
    while seen.lines().filter(|l| l.contains(" http://")).count() < 2 {
        assert!(Instant::now() < deadline, "no URLs: {seen}");
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "serve ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    child.stdout = Some(out);
    let mut urls: Vec<(String, String)> = seen
        .lines()
        .filter_map(|l| l.split_once(" http://"))
        .map(|(n, u)| (n.to_string(), format!("http://{u}")))
        .collect();
    urls.sort();
    (child, urls.into_iter().map(|(_, u)| u).collect())
}

/// One raw exchange: `bytes` sent, everything read until the server closes or 5 s pass.
fn raw(addr: &str, bytes: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(bytes).unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://")
}

fn require(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty());
    if !ok {
        assert!(
            std::env::var_os("REQUIRE_CLIENTS").is_none(),
            "{tool} is required"
        );
        eprintln!("SKIPPED: {tool} is not installed");
    }
    ok
}

#[test]
fn instances_answer_real_clients_from_their_own_addresses() {
    let dir = tmp("serve-clients");
    let port = free_port();
    let (child, urls) = start(&dir, &servers(port, "127.0.91.0/30", ""), 8);
    assert_eq!(
        urls,
        [
            format!("http://127.0.91.0:{port}"),
            format!("http://127.0.91.1:{port}")
        ]
    );
    let a = host_port(&urls[0]).to_string();
    let mut sent = 0;
    // Pipelined on one connection: each in order, HEAD without a body, then close.
    let text = raw(
        &a,
        b"GET /users/7?q=a+b HTTP/1.1\r\nHost: x\r\n\r\nHEAD /users/8 HTTP/1.1\r\nHost: x\r\n\r\nGET /files/a/b.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    sent += 3;
    let parts: Vec<&str> = text.split("HTTP/1.1 200 OK").collect();
    assert_eq!(parts.len(), 4, "{text}");
    assert!(parts[1].contains(&format!(
        r#"{{"id": "7", "q": "a b", "at": "127.0.91.0:{port}"}}"#
    )));
    assert!(parts[1].contains("X-Served-By: api\r\n") && parts[1].contains("Date: "));
    assert!(
        parts[2].ends_with("\r\n\r\n"),
        "HEAD has no body: {:?}",
        parts[2]
    );
    assert!(parts[3].contains("Connection: close") && parts[3].ends_with("rest=a/b.css"));
    // Python's http.client: keep-alive, a chunked upload echoed, 404 and 405.
    let py = format!(
        r#"
import http.client
c = http.client.HTTPConnection("127.0.91.1", {port})
c.request("POST", "/echo", body=iter([b"he", b"llo"]), headers={{"Content-Type": "text/x"}}, encode_chunked=True)
r = c.getresponse(); b = r.read(); assert (r.status, b, r.getheader("Content-Type")) == (200, b"hello", "text/x"), (r.status, b)
c.request("GET", "/nope"); r = c.getresponse(); r.read(); assert r.status == 404
c.request("DELETE", "/users/1"); r = c.getresponse(); r.read(); assert r.status == 405 and r.getheader("Allow") == "GET"
import requests
s = requests.Session()
for i in range(5):
    r = s.get("http://127.0.91.1:{port}/users/%d" % i); assert r.json()["id"] == str(i), r.text
# A head in pieces with pauses, then a body of several reads' worth, echoed whole.
import socket, time
k = socket.create_connection(("127.0.91.1", {port}))
body = bytes(range(256)) * 350  # under the limits' max_body, over one 64 KiB read
head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
for part in (head[:5], head[5:30], head[30:], body[:70000], body[70000:]):
    k.sendall(part); time.sleep(0.05)
got = b""
while b"\r\n\r\n" not in got: got += k.recv(65536)
h, rest = got.split(b"\r\n\r\n", 1)
n = int([l.split(b":")[1] for l in h.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
while len(rest) < n: rest += k.recv(65536)
assert h.startswith(b"HTTP/1.1 200 ") and rest == body, (h, len(rest))
print("ok")
"#
    );
    let out = Command::new("python3").args(["-c", &py]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sent += 9;
    // curl, and the project's own executor.
    if require("curl") {
        let out = Command::new("curl")
            .args(["-s", "-d", "x=1", &format!("{}/echo", urls[0])])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"x=1");
        sent += 1;
    }
    let out = run(&[
        "exec",
        &format!("{}/users/99", urls[1]),
        "--bind-ip",
        "127.0.91.3",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(r#""id": "99""#),
        "{out:?}"
    );
    sent += 1;
    // wrk: keep-alive load, every answer a 200.
    let mut wrk_requests = 0;
    if require("wrk") {
        let out = Command::new("wrk")
            .args(["-t1", "-c4", "-d1s", &format!("{}/users/1", urls[0])])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("Non-2xx"), "{text}");
        wrk_requests = text
            .lines()
            .find(|l| l.contains("requests in"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap();
        assert!(wrk_requests > 50, "{text}");
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The access log names each client's address; the counts add up to what was sent.
    assert!(
        text.contains("api[1] 127.0.91.3:"),
        "the executor's source address: {text}"
    );
    let total: u64 = text
        .lines()
        .filter(|l| l.starts_with("api[") && l.contains(" http://"))
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    // wrk counts answers it got; the server may have answered a few more as wrk stopped.
    assert!(
        total >= sent + wrk_requests && total <= sent + wrk_requests + 8,
        "{total} vs {sent}+{wrk_requests}: {text}"
    );
}

#[test]
fn hostile_clients_are_refused_and_slow_ones_cut_off() {
    let dir = tmp("serve-hostile");
    let port = free_port();
    let (child, urls) = start(&dir, &servers(port, "127.0.92.0/30", ""), 8);
    let a = host_port(&urls[0]).to_string();
    let refused = |req: &[u8], status: &str| {
        let text = raw(&a, req);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}")),
            "{status}: {text}"
        );
        assert!(text.contains("Connection: close"), "{text}");
    };
    // Request smuggling shapes: the request is refused and the connection closed, so nothing
    // after it is read as a request.
    refused(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n", "400");
    refused(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        "400",
    );
    refused(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "501",
    );
    refused(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        "400",
    );
    // Malformed heads, a missing Host, an absolute target, limits.
    refused(b"GET /users/1 HTTP/1.1\r\nBad Header\r\n\r\n", "400");
    refused(b"GET /users/1 HTTP/1.1\r\n\r\n", "400");
    refused(b"\x00\x01\x02 / HTTP/1.1\r\n\r\n", "400");
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    refused(&big, "431");
    refused(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n",
        "413",
    );
    // A slowloris client: a byte every 200 ms never finishes its head; it gets 408 after
    // the 1 s limit, and another client is served meanwhile.
    let start = Instant::now();
    let mut slow = TcpStream::connect(&a).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut got = Vec::new();
    for b in b"GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa" {
        if slow.write_all(&[*b]).is_err() {
            break;
        }
        let served = raw(
            &a,
            b"GET /users/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
        let mut buf = [0u8; 512];
        if let Ok(n) = slow.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
            if n == 0 || got.ends_with(b"too long\n") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the slow client was not cut off"
        );
    }
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for status in ["400: 6", "408: 1", "413: 1", "431: 1", "501: 1"] {
        assert!(text.contains(status), "{status}: {text}");
    }
}

#[test]
fn bad_server_configs_are_problems() {
    let dir = tmp("serve-bad");
    let check = |extra: &str, replace: (&str, &str), want: &str| {
        let text = servers(1, "127.0.93.0/30", extra).replace(replace.0, replace.1);
        let path = scenario_file(&dir, &text);
        let out = run(&["serve", path.to_str().unwrap(), "--duration", "1s"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{want}: {err}");
    };
    check(
        "",
        ("instances: 2", "instances: 9"),
        "servers[0].instances: pool \"backends\" has 4 addresses, 9 instances asked for",
    );
    check("", ("path: /echo", "path: echo"), "routes[1].path");
    check(
        "",
        ("pool: backends", "pool: other"),
        "servers[0].pool: no pool \"other\"",
    );
    check(
        "",
        ("{ access_log: true }", "{ logs: true }"),
        "middleware[0]: expected access_log, headers or fault",
    );
    check(
        "  - { id: api, address: 127.0.93.9, port: 1 }",
        ("", ""),
        "duplicate server id \"api\"",
    );
}

/// `servers:` in a run: the instances listen before the users start and stop after them;
/// `{{api.url}}` takes each user to an instance in turn, and the report's counts per
/// instance are the users' requests.
#[test]
fn a_run_starts_its_servers_and_users_reach_them_in_turn() {
    let dir = tmp("serve-run");
    let port = free_port();
    let text = format!(
        r#"
version: "1.0"
name: with-servers
workbook:
  ip_pools:
    - {{ id: users, ranges: ["127.0.96.0/29"] }}
    - {{ id: backends, ranges: ["127.0.97.0/30"] }}
servers:
  - id: api
    pool: backends
    instances: 2
    port: {port}
    routes:
      - {{ method: GET, path: "/hello/{{name}}", body: "hi {{{{path.name}}}} from {{{{server.address}}}}" }}
load:
  ramp_up: {{ phases: [ {{ spawn_users: 4 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 3 }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: users }} }}
actions:
  actions:
    - id: hello
      call: get
      with: {{ url: "{{{{api.url}}}}/hello/u{{{{user.id}}}}" }}
      export: [ {{ name: said, type: content }} ]
      checks: [ {{ name: from-server, body_contains: "hi u" }} ]
workflows:
  nodes:
    - {{ id: a, action: hello, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#
    );
    let (out, r) = report(&dir, &text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["totals"]["requests"], 12, "{r}");
    assert_eq!(r["checks"][0]["passes"], 12, "{}", r["checks"]);
    let s = &r["servers"];
    for (i, name) in ["api[0]", "api[1]"].iter().enumerate() {
        assert_eq!(s[name]["url"], format!("http://127.0.97.{i}:{port}"), "{s}");
        assert_eq!(
            s[name]["requests"], 6,
            "users 1 and 3 on api[0], 2 and 4 on api[1]: {s}"
        );
        assert_eq!(s[name]["statuses"]["200"], 6);
    }
    // An undeclared server field is a problem; a template naming no server's field a warning.
    let bad = text.replace("{{api.url}}/hello", "{{api.nope}}/hello");
    let path = scenario_file(&dir, &bad);
    let out = run(&["validate", path.to_str().unwrap(), "--strict"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("\"api\" has no \"nope\" (it has: address, port, url)"),
        "{out:?}"
    );
}

/// Routes with a `dir`: files from a directory preopened read-only for each instance, by
/// extension, with Last-Modified and 304, one byte range (206, 416), index.html; nothing
/// outside the directory (`..` is 404, a symbolic link out of it 403).
#[test]
fn static_files_from_a_preopened_directory() {
    let dir = tmp("serve-static");
    std::fs::create_dir_all(dir.join("public/css")).unwrap();
    std::fs::write(dir.join("public/css/site.css"), "body { margin: 0 }\n").unwrap();
    std::fs::write(dir.join("public/index.html"), "<h1>home</h1>\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "outside\n").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("public/escape")).unwrap();
    let port = free_port();
    let text = format!(
        "workbook:\n  ip_pools: [ {{ id: b, ranges: [\"127.0.93.0/30\"] }} ]\nservers:\n  - {{ id: web, pool: b, instances: 2, port: {port}, routes: [ {{ method: GET, path: \"/static/*\", dir: public }} ] }}\n"
    );
    let (child, urls) = start(&dir, &text, 5);
    let a = host_port(&urls[0]).to_string();
    let get = |path: &str, extra: &str| {
        raw(
            &a,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    let css = get("/static/css/site.css", "");
    assert!(
        css.starts_with("HTTP/1.1 200") && css.contains("Content-Type: text/css"),
        "{css}"
    );
    assert!(css.ends_with("body { margin: 0 }\n"), "{css}");
    let modified = css
        .lines()
        .find_map(|l| l.strip_prefix("Last-Modified: "))
        .unwrap()
        .to_string();
    assert!(
        get(
            "/static/css/site.css",
            &format!("If-Modified-Since: {modified}\r\n")
        )
        .starts_with("HTTP/1.1 304")
    );
    let part = get("/static/css/site.css", "Range: bytes=0-3\r\n");
    assert!(
        part.starts_with("HTTP/1.1 206")
            && part.contains("Content-Range: bytes 0-3/19")
            && part.ends_with("body"),
        "{part}"
    );
    assert!(get("/static/css/site.css", "Range: bytes=99-\r\n").starts_with("HTTP/1.1 416"));
    assert!(get("/static/", "").ends_with("<h1>home</h1>\n"));
    assert!(get("/static/../secret.txt", "").starts_with("HTTP/1.1 404"));
    assert!(get("/static/%2e%2e/secret.txt", "").starts_with("HTTP/1.1 404"));
    assert!(get("/static/escape", "").starts_with("HTTP/1.1 403"));
    let head = raw(
        &a,
        b"HEAD /static/css/site.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        head.contains("Content-Length: 19") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A directory that is not there is a problem before anything listens.
    let path = scenario_file(&dir, &text.replace("dir: public", "dir: nowhere"));
    let out = run(&["serve", path.to_str().unwrap(), "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dir \"nowhere\""));
}

/// Without `--duration`, `serve` runs until SIGTERM (or Ctrl-C), then prints what each
/// instance answered and exits 0.
#[test]
fn serve_runs_until_sigterm() {
    let dir = tmp("serve-sigterm");
    let port = free_port();
    let path = scenario_file(&dir, &servers(port, "127.0.94.0/30", ""));
    let mut child = Command::new(BIN)
        .args(["serve", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let a = format!("127.0.94.0:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&a).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        raw(
            &a,
            b"GET /users/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .starts_with("HTTP/1.1 200")
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "still serving");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("api[0]") && l.contains(" 1 ") && l.contains("200: 1")),
        "{text}"
    );
}
