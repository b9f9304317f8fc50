//! Row 14: HTTP/2 keep-alive load on nginx (h2c, `http2` on a plain listener) through the
//! scheduler (64 users, one connection each) beside h2load (nghttp2) with 64 clients, one
//! stream in flight each, against the same nginx.

use std::path::Path;

use super::*;

const USERS: u32 = 64;

fn h2_nginx() -> Option<Nginx> {
    let bin = integration_tests::nginx::binary()?;
    let server = "server { listen 127.0.0.1:{port} http2 backlog=4096; http2_max_requests 1000000; location / { return 200 \"hello\\n\"; } }";
    Nginx::start_server(
        &bin,
        "h2row",
        "access_log off; keepalive_requests 1000000;",
        server,
    )
    .ok()
}

fn ours(scheduler: &str, dir: &Path, port: u16, secs: u64) -> f64 {
    let text = format!(
        "version: \"1.0\"\nname: h2load\nload:\n  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: {USERS} }} ] }}\n  user_lifetime: {{ mode: loop, duration: {secs}s }}\n\
actions:\n  actions: [ {{ id: get, call: get, with: {{ url: \"http://127.0.0.1:{port}/\", http_version: \"2\", discard_body: true, discard_headers: true }} }} ]\n\
workflows:\n  nodes: [ {{ id: start, action: get, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]\n"
    );
    let path = dir.join("h2.yaml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(scheduler);
    cmd.arg("run").arg(&path);
    let v = scheduler_report(cmd, &dir.join("h2.json"));
    assert_eq!(v["totals"]["failed"], 0, "{v}");
    report_rate(&v)
}

fn h2load(port: u16, secs: u64) -> f64 {
    let out = Command::new("h2load")
        .args(["-c", &USERS.to_string(), "-m", "1", "-D", &secs.to_string()])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "finished in 5.00s, 41234.40 req/s, ..."
    text.lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.trim_end_matches(" req/s").parse().ok())
        .unwrap_or(0.0)
}

pub fn http2(t: &mut Table, quick: bool, reps: usize) {
    let what = format!("HTTP/2 (h2c) keep-alive load on nginx, {USERS} users, one stream each");
    let installed = Command::new("h2load")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let (Some(scheduler), Some(ng), true) = (scheduler_binary(quick), h2_nginx(), installed) else {
        t.row(
            "14",
            &what,
            "-".into(),
            "needs a release build, nginx and h2load".into(),
            "-".into(),
            "",
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("bench-h2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secs = if quick { 1 } else { 5 };
    let (a, b) = ab(
        reps,
        || ours(&scheduler, &dir, ng.port, secs),
        || h2load(ng.port, secs),
    );
    t.row(
        "14",
        &what,
        fmt(&a, "req/s"),
        format!("h2load {}", fmt(&b, "req/s")),
        format!("{:.2}x h2load", a.median / b.median),
        "reported",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
