//! Helpers the scheduler's end-to-end tests share: temporary directories, running the binary,
//! and in-process targets on loopback that record what they saw.
#![allow(dead_code)]

use integration_tests::scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use integration_tests::http_server::{Reply, TestServer, serve};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_scheduler");

/// A scratch directory for the test `name` (removed after a pass, kept after a failure).
pub fn tmp(name: &str) -> Scratch {
    Scratch::new(&format!("scheduler-test-{name}"))
}

/// The scenario `text` as `dir/s.yaml`.
pub fn scenario_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("s.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run scheduler")
}

pub fn report(dir: &Path, scenario: &str) -> (Output, Value) {
    report_with(dir, scenario, &[])
}

/// `run` of `scenario` (as `dir/scenario.yaml`) with `extra` arguments: its output and its
/// JSON report (`Null` when none was written).
pub fn report_with(dir: &Path, scenario: &str, extra: &[&str]) -> (Output, Value) {
    report_in_env(dir, scenario, extra, &[])
}

/// `report_with`, the scheduler given `env` (the debug build's fault injection) as well.
pub fn report_in_env(
    dir: &Path,
    scenario: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Output, Value) {
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, scenario).unwrap();
    let json = dir.join("report.json");
    let _ = std::fs::remove_file(&json);
    let mut args = vec![
        "run",
        path.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = Command::new(BIN)
        .args(&args)
        .envs(env.iter().copied())
        .output()
        .expect("run scheduler");
    let v = std::fs::read_to_string(&json)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    (out, v)
}

/// The run went well: its exit code 0 (else its standard error and report).
pub fn succeeded(out: &Output, r: &Value) {
    assert!(
        out.status.success(),
        "{}\n{r}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (path, source address) of every request the target saw.
pub type Log = Arc<Mutex<Vec<(String, String)>>>;

/// A target that records every request; `/missing/...` is a 404.
pub fn recording_target() -> (TestServer, Log) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        l.lock()
            .unwrap()
            .push((r.path.clone(), r.peer.ip().to_string()));
        if r.path.starts_with("/missing") {
            Reply::status(404, &[])
        } else {
            Reply::ok("{}")
        }
    });
    (server, log)
}

/// (sender, payload) of every datagram a UDP server got.
pub type Datagrams = Arc<Mutex<Vec<(std::net::SocketAddr, Vec<u8>)>>>;

/// A UDP server on loopback that records (source, payload) and answers as `answer` says
/// (`None`: no answer).
pub fn udp_server(answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static) -> (u16, Datagrams) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let seen: Datagrams = Arc::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            s.lock().unwrap().push((from, buf[..n].to_vec()));
            if let Some(reply) = answer(&buf[..n]) {
                let _ = sock.send_to(&reply, from);
            }
        }
    });
    (port, seen)
}

/// The pools as a state dir keeps them.
pub fn persisted_pools(state: &Path) -> ip_pool::IpPools {
    let mut pools = ip_pool::IpPools::new();
    pools
        .restore(&std::fs::read(state.join("pool-state.bin")).unwrap())
        .unwrap();
    pools
}

/// A port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `scheduler run PATH EXTRA...` in the background, its output piped.
pub fn spawn_run(path: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .arg("run")
        .arg(path)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A scenario of `users` users, `iterations` passes each, each user with its own address from
/// pool 127.0.`net`.0/29, running `actions` along `nodes` (YAML list items indented four
/// spaces; an `end` node is added); `extra` goes at the top level.
pub fn pool_scenario(
    net: u8,
    users: u32,
    iterations: u32,
    extra: &str,
    actions: &str,
    nodes: &str,
) -> String {
    format!(
        r#"version: "1.0"
name: pool
{extra}
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.{net}.0/29"] }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: {users} }} ] }}
  user_lifetime: {{ mode: loop, iterations: {iterations} }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
actions:
  actions:
{actions}
workflows:
  nodes:
{nodes}
    - {{ id: end, type: end }}
"#
    )
}

/// Whether `src` is one of `pool_scenario`'s addresses for `net`.
pub fn in_pool(src: &str, net: u8) -> bool {
    src.strip_prefix(&format!("127.0.{net}."))
        .and_then(|h| h.parse::<u8>().ok())
        .is_some_and(|h| h < 8)
}

/// Headless Chromium's command, or `None` with a SKIPPED line, unless REQUIRE_CHROMIUM is set
/// (as in CI), where a missing Chromium fails the test.
pub fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("REQUIRE_CHROMIUM").is_none(),
            "chromium is required"
        );
        eprintln!("SKIPPED: apt-get install chromium");
    }
    found
}
