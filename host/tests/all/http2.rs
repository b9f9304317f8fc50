//! HTTP/2 against nginx and hypercorn, over TLS chosen by ALPN (`http_version: "2"` or
//! `auto`) and over plain TCP with prior knowledge (h2c, `"2"`): each user's requests on one connection of its own, from its pool address; the
//! report's counts equal the servers' logs; bodies both ways past the flow-control windows.
//!
//! `.ci/run` installs nginx and hypercorn; where one is missing the tests say so and pass,
//! unless REQUIRE_NGINX / REQUIRE_HYPERCORN are set (as in CI).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{in_pool, pool_scenario, report, succeeded, tmp};
use compose::tls::pki::{Ca, Validity};

fn scenario(net: u8, users: u32, iterations: u32, actions: &str, nodes: &str) -> String {
    pool_scenario(net, users, iterations, "", actions, nodes)
}

/// The same, trusting `ca.pem` next to it.
fn tls_scenario(net: u8, users: u32, iterations: u32, actions: &str, nodes: &str) -> String {
    pool_scenario(
        net,
        users,
        iterations,
        "tls: { ca_file: ca.pem }",
        actions,
        nodes,
    )
}
use integration_tests::nginx::{self, Nginx};
use serde_json::Value;

#[test]
fn users_speak_h2c_to_nginx_on_one_connection_each() {
    let Some(bin) = nginx::binary_or_skip() else {
        return;
    };
    let d = tmp("h2-nginx");
    std::fs::write(d.join("big.bin"), vec![7u8; 3_000_000]).unwrap();
    let http = "log_format h2 '$remote_addr $server_protocol $connection $request_method $request_uri $status $body_bytes_sent';\n    access_log {dir}/logs/access.log h2;";
    let server = format!(
        "server {{ listen 127.0.0.1:{{port}} http2; location / {{ return 200 \"hello h2\\n\"; }} location /big {{ alias {}; }} }}",
        d.join("big.bin").display()
    );
    let ng = Nginx::start_server(&bin, "h2c", http, &server).unwrap();
    let actions = format!(
        "    - {{ id: get, call: get, with: {{ url: \"http://127.0.0.1:{p}/a?b=1\", http_version: \"2\" }}, checks: [ {{ body_contains: hello }} ] }}\n    - {{ id: big, call: get, with: {{ url: \"http://127.0.0.1:{p}/big\", http_version: \"2\" }} }}",
        p = ng.port
    );
    let nodes = "    - { id: a, type: action, action: get, edges: [ { to: b } ] }\n    - { id: b, type: action, action: big, edges: [ { to: end } ] }";
    let (out, r) = report(&d, &scenario(160, 3, 4, &actions, nodes));
    succeeded(&out, &r);
    assert_eq!(r["totals"]["requests"], 24, "{r}");
    assert_eq!(r["totals"]["failed"], 0, "{r}");
    assert_eq!(r["checks"][0]["passes"], 12, "{r}");
    assert!(
        r["by_action"]["big"]["bytes_received"].as_u64().unwrap() >= 12 * 3_000_000,
        "{r}"
    );
    let log = std::fs::read_to_string(ng.dir.join("logs/access.log")).unwrap();
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 24, "{log}");
    // Every request over HTTP/2 from the pool; each source on one connection.
    let mut conns: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for l in &lines {
        assert!(
            in_pool(l[0], 160) && l[1] == "HTTP/2.0" && l[5] == "200",
            "{l:?}"
        );
        conns.entry(l[0]).or_default().insert(l[2]);
    }
    assert_eq!(conns.len(), 3, "{conns:?}");
    assert!(conns.values().all(|c| c.len() == 1), "{conns:?}");
    assert!(lines.iter().any(|l| l[4] == "/a?b=1"), "{log}");
}

/// An ASGI app: logs each request (source, port, HTTP version, method, body length) and
/// answers it as JSON.
const APP: &str = r#"
import json, os
LOG = os.environ["H2_LOG"]
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    n = 0
    while True:
        m = await receive()
        n += len(m.get("body", b""))
        if not m.get("more_body"):
            break
    rec = {"src": scope["client"][0], "port": scope["client"][1], "v": scope["http_version"],
           "method": scope["method"], "path": scope["path"], "len": n}
    with open(LOG, "a") as f:
        f.write(json.dumps(rec) + "\n")
    out = json.dumps(rec).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"set-cookie", b"s=1")]})
    await send({"type": "http.response.body", "body": out})
"#;

struct Hypercorn(Child);

impl Drop for Hypercorn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hypercorn(dir: &Path, extra: &[&str]) -> Option<(Hypercorn, u16)> {
    // `hypercorn --version` is not a flag of it: the module is looked for.
    let installed = Command::new("python3")
        .args(["-c", "import hypercorn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        assert!(
            std::env::var("REQUIRE_HYPERCORN").is_err(),
            "REQUIRE_HYPERCORN is set but hypercorn is not installed"
        );
        eprintln!("SKIPPED: hypercorn is not installed (pip install hypercorn)");
        return None;
    }
    std::fs::write(dir.join("h2app.py"), APP).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("hypercorn")
        .current_dir(dir)
        .env("H2_LOG", dir.join("seen.log"))
        .args(["--bind", &format!("127.0.0.1:{port}"), "h2app:app"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("hypercorn.err")).unwrap())
        .spawn()
        .unwrap();
    let h = Hypercorn(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "hypercorn did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((h, port))
}

#[test]
fn bodies_past_the_windows_reach_hypercorn_over_h2c() {
    let d = tmp("h2-hypercorn");
    let Some((_h, port)) = hypercorn(&d, &[]) else {
        return;
    };
    // A body in the scenario (under its 64 KiB template limit), and a file streamed as DATA
    // frames past every window, so the upload waits for the server's WINDOW_UPDATEs.
    let body = "x".repeat(60_000);
    std::fs::write(d.join("big.bin"), vec![9u8; 3 << 20]).unwrap();
    let actions = format!(
        "    - {{ id: up, call: post, with: {{ url: \"http://127.0.0.1:{port}/up\", http_version: \"2\", body: \"{body}\" }}, checks: [ {{ json: /len, equals: \"60000\" }}, {{ json: /v, equals: \"2\" }} ] }}\n    - {{ id: get, call: get, with: {{ url: \"http://127.0.0.1:{port}/get\", http_version: \"2\" }}, export: [ {{ name: v, type: json, pointer: /v }} ] }}\n    - {{ id: file, call: put, with: {{ url: \"http://127.0.0.1:{port}/file\", http_version: \"2\", body_file: big.bin }}, checks: [ {{ json: /len, equals: \"3145728\" }} ] }}"
    );
    let nodes = "    - { id: a, type: action, action: up, edges: [ { to: b } ] }\n    - { id: b, type: action, action: get, edges: [ { to: c } ] }\n    - { id: c, type: action, action: file, edges: [ { to: end } ] }";
    let (out, r) = report(&d, &scenario(161, 2, 3, &actions, nodes));
    succeeded(&out, &r);
    assert_eq!(r["totals"]["requests"], 18, "{r}");
    assert!(
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["fails"] == 0),
        "{}",
        r["checks"]
    );
    let seen: Vec<Value> = std::fs::read_to_string(d.join("seen.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(seen.len(), 18, "{seen:?}");
    let mut ports: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for s in &seen {
        let src = s["src"].as_str().unwrap();
        assert!(in_pool(src, 161) && s["v"] == "2", "{s}");
        match s["method"].as_str() {
            Some("POST") => assert_eq!(s["len"], 60_000, "{s}"),
            Some("PUT") => assert_eq!(s["len"], 3 << 20, "{s}"),
            _ => {}
        }
        ports
            .entry(src.to_string())
            .or_default()
            .insert(s["port"].as_u64().unwrap());
    }
    // One connection (one client port) a user.
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(ports.values().all(|p| p.len() == 1), "{ports:?}");
}

/// nginx over TLS with a certificate of `ca`; HTTP/2 offered by ALPN when `h2`.
fn nginx_tls(d: &Path, ca: &Ca, h2: bool) -> Option<Nginx> {
    let bin = nginx::binary_or_skip()?;
    let leaf = ca
        .server(&["localhost", "127.0.0.1"], Validity::Now)
        .unwrap();
    let (cert, key) = (
        d.join(format!("cert{h2}.pem")),
        d.join(format!("key{h2}.pem")),
    );
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let http = "log_format h2 '$remote_addr $server_protocol $connection $request_method $request_uri $status $body_bytes_sent';\n    access_log {dir}/logs/access.log h2;";
    let server = format!(
        "server {{ listen 127.0.0.1:{{port}} ssl{}; ssl_certificate {}; ssl_certificate_key {}; location / {{ return 200 \"hello tls\\n\"; }} }}",
        if h2 { " http2" } else { "" },
        cert.display(),
        key.display()
    );
    Some(Nginx::start_server(&bin, &format!("tls{h2}"), http, &server).unwrap())
}

fn log_lines(ng: &Nginx) -> Vec<Vec<String>> {
    let log = std::fs::read_to_string(ng.dir.join("logs/access.log")).unwrap_or_default();
    log.lines()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

#[test]
fn h2_over_tls_is_chosen_by_alpn_and_auto_falls_back_to_http1() {
    let d = tmp("h2-tls");
    let ca = Ca::new("h2 CA").unwrap();
    std::fs::write(d.join("ca.pem"), &ca.cert_pem).unwrap();
    let Some(h2) = nginx_tls(&d, &ca, true) else {
        return;
    };
    let Some(h1) = nginx_tls(&d, &ca, false) else {
        return;
    };
    let actions = format!(
        "    - {{ id: two, call: get, with: {{ url: \"https://localhost:{a}/two\", http_version: \"2\" }} }}\n    - {{ id: auto, call: get, with: {{ url: \"https://localhost:{a}/auto\", http_version: auto }} }}\n    - {{ id: old, call: get, with: {{ url: \"https://localhost:{b}/old\", http_version: auto }} }}",
        a = h2.port,
        b = h1.port
    );
    let nodes = "    - { id: a, type: action, action: two, edges: [ { to: b } ] }\n    - { id: b, type: action, action: auto, edges: [ { to: c } ] }\n    - { id: c, type: action, action: old, edges: [ { to: end } ] }";
    let text = tls_scenario(164, 2, 3, &actions, nodes);
    let (out, r) = report(&d, &text);
    succeeded(&out, &r);
    assert_eq!(r["totals"]["requests"], 18, "{r}");
    // The h2 server: every request over HTTP/2 (`2` and `auto` alike), one connection a user.
    let lines = log_lines(&h2);
    assert_eq!(lines.len(), 12, "{lines:?}");
    let mut conns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in &lines {
        assert!(
            in_pool(&l[0], 164) && l[1] == "HTTP/2.0" && l[5] == "200",
            "{l:?}"
        );
        conns.entry(l[0].clone()).or_default().insert(l[2].clone());
    }
    assert!(
        conns.len() == 2 && conns.values().all(|c| c.len() == 1),
        "{conns:?}"
    );
    // The server without h2: `auto` spoke HTTP/1.1 to it, kept alive.
    let lines = log_lines(&h1);
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l[1] == "HTTP/1.1" && in_pool(&l[0], 164)),
        "{lines:?}"
    );
    // `2` to a server that does not speak h2: nginx ends the handshake with
    // no_application_protocol (RFC 7301 section 3.2); a typed error, nothing sent over HTTP/1.1.
    let only = format!(
        "    - {{ id: two, call: get, with: {{ url: \"https://localhost:{}/x\", http_version: \"2\" }} }}",
        h1.port
    );
    let one = "    - { id: a, type: action, action: two, edges: [ { to: end } ] }";
    let text = tls_scenario(165, 1, 1, &only, one);
    let (_, r) = report(&d, &text);
    assert_eq!(r["errors"]["tls(handshake-failure)"], 1, "{r}");
    assert_eq!(log_lines(&h1).len(), 6);
}

#[test]
fn hypercorn_over_tls_takes_bodies_on_h2() {
    let d = tmp("h2-hypercorn-tls");
    let ca = Ca::new("h2 CA").unwrap();
    let leaf = ca
        .server(&["localhost", "127.0.0.1"], Validity::Now)
        .unwrap();
    std::fs::write(d.join("ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(d.join("cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(d.join("key.pem"), &leaf.key_pem).unwrap();
    let tls = ["--certfile", "cert.pem", "--keyfile", "key.pem"];
    let Some((_h, port)) = hypercorn(&d, &tls) else {
        return;
    };
    std::fs::write(d.join("up.bin"), vec![b'y'; 150_000]).unwrap();
    let actions = format!(
        "    - {{ id: up, call: put, with: {{ url: \"https://localhost:{port}/up\", http_version: auto, body_file: up.bin }}, checks: [ {{ json: /len, equals: \"150000\" }}, {{ json: /v, equals: \"2\" }} ] }}"
    );
    let nodes = "    - { id: a, type: action, action: up, edges: [ { to: end } ] }";
    let text = tls_scenario(166, 2, 2, &actions, nodes);
    let (out, r) = report(&d, &text);
    succeeded(&out, &r);
    assert!(
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["fails"] == 0 && c["passes"] == 4),
        "{}",
        r["checks"]
    );
    let seen = std::fs::read_to_string(d.join("seen.log")).unwrap();
    assert_eq!(seen.lines().count(), 4, "{seen}");
    assert!(
        seen.lines()
            .all(|l| l.contains("\"v\": \"2\"") && l.contains("127.0.166.")),
        "{seen}"
    );
}

/// A server of the test's own: reads the client's preface and first frames, then sends its
/// SETTINGS and `then`; what the client sent after, as (type, flags, stream, payload) frames.
/// A frame the client sent: (type, flags, stream, payload).
type Sent = (u8, u8, u32, Vec<u8>);

fn hostile_h2(then: Vec<u8>) -> (u16, std::thread::JoinHandle<Vec<Sent>>) {
    use std::io::{Read, Write};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else {
            return Vec::new();
        };
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        // The preface, SETTINGS, WINDOW_UPDATE and the request's HEADERS come at once or so.
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(n) = s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        let _ = s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let _ = s.write_all(&then);
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let mut frames = Vec::new();
        let mut at = 24;
        while at + 9 <= got.len() {
            let len = (usize::from(got[at]) << 16)
                | (usize::from(got[at + 1]) << 8)
                | usize::from(got[at + 2]);
            let stream = u32::from_be_bytes([got[at + 5], got[at + 6], got[at + 7], got[at + 8]]);
            let end = (at + 9 + len).min(got.len());
            frames.push((got[at + 3], got[at + 4], stream, got[at + 9..end].to_vec()));
            at = end;
        }
        frames
    });
    (port, h)
}

/// 300 interim answers (`:status 103` and a 1,000-byte `link` each) on stream 1, about 300 KB:
/// past the head limit, which the interim heads count against together.
fn endless_early_hints() -> Vec<u8> {
    // HPACK: `:status` by its static name (8), `103` as a literal; `link` as a new name.
    let mut block = vec![0x08, 3, b'1', b'0', b'3', 0x00, 4];
    block.extend_from_slice(b"link");
    block.extend_from_slice(&[0x7f, 0xE9, 0x06]); // 1,000 = 127 + 873
    block.extend(std::iter::repeat_n(b'a', 1000));
    let len = block.len();
    let mut frame = vec![
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        1,
        0x4,
        0,
        0,
        0,
        1,
    ];
    frame.extend_from_slice(&block);
    frame.repeat(300)
}

#[test]
fn a_server_breaking_http2_gets_a_goaway_and_a_typed_error() {
    let bad_hpack = vec![0, 0, 1, 1, 0x5, 0, 0, 0, 1, 0xbf]; // HEADERS: index 0x3f+..: past the end
    let reset = vec![0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 2]; // RST_STREAM INTERNAL_ERROR
    let huge = vec![0, 0x40, 1, 0, 0, 0, 0, 0, 1]; // a frame of 16,385 bytes: over the limit
    let cases: [(Vec<u8>, Option<u32>, &str); 4] = [
        (bad_hpack, Some(0x9), "protocol"),
        (reset, None, "protocol"),
        (huge, Some(0x6), "protocol"),
        (endless_early_hints(), None, "too-large"),
    ];
    for (i, (then, goaway, kind)) in cases.into_iter().enumerate() {
        let (port, server) = hostile_h2(then);
        let d = tmp(&format!("h2-hostile-{i}"));
        let actions = format!(
            "    - {{ id: get, call: get, with: {{ url: \"http://127.0.0.1:{port}/\", http_version: \"2\", timeout: 3s }} }}"
        );
        let nodes = "    - { id: a, type: action, action: get, edges: [ { to: end } ] }";
        let (_, r) = report(&d, &scenario(163, 1, 1, &actions, nodes));
        assert_eq!(r["errors"][kind], 1, "case {i}: {r}");
        let frames = server.join().unwrap();
        let sent_goaway = frames
            .iter()
            .find(|f| f.0 == 7)
            .map(|f| u32::from_be_bytes([f.3[4], f.3[5], f.3[6], f.3[7]]));
        assert_eq!(sent_goaway, goaway, "case {i}: {frames:?}");
        // The request went as HEADERS on stream 1 with END_STREAM and END_HEADERS.
        assert!(
            frames.iter().any(|f| f.0 == 1 && f.2 == 1 && f.1 == 5),
            "case {i}: {frames:?}"
        );
    }
}

struct Caddy(Child);

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Caddy serving `https://localhost:TLS` (a certificate of `ca`, h2 by ALPN) and
/// `http://127.0.0.1:PLAIN` (h2c), each logging its requests as JSON lines.
fn caddy(d: &Path, ca: &Ca) -> Option<(Caddy, u16, u16)> {
    let ok = Command::new("caddy")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("REQUIRE_CADDY").is_err(),
            "REQUIRE_CADDY is set but caddy is not installed"
        );
        eprintln!("SKIPPED: caddy is not installed (apt install caddy)");
        return None;
    }
    let leaf = ca
        .server(&["localhost", "127.0.0.1"], Validity::Now)
        .unwrap();
    std::fs::write(d.join("cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(d.join("key.pem"), &leaf.key_pem).unwrap();
    let free = || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (tls, plain) = (free(), free());
    let dir = d.display();
    let conf = format!(
        "{{\n admin off\n auto_https off\n servers {{\n  protocols h1 h2 h2c\n }}\n}}\n\
https://localhost:{tls} {{\n tls {dir}/cert.pem {dir}/key.pem\n log {{\n  output file {dir}/tls.log\n  format json\n }}\n respond \"hello {{http.request.proto}}\" 200\n}}\n\
http://127.0.0.1:{plain} {{\n log {{\n  output file {dir}/h2c.log\n  format json\n }}\n respond \"hello {{http.request.proto}}\" 200\n}}\n"
    );
    std::fs::write(d.join("Caddyfile"), conf).unwrap();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(d.join("Caddyfile"))
        .env("HOME", d)
        .env("XDG_DATA_HOME", d)
        .env("XDG_CONFIG_HOME", d)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("caddy.err")).unwrap())
        .spawn()
        .unwrap();
    let c = Caddy(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", tls)).is_err()
        || TcpStream::connect(("127.0.0.1", plain)).is_err()
    {
        assert!(Instant::now() < deadline, "caddy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((c, tls, plain))
}

#[test]
fn caddy_sees_h2_over_tls_and_h2c_from_each_users_address() {
    let d = tmp("h2-caddy");
    let ca = Ca::new("caddy CA").unwrap();
    std::fs::write(d.join("ca.pem"), &ca.cert_pem).unwrap();
    let Some((_c, tls, plain)) = caddy(&d, &ca) else {
        return;
    };
    let actions = format!(
        "    - {{ id: tls, call: get, with: {{ url: \"https://localhost:{tls}/t\", http_version: auto }}, checks: [ {{ body_contains: HTTP/2.0 }} ] }}\n    - {{ id: h2c, call: get, with: {{ url: \"http://127.0.0.1:{plain}/p\", http_version: \"2\" }}, checks: [ {{ body_contains: HTTP/2.0 }} ] }}"
    );
    let nodes = "    - { id: a, type: action, action: tls, edges: [ { to: b } ] }\n    - { id: b, type: action, action: h2c, edges: [ { to: end } ] }";
    let text = tls_scenario(167, 3, 2, &actions, nodes);
    let (out, r) = report(&d, &text);
    succeeded(&out, &r);
    assert!(
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passes"] == 6),
        "{}",
        r["checks"]
    );
    for (log, alpn) in [("tls.log", Some("h2")), ("h2c.log", None)] {
        let text = std::fs::read_to_string(d.join(log)).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(lines.len(), 6, "{log}: {text}");
        let mut ports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for l in &lines {
            let q = &l["request"];
            assert_eq!(q["proto"], "HTTP/2.0", "{l}");
            assert!(in_pool(q["remote_ip"].as_str().unwrap(), 167), "{l}");
            assert_eq!(q["tls"]["proto"].as_str(), alpn, "{l}");
            ports
                .entry(q["remote_ip"].as_str().unwrap().into())
                .or_default()
                .insert(q["remote_port"].as_str().unwrap().into());
        }
        assert!(
            ports.len() == 3 && ports.values().all(|p| p.len() == 1),
            "{log}: {ports:?}"
        );
    }
}
