//! `run --dashboard ADDR`: the live page (served by the binary, uPlot inline, nothing fetched
//! from elsewhere) that headless Chromium draws with no console errors, the server-sent
//! events a second with the run so far, and figures that end equal to the report's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

fn scenario(port: u16) -> String {
    format!(
        r#"
version: "1.0"
name: live-board
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.79.0/29"] }} ]
load:
  ramp_up: {{ phases: [ {{ spawn_users: 2, tenant_id: blue }}, {{ spawn_users: 1, tenant_id: red }} ] }}
  user_lifetime: {{ mode: loop, duration: 6s, think_time: 20ms }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://127.0.0.1:{port}/x" }} }} ]
workflows:
  nodes: [ {{ id: start, action: hit, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#
    )
}

fn get(addr: &str, path: &str) -> Option<(String, String)> {
    let mut c = TcpStream::connect(addr).ok()?;
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    c.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

/// The `data:` payloads of server-sent events, until `end`.
fn events(addr: &str) -> (Vec<Value>, bool) {
    let mut c = TcpStream::connect(addr).unwrap();
    write!(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut lines = BufReader::new(c).lines();
    let mut head = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        if l.is_empty() {
            break;
        }
        head.push(l);
    }
    assert!(
        head.iter().any(|h| h == "Content-Type: text/event-stream"),
        "{head:?}"
    );
    let mut out = Vec::new();
    let mut ended = false;
    for l in lines.map_while(Result::ok) {
        if l == "event: end" {
            ended = true;
        } else if let Some(d) = l.strip_prefix("data: ")
            && !ended
        {
            out.push(serde_json::from_str(d).unwrap());
        }
    }
    (out, ended)
}

#[test]
fn the_dashboard_streams_the_run_and_draws_it() {
    let (server, _) = recording_target();
    let dir = tmp("dashboard");
    let path = scenario_file(&dir, &scenario(server.addr.port()));
    let addr = format!("127.0.0.1:{}", free_port());
    let json = dir.join("r.json");
    let child = spawn_run(
        &path,
        &["--dashboard", &addr, "--json", json.to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        if let Some(p) = get(&addr, "/") {
            break p;
        }
        assert!(Instant::now() < deadline, "the dashboard did not come up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        page.0.starts_with("HTTP/1.1 200") && page.0.contains("text/html"),
        "{}",
        page.0
    );
    assert!(page.1.contains("showLive()") && page.1.contains("uPlot"));
    for banned in ["http://", "https://", "src="] {
        assert!(
            !page.1.contains(banned),
            "nothing fetched from elsewhere: {banned}"
        );
    }
    assert!(get(&addr, "/nope").unwrap().0.starts_with("HTTP/1.1 404"));
    let a = addr.clone();
    let stream = std::thread::spawn(move || events(&a));
    // Chromium draws the live page while the run goes.
    let drawn = chromium().map(|c| {
        let out = Command::new(c)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .args([
                "--disable-background-networking",
                "--disable-component-update",
            ])
            .args([
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=2500",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .args(["--dump-dom", &format!("http://{addr}/")])
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    });
    let (msgs, ended) = stream.join().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ended, "the stream says the run ended");
    assert!(
        msgs.len() >= 2,
        "one message, then a second at least: {}",
        msgs.len()
    );
    let points: usize = msgs
        .iter()
        .map(|m| m["points"].as_array().unwrap().len())
        .sum();
    assert!(points >= 5, "a point a second over 6 s: {points}");
    let last = msgs.last().unwrap();
    let p = &last["points"].as_array().unwrap();
    assert!(
        p.iter()
            .all(|p| p["p95"].is_number() && p["users"].is_number())
    );
    let tenants: Vec<&str> = last["tables"]["tenant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["blue", "red"]);
    let sources = last["tables"]["source"]["rows"].as_array().unwrap();
    assert_eq!(sources.len(), 3);
    assert!(
        sources
            .iter()
            .all(|r| r[0].as_str().unwrap().starts_with("127.0.79."))
    );
    // The last totals are the report's.
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        last["summary"]["requests"], r["totals"]["requests"],
        "{}",
        last["summary"]
    );
    assert_eq!(
        r["totals"]["requests"].as_u64(),
        Some(server.stats.requests() as u64),
        "the server's count"
    );
    if let Some((dom, log)) = drawn {
        assert!(
            !log.contains("CONSOLE") && !log.contains("Uncaught"),
            "console errors: {log}"
        );
        for want in [
            "live-board (live)",
            "by tenant",
            "by source address",
            "Requests per second by tenant",
            ">blue<",
            ">red<",
        ] {
            assert!(dom.contains(want), "{want}: {dom}");
        }
        assert!(dom.matches("<canvas").count() >= 7, "the charts: {dom}");
    }
}
