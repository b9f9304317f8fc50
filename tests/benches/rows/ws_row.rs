//! Row 13: WebSocket echo round trips on one session, through the scheduler (a user's
//! instance, the socket component, the host) beside a native tungstenite client, against the
//! same native tungstenite echo server.

use std::path::Path;
use std::time::Instant;

use super::*;

/// Round trips per action: the steps of one action, so the per-action work is spread thin.
const PAIRS: usize = 100;

/// A tungstenite echo server; each session on a thread of its own.
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let _ = s.set_nodelay(true);
            thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(s) else {
                    return;
                };
                while let Ok(m) = ws.read() {
                    if (m.is_text() || m.is_binary()) && ws.send(m).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Round trips a second of the native client: `n` text messages, each waited for.
fn native(port: u16, n: usize) -> f64 {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let url = format!("ws://127.0.0.1:{port}/");
    let (mut ws, _) = tungstenite::client(url.as_str(), s).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        ws.send(tungstenite::Message::text("hello")).unwrap();
        let m = ws.read().unwrap();
        assert_eq!(m.to_text().unwrap(), "hello");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = ws.close(None);
    rate
}

/// Round trips a second through the scheduler: one user keeping its session open across
/// `n / PAIRS` iterations of one action of `PAIRS` send/receive pairs, timed by the report
/// (the actions' own time, the session's opening included).
fn ours(scheduler: &str, dir: &Path, port: u16, n: usize) -> f64 {
    let steps = "          - send: hello\n          - receive: { equals: hello }\n".repeat(PAIRS);
    let text = format!(
        "version: \"1.0\"\nname: ws-bench\nload:\n  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 1 }} ] }}\n  user_lifetime: {{ mode: loop, iterations: {} }}\nactions:\n  actions:\n    - id: chat\n      call: websocket\n      with:\n        url: ws://127.0.0.1:{port}/\n        keep_open: true\n        steps:\n{steps}workflows:\n  nodes:\n    - {{ id: a, type: action, action: chat, edges: [ {{ to: end }} ] }}\n    - {{ id: end, type: end }}\n",
        (n / PAIRS).max(1)
    );
    let path = dir.join("ws.yaml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(scheduler);
    cmd.arg("run").arg(&path);
    let v = scheduler_report(cmd, &dir.join("ws.json"));
    let chat = &v["by_action"]["chat"];
    assert_eq!(chat["failed"], 0, "{v}");
    let busy_s = chat["mean_ms"].as_f64().unwrap() * chat["requests"].as_f64().unwrap() / 1000.0;
    let trips = v["websocket"]["msgs_received"].as_f64().unwrap();
    trips / busy_s
}

pub fn websocket(t: &mut Table, quick: bool, reps: usize) {
    let Some(scheduler) = scheduler_binary(quick) else {
        t.row(
            "13",
            "WebSocket echo round trips",
            "-".into(),
            "no release build".into(),
            "-".into(),
            "",
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("bench-ws-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = echo_server();
    let n = if quick { 2_000 } else { 20_000 };
    let (a, b) = ab(reps, || ours(&scheduler, &dir, port, n), || native(port, n));
    t.row(
        "13",
        &format!("WebSocket echo round trips/s, one session ({n}), vs native tungstenite"),
        fmt(&a, "/s"),
        fmt(&b, "/s"),
        format!("{:.2}x", a.median / b.median),
        "reported",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
