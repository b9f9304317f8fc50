//! WebSocket actions (`call: websocket`) against servers of other projects: Python's
//! `websockets` and `aiohttp`, Node's `ws`, over ws:// and wss://. Each session must come
//! from its user's own pool address (the servers log the peer), and the report's sessions and
//! messages must equal what the servers logged. A server of the test's own breaks RFC 6455 on
//! purpose: the session fails with the right close code.
//!
//! `.ci/run` installs the servers; where one is missing the tests say so and pass, unless
//! REQUIRE_WS_SERVERS=1 (as in CI), where they fail.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::common::{BIN, in_pool, pool_scenario, report_with, succeeded, tmp};
use compose::tls::pki::{Ca, Validity};
use integration_tests::ws_servers::{Kind, WsServer};
use serde_json::Value;

/// `pool_scenario` of one action with id `chat`.
fn scenario(net: u8, users: u32, iterations: u32, action: &str, extra: &str) -> String {
    let node = "    - { id: a, type: action, action: chat, edges: [ { to: end } ] }";
    pool_scenario(net, users, iterations, extra, action, node)
}

/// Text, binary, ping, JSON with an export used in the next message, a closing handshake:
/// three messages each way.
fn echo_action(url: &str) -> String {
    format!(
        r#"    - id: chat
      call: websocket
      with:
        url: {url}
        subprotocols: [chat]
        steps:
          - send: "hello {{{{user.id}}}}"
          - receive: {{ equals: "hello {{{{user.id}}}}" }}
          - send_hex: "00ff10"
          - receive: {{ hex: "00ff10" }}
          - ping: abc
          - send: '{{"id": 7, "user": "{{{{user.id}}}}"}}'
          - receive: {{ json: {{ pointer: /id, equals: "7" }}, export: {{ name: id, pointer: /id }} }}
          - close: {{ code: 1000, reason: done }}"#
    )
}

/// Every session from the pool, three messages each, closed with 1000; the report's counts
/// equal the server's.
fn check_echo_run(server: &WsServer, r: &Value, net: u8, sessions: usize) {
    let seen = server.sessions(sessions);
    assert_eq!(seen.len(), sessions, "{seen:?}\n{}", server.errors());
    for s in &seen {
        assert!(in_pool(s["src"].as_str().unwrap(), net), "{s}");
        assert_eq!(s["msgs"], 3, "{s}");
        assert_eq!(s["code"], 1000, "{s}");
    }
    let ws = &r["websocket"];
    assert_eq!(ws["sessions"], sessions, "{r}");
    assert_eq!(ws["msgs_sent"], 3 * sessions, "{r}");
    assert_eq!(ws["msgs_received"], 3 * sessions, "{r}");
    assert_eq!(ws["ping"]["count"], sessions, "{r}");
    assert_eq!(r["totals"]["requests"], sessions, "{r}");
    assert_eq!(r["totals"]["failed"], 0, "{r}");
    // Each user's sessions all from the one address the report has for it.
    let users: Vec<&str> = r["by_source"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(users.iter().all(|u| in_pool(u, net)), "{users:?}");
}

#[test]
fn sessions_come_from_pool_addresses_against_three_servers() {
    for (i, kind) in [Kind::Websockets, Kind::Aiohttp, Kind::NodeWs]
        .into_iter()
        .enumerate()
    {
        let Some(server) = WsServer::start_or_skip(kind, &format!("echo{i}"), None) else {
            continue;
        };
        let d = tmp(&format!("ws-echo-{i}"));
        let net = 120 + i as u8;
        let url = format!("ws://127.0.0.1:{}/echo", server.port);
        let thresholds = "thresholds:\n  ws_connecting: [\"p(95)<5000\"]\n  ws_msgs_received: [\"count==24\"]\n  ws_sessions: [\"count==8\"]";
        let html = d.join("r.html");
        let (out, r) = report_with(
            &d,
            &scenario(net, 4, 2, &echo_action(&url), thresholds),
            &["--report", html.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{kind:?}: {}\n{r}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_echo_run(&server, &r, net, 8);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("websocket: 8 sessions"), "{stdout}");
        assert!(stdout.contains("chat #2 receive"), "{stdout}");
        // The HTML report's data carries the section its page draws; headless Chromium draws
        // it without console errors.
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(
            page.contains("\"websocket\":{") && page.contains("chat #2 receive"),
            "no WebSocket data in the page"
        );
        if let Some((dom, log)) = rendered(&html, &d).filter(|_| i == 0) {
            assert!(
                !log.contains("Uncaught") && !log.contains("CONSOLE"),
                "console errors: {log}"
            );
            assert!(
                dom.contains("<h2>WebSocket</h2>") && dom.contains("<td>chat #2 receive</td>"),
                "{dom}"
            );
        }
    }
}

/// The page's DOM after its script ran, and Chromium's log (none where Chromium is missing,
/// unless REQUIRE_CHROMIUM says it must be there).
fn rendered(page: &std::path::Path, dir: &std::path::Path) -> Option<(String, String)> {
    let chromium = crate::common::chromium()?;
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(["--dump-dom", &format!("file://{}", page.display())])
        .output()
        .unwrap();
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn a_threshold_on_sessions_fails_the_run() {
    let Some(server) = WsServer::start_or_skip(Kind::Websockets, "thr", None) else {
        return;
    };
    let d = tmp("ws-thr");
    let url = format!("ws://127.0.0.1:{}/echo", server.port);
    let (out, r) = report_with(
        &d,
        &scenario(
            126,
            1,
            1,
            &echo_action(&url),
            "thresholds:\n  ws_sessions: [\"count>100\"]",
        ),
        &[],
    );
    assert_eq!(out.status.code(), Some(99), "{r}");
}

#[test]
fn wss_sessions_check_the_servers_certificate() {
    let d = tmp("ws-tls");
    let ca = Ca::new("ws CA").unwrap();
    let leaf = ca
        .server(&["localhost", "127.0.0.1"], Validity::Now)
        .unwrap();
    std::fs::write(d.join("cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(d.join("key.pem"), &leaf.key_pem).unwrap();
    std::fs::write(d.join("ca.pem"), &ca.cert_pem).unwrap();
    let tls = Some((d.join("cert.pem"), d.join("key.pem")));
    let tls = tls.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    for (i, kind) in [Kind::Websockets, Kind::Aiohttp, Kind::NodeWs]
        .into_iter()
        .enumerate()
    {
        let Some(server) = WsServer::start_or_skip(kind, &format!("tls{i}"), tls) else {
            continue;
        };
        let url = format!("wss://localhost:{}/echo", server.port);
        let net = 130 + i as u8;
        let with_ca = scenario(net, 2, 1, &echo_action(&url), "tls: { ca_file: ca.pem }");
        let (out, r) = report_with(&d, &with_ca, &[]);
        assert!(
            out.status.success(),
            "{kind:?}: {}\n{r}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_echo_run(&server, &r, net, 2);
        assert!(
            r["tls"].to_string().contains("TLSv1.3") || r["tls"].to_string().contains("1.3"),
            "{}",
            r["tls"]
        );
        // Without the CA the server is not trusted: no session, a typed error.
        let (_, r) = report_with(&d, &scenario(net, 1, 1, &echo_action(&url), ""), &[]);
        assert_eq!(r["errors"]["tls(unknown-issuer)"], 1, "{kind:?}: {r}");
        assert_eq!(server.sessions(2).len(), 2);
    }
}

#[test]
fn kept_sessions_span_iterations_and_close_when_the_user_ends() {
    let Some(server) = WsServer::start_or_skip(Kind::Websockets, "kept", None) else {
        return;
    };
    let d = tmp("ws-kept");
    let action = format!(
        r#"    - id: chat
      call: websocket
      with:
        url: ws://127.0.0.1:{}/echo
        keep_open: true
        steps:
          - send: "iteration {{{{user.iteration}}}}"
          - receive: {{ contains: iteration }}"#,
        server.port
    );
    let (out, r) = report_with(&d, &scenario(140, 2, 3, &action, ""), &[]);
    succeeded(&out, &r);
    // One connection per user, carrying its three iterations, closed with 1001 at its end.
    let seen = server.sessions(2);
    assert_eq!(seen.len(), 2, "{seen:?}");
    for s in &seen {
        assert_eq!(
            (s["msgs"].as_u64(), s["code"].as_u64()),
            (Some(3), Some(1001)),
            "{s}"
        );
        assert!(in_pool(s["src"].as_str().unwrap(), 140), "{s}");
    }
    assert_eq!(r["websocket"]["sessions"], 2, "{r}");
    assert_eq!(r["websocket"]["msgs_received"], 6, "{r}");
    assert_eq!(r["totals"]["requests"], 6, "{r}");
}

#[test]
fn failures_are_typed_and_fragments_are_joined() {
    let Some(server) = WsServer::start_or_skip(Kind::Websockets, "fail", None) else {
        return;
    };
    let d = tmp("ws-fail");
    let port = server.port;
    let step = |path: &str, steps: &str| {
        format!(
            "    - id: {path}\n      call: websocket\n      with:\n        url: ws://127.0.0.1:{port}/{path}\n        steps: {steps}\n"
        )
    };
    let actions = [
        step("reject", "[ { send: x } ]"),
        step("close", "[ { send: x }, { receive: {}, timeout: 2s } ]"),
        step("silent", "[ { send: x }, { receive: {}, timeout: 300ms } ]"),
        step("echo", "[ { send: abc }, { receive: { equals: abd } } ]"),
        step(
            "frag",
            "[ { send: abcdefghi }, { receive: { equals: abcdefghi } } ]",
        ),
    ]
    .concat();
    let text = format!(
        r#"version: "1.0"
name: failures
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 1 }} ] }}
actions:
  actions:
{actions}
workflows:
  nodes:
    - {{ id: a, type: action, action: reject, edges: [ {{ to: b }} ] }}
    - {{ id: b, type: action, action: close, edges: [ {{ to: c }} ] }}
    - {{ id: c, type: action, action: silent, edges: [ {{ to: e }} ] }}
    - {{ id: e, type: action, action: echo, edges: [ {{ to: f }} ] }}
    - {{ id: f, type: action, action: frag, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#
    );
    let (_, r) = report_with(&d, &text, &[]);
    let errors = &r["errors"];
    assert_eq!(errors["ws-handshake(403)"], 1, "{r}");
    assert_eq!(errors["ws-closed(1011)"], 1, "{r}");
    assert_eq!(errors["ws-timeout"], 1, "{r}");
    assert_eq!(errors["ws-receive-mismatch"], 1, "{r}");
    assert_eq!(r["by_action"]["frag"]["ok"], 1, "{r}");
    assert_eq!(r["by_action"]["reject"]["failed"], 1, "{r}");
    assert_eq!(r["websocket"]["connecting"]["failed"], 1, "{r}");
}

/// A server of the test's own: the handshake done right, then `frames` sent as they are; the
/// close code the client answers with.
fn hostile_server(frames: Vec<u8>) -> (u16, std::thread::JoinHandle<Option<u16>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .ok()?;
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).ok()? == 1 {
            head.push(b[0]);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))?
            .trim()
            .to_string();
        let accept =
            http_core::ws::handshake::base64(&http_core::ws::handshake::accept_digest(&key));
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        s.write_all(answer.as_bytes()).ok()?;
        s.write_all(&frames).ok()?;
        // The client's close: 2 head bytes, a 4-byte mask, then the masked code.
        let mut f = [0u8; 8];
        s.read_exact(&mut f).ok()?;
        (f[0] == 0x88).then(|| u16::from_be_bytes([f[6] ^ f[2], f[7] ^ f[3]]))
    });
    (port, h)
}

#[test]
fn a_server_breaking_the_protocol_fails_the_session_with_its_code() {
    let big = {
        let mut f = vec![0x82, 127];
        f.extend_from_slice(&(1u64 << 30).to_be_bytes());
        f
    };
    let cases: [(Vec<u8>, &str, u16); 4] = [
        (vec![0x81, 0x82, 1, 2, 3, 4, 0, 0], "ws-protocol", 1002), // masked by the server
        (vec![0x81, 0x02, 0xc3, 0x28], "ws-protocol", 1007),       // not UTF-8
        (vec![0x89, 0x7e, 0x00, 0x7e], "ws-protocol", 1002),       // a ping over 125 bytes
        (big, "ws-too-large", 1009),
    ];
    for (i, (frames, kind, code)) in cases.into_iter().enumerate() {
        let (port, server) = hostile_server(frames);
        let d = tmp(&format!("ws-hostile-{i}"));
        let action = format!(
            "    - id: chat\n      call: websocket\n      with:\n        url: ws://127.0.0.1:{port}/\n        max_message: 1048576\n        steps: [ {{ receive: {{}}, timeout: 5s }} ]"
        );
        let (_, r) = report_with(&d, &scenario(150, 1, 1, &action, ""), &[]);
        assert_eq!(r["errors"][kind], 1, "case {i}: {r}");
        assert_eq!(server.join().unwrap(), Some(code), "case {i}");
    }
}

#[test]
fn validate_names_each_bad_step() {
    let d = tmp("ws-validate");
    let action = r#"    - id: chat
      call: websocket
      with:
        url: http://127.0.0.1:1/
        steps:
          - { send: a, receive: {} }
          - { close: 999 }
          - { send: a, timeout: 1s }
          - { shout: a }
          - { receive: { json: { pointer: id } } }
      checks: [ { status: 101 }, { body_contains: x } ]
      export: [ { name: b, type: content } ]"#;
    let path = d.join("s.yaml");
    std::fs::write(&path, scenario(151, 1, 1, action, "")).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["validate", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for want in [
        "actions.actions[0].with.url",
        "actions.actions[0].with.steps[0]: give exactly one of",
        "actions.actions[0].with.steps[1].close",
        "actions.actions[0].with.steps[2].timeout",
        "actions.actions[0].with.steps[3].shout",
        "actions.actions[0].with.steps[4].receive.json.pointer",
        "actions.actions[0].checks[1]: a WebSocket action takes status, header and duration checks",
        "actions.actions[0].export[0].type: a WebSocket action exports its handshake's",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
}

/// Two segments' result files merge into the sums of their WebSocket figures, and the merged
/// metrics carry them (parsed by Prometheus's own Python parser where it is installed).
#[test]
fn segments_merge_their_websocket_figures_into_the_metrics() {
    let Some(server) = WsServer::start_or_skip(Kind::Websockets, "merge", None) else {
        return;
    };
    let d = tmp("ws-merge");
    let url = format!("ws://127.0.0.1:{}/echo", server.port);
    let path = d.join("s.yaml");
    std::fs::write(&path, scenario(170, 4, 1, &echo_action(&url), "")).unwrap();
    for i in 0..2 {
        let result = d.join(format!("r{i}.json"));
        let out = std::process::Command::new(BIN)
            .args([
                "run",
                path.to_str().unwrap(),
                "--segment",
                &format!("{i}/2"),
                "--result",
                result.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (json, prom) = (d.join("m.json"), d.join("m.prom"));
    let out = std::process::Command::new(BIN)
        .args([
            "merge",
            d.join("r0.json").to_str().unwrap(),
            d.join("r1.json").to_str().unwrap(),
        ])
        .args([
            "--json",
            json.to_str().unwrap(),
            "--metrics",
            prom.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["websocket"]["sessions"], 4, "{r}");
    assert_eq!(r["websocket"]["msgs_received"], 12, "{r}");
    assert_eq!(
        r["websocket"]["steps"]["chat #2 receive"]["count"], 4,
        "{r}"
    );
    assert_eq!(server.sessions(4).len(), 4);
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("scheduler_ws_sessions_total 4"), "{text}");
    assert!(
        text.contains("scheduler_ws_messages_received_total 12"),
        "{text}"
    );
    assert!(
        text.contains("scheduler_ws_connecting_seconds_count 4"),
        "{text}"
    );
    let parsed = std::process::Command::new("python3")
        .args(["-c", "import sys; from prometheus_client.parser import text_string_to_metric_families as f; print(sum(1 for _ in f(open(sys.argv[1]).read())))"])
        .arg(&prom)
        .output();
    match parsed {
        Ok(o) if o.status.success() => assert!(
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u32>()
                .unwrap()
                > 4
        ),
        _ => assert!(
            std::env::var_os("REQUIRE_PROMETHEUS_CLIENT").is_none(),
            "prometheus_client is required"
        ),
    }
}
