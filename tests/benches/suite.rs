//! The benchmark suite: each figure of ours beside the reference figure, measured alternately
//! (A B A B ...) in one run, median of the repetitions with min and max. Prints a markdown
//! table and writes it to bench/RESULTS.md (unless --quick, the tiny CI variant, which asserts
//! nothing about speed and writes nothing).
//!
//! `cargo bench -p integration-tests --bench suite [-- --quick]`
//!
//! nginx and wrk are used when installed (`just bench` installs them); rows that need a missing
//! tool say so.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Instant;

use compose::sockets::SocketsImpl;
use integration_tests::driven::{self, DrivenExecutor, DrivenSocket};
use integration_tests::nginx::{Nginx, children_cpu};
use integration_tests::*;
use serde_json::json;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

#[path = "rows/exec_row.rs"]
mod exec_row;
#[path = "rows/h2_row.rs"]
mod h2_row;
#[path = "rows/server_row.rs"]
mod server_row;
#[path = "rows/ws_row.rs"]
mod ws_row;

struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

fn stat(mut v: Vec<f64>) -> Stat {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stat {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

/// Run `a` and `b` alternately `reps` times.
fn ab(reps: usize, mut a: impl FnMut() -> f64, mut b: impl FnMut() -> f64) -> (Stat, Stat) {
    let (mut xa, mut xb) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        xa.push(a());
        xb.push(b());
    }
    (stat(xa), stat(xb))
}

fn fmt(s: &Stat, unit: &str) -> String {
    format!("{:.3} {unit} ({:.3}-{:.3})", s.median, s.min, s.max)
}

struct Table {
    rows: Vec<String>,
    /// Say of each target whether it was met (not in quick runs, whose figures mean nothing).
    judge: bool,
}

impl Table {
    /// A target with whether the median met it (judged on the unrounded figures, so a ratio
    /// printed as 0.85 may still say "not met").
    fn judged(&self, target: &str, met: bool) -> String {
        if !self.judge {
            return target.to_string();
        }
        format!("{target}: {}", if met { "met" } else { "not met" })
    }

    fn row(
        &mut self,
        n: &str,
        what: &str,
        ours: String,
        reference: String,
        ratio: String,
        target: &str,
    ) {
        let line = format!("| {n} | {what} | {ours} | {reference} | {ratio} | {target} |");
        println!("{line}");
        self.rows.push(line);
    }
}

/// A sink: reads everything, then reports how much.
fn sink() -> (u16, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    (port, h)
}

fn echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_nodelay(true);
            thread::spawn(move || {
                let mut b = [0u8; 1];
                while matches!(s.read(&mut b), Ok(1)) {
                    if s.write_all(&b).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn bulk(t: &mut Table, quick: bool, reps: usize) {
    let total: usize = if quick { 16 << 20 } else { 1 << 30 };
    let chunk = vec![0x5au8; 64 * 1024];
    let (port, _h) = sink();
    let native = || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let start = Instant::now();
        let mut sent = 0;
        while sent < total {
            s.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        total as f64 / start.elapsed().as_secs_f64() / (1u64 << 30) as f64
    };
    let guest = |g: &mut DrivenSocket| {
        let s = g.tcp4();
        g.connect(s, &driven::addr("127.0.0.1", port)).unwrap();
        let start = Instant::now();
        let mut sent = 0;
        while sent < total {
            g.send(s, &chunk).unwrap();
            sent += chunk.len();
        }
        g.close(s).unwrap();
        let r = total as f64 / start.elapsed().as_secs_f64() / (1u64 << 30) as f64;
        g.drop_socket(s);
        r
    };
    let (mut own, mut theirs) = on_both_tcps();
    let (ours, native) = ab(reps, || guest(&mut own), native);
    let what = format!("TCP bulk send, 64 KiB writes, {} MiB", total >> 20);
    t.row(
        "1",
        &what,
        fmt(&ours, "GiB/s"),
        fmt(&native, "GiB/s"),
        format!("{:.2} x native", ours.median / native.median),
        &t.judged(">= 0.85 x", ours.median >= 0.85 * native.median),
    );
    let (a, b) = ab(reps, || guest(&mut own), || guest(&mut theirs));
    tcp_row(t, "1", &what, (a, b), "GiB/s", true);
}

/// The socket component on the host's own TCP (what runs use) and on wasmtime-wasi's.
fn on_both_tcps() -> (DrivenSocket, DrivenSocket) {
    (
        DrivenSocket::on(SocketsImpl::Own),
        DrivenSocket::on(SocketsImpl::Wasmtime),
    )
}

/// A row's figure on the host's own TCP against wasmtime-wasi's, measured alternately.
fn tcp_row(
    t: &mut Table,
    row: &str,
    what: &str,
    (own, theirs): (Stat, Stat),
    unit: &str,
    higher_better: bool,
) {
    let ratio = own.median / theirs.median;
    let better = if higher_better { ratio } else { 1.0 / ratio };
    t.row(
        row,
        &format!("{what}: own TCP against wasmtime-wasi's (SCHEDULER_SOCKETS)"),
        fmt(&own, unit),
        format!("wasmtime-wasi {}", fmt(&theirs, unit)),
        format!("{better:.2} x as fast"),
        "reported",
    );
}

fn ping_pong(t: &mut Table, quick: bool, reps: usize) {
    let n = if quick { 200 } else { 20_000 };
    let port = echo();
    let native = || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        let start = Instant::now();
        for _ in 0..n {
            s.write_all(b"x").unwrap();
            s.read_exact(&mut b).unwrap();
        }
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let guest = |g: &mut DrivenSocket| {
        let s = g.tcp4();
        g.connect(s, &driven::addr("127.0.0.1", port)).unwrap();
        let start = Instant::now();
        for _ in 0..n {
            g.send(s, b"x").unwrap();
            assert_eq!(g.receive(s, 1).unwrap().len(), 1);
        }
        let r = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        g.drop_socket(s);
        r
    };
    let (mut own, mut theirs) = on_both_tcps();
    let (ours, native) = ab(reps, || guest(&mut own), native);
    let what = format!("TCP 1-byte ping-pong round trip, {n} trips");
    t.row(
        "2",
        &what,
        fmt(&ours, "us"),
        fmt(&native, "us"),
        format!("{:.2} x native", ours.median / native.median),
        &t.judged("<= 1.5 x", ours.median <= 1.5 * native.median),
    );
    let (a, b) = ab(reps, || guest(&mut own), || guest(&mut theirs));
    tcp_row(t, "2", &what, (a, b), "us", false);
}

fn nginx() -> Option<Nginx> {
    let bin = integration_tests::nginx::binary()?;
    Nginx::start(
        &bin,
        "bench",
        "access_log off;\n    keepalive_requests 1000000;",
        "hello\n",
    )
    .ok()
}

fn http_sequential(t: &mut Table, quick: bool, reps: usize, ng: &Nginx) {
    let n = if quick { 50 } else { 5_000 };
    let url = format!("http://127.0.0.1:{}/", ng.port);
    // As a run drives the artifact: async calls on a current-thread runtime in this thread.
    let mut ex = DrivenExecutor::new();
    let mut ours = || driven_gets(&mut ex, &url, n);
    let agent = ureq::AgentBuilder::new().build();
    let native = || {
        let start = Instant::now();
        for _ in 0..n {
            let r = agent.get(&url).call().unwrap();
            assert_eq!(r.status(), 200);
            let _ = r.into_string().unwrap();
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    // The peers compiled to wasm: (build, what the row says, short name, target).
    let peers = [
        (
            WasmPeer::build("ureq-guest"),
            "wasm ureq (std::net, same wasmtime; no keep-alive on wasip2)",
            "wasm ureq",
            (">= 1.0 x wasm ureq", 1.0),
        ),
        (
            WasmPeer::build("wasi-http-guest"),
            "wasi:http client on wasmtime's wasi-http host (a connection per request)",
            "wasi:http",
            (">= 2 x wasi:http", 2.0),
        ),
    ];
    let (mut xo, mut xr) = (Vec::new(), Vec::new());
    let mut xp = vec![Vec::new(); peers.len()];
    for _ in 0..reps {
        xo.push(ours());
        xr.push(native());
        for ((peer, ..), samples) in peers.iter().zip(&mut xp) {
            if let Ok(p) = peer {
                samples.push(p.run(&url, n));
            }
        }
    }
    let (o, r) = (stat(xo), stat(xr));
    let what = format!("sequential keep-alive GETs to nginx, {n} requests");
    t.row(
        "3",
        &what,
        fmt(&o, "req/s"),
        format!("native ureq {}", fmt(&r, "req/s")),
        format!("{:.2} x native ureq", o.median / r.median),
        &t.judged(">= 0.6 x native ureq", o.median >= 0.6 * r.median),
    );
    for ((peer, label, short, (target, times)), samples) in peers.into_iter().zip(xp) {
        match peer {
            Ok(_) => {
                let p = stat(samples);
                t.row(
                    "3",
                    &what,
                    fmt(&o, "req/s"),
                    format!("{label} {}", fmt(&p, "req/s")),
                    format!("{:.2} x {short}", o.median / p.median),
                    &t.judged(target, o.median >= times * p.median),
                );
            }
            Err(e) => t.row(
                "3",
                &format!("sequential GETs, {short}"),
                "-".into(),
                format!("not built: {e}"),
                "-".into(),
                "",
            ),
        }
    }
}

/// Build the guest package `package` for wasm32-wasip2 with the components' profile and
/// `features`; the path of its `file`.wasm (overwritten by the next build of the package).
fn build_guest(package: &str, file: &str, features: &[&str]) -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = root.join("target/wasm-components");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "-q",
            "--profile",
            "wasm",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["-p", package])
        .args(features.iter().flat_map(|f| ["--features", f]))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p {package} failed"));
    }
    Ok(target_dir.join(format!("wasm32-wasip2/wasm/{file}.wasm")))
}

/// The floors under row 4: `bench/bare-guest` (the executor interface straight on
/// wasi:sockets, or with `via_socket` through the socket component) composed with the ip-pool
/// component (and the socket component), as a drop-in artifact at `out`.
fn floor_artifact(out: &std::path::Path, via_socket: bool) -> Result<PathBuf, String> {
    let features: &[&str] = if via_socket { &["via-socket"] } else { &[] };
    let guest = build_guest("bare-guest", "bare_guest", features)?;
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let socket = if via_socket {
        Some(read(compose::SOCKET_COMPONENT.as_ref())?)
    } else {
        None
    };
    let bytes = compose::compose_executor(
        socket.as_deref(),
        &read(compose::IP_POOL_COMPONENT.as_ref())?,
        &read(&guest)?,
    )?;
    std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out.to_path_buf())
}

/// A peer client compiled to wasm32-wasip2 and run as a WASI command in the same engine as
/// our components, with the same loopback-only policy: `ureq-guest` (ureq on std::net, over
/// wasi:sockets) or `wasi-http-guest` (a wasi:http client, on wasmtime's wasi-http host).
struct WasmPeer {
    name: &'static str,
    component: Component,
    linker: Linker<PeerCtx>,
}

/// WASI plus wasi:http for the peers.
struct PeerCtx {
    wasi: wasmtime_wasi::WasiCtx,
    http: wasmtime_wasi_http::WasiHttpCtx,
    table: wasmtime_wasi::ResourceTable,
}

impl wasmtime_wasi::WasiView for PeerCtx {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for PeerCtx {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

impl WasmPeer {
    /// Build the guest package `name` with the components' profile and compile it once.
    fn build(name: &'static str) -> Result<Self, String> {
        let path = build_guest(name, name, &[])?;
        let component = Component::from_file(engine(), &path).map_err(|e| format!("{e:#}"))?;
        let mut linker = Linker::new(engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| format!("{e:#}"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(|e| format!("{e:#}"))?;
        Ok(WasmPeer {
            name,
            component,
            linker,
        })
    }

    /// `n` GETs of `url`; the guest times its own loop (instantiation excluded).
    fn run(&self, url: &str, n: usize) -> f64 {
        let stdout = MemoryOutputPipe::new(4096);
        let stderr = MemoryOutputPipe::new(4096);
        let mut b = WasiCtxBuilder::new();
        b.args(&[self.name, url, &n.to_string()])
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(true)
            .socket_addr_check(|addr, _| {
                let ok = addr.ip().is_loopback() || addr.ip().is_unspecified();
                Box::pin(async move { ok })
            });
        let ctx = PeerCtx {
            wasi: b.build(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            table: wasmtime_wasi::ResourceTable::new(),
        };
        let mut store = Store::new(engine(), ctx);
        let cmd = wasmtime_wasi::p2::bindings::sync::Command::instantiate(
            &mut store,
            &self.component,
            &self.linker,
        )
        .unwrap();
        let ran = cmd.wasi_cli_run().call_run(&mut store).unwrap();
        let out = String::from_utf8_lossy(&stdout.contents()).to_string();
        assert!(
            ran.is_ok(),
            "{} failed: {}",
            self.name,
            String::from_utf8_lossy(&stderr.contents())
        );
        let mut it = out.split_whitespace().map(|x| x.parse::<f64>().unwrap());
        let (count, secs) = (it.next().unwrap(), it.next().unwrap());
        count / secs
    }
}

/// A scenario file in `dir`: `users` users against nginx on `port`, each looping for `secs`
/// (or making `iterations` requests when not 0).
fn load_scenario(
    dir: &std::path::Path,
    port: u16,
    users: u32,
    iterations: u32,
    secs: u64,
) -> PathBuf {
    let text = format!(
        "version: \"1.0\"\nname: load\nworkbook:\n  resources: [ {{ id: t, properties: {{ ip: \"127.0.0.1\", port: \"{port}\" }} }} ]\n\
load:\n  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: {users} }} ] }}\n  user_lifetime: {{ mode: loop, iterations: {iterations}, duration: {secs}s }}\n  concurrency: {{ max_concurrent_users: {users} }}\n\
actions:\n  actions: [ {{ id: get, call: get, with: {{ url: \"http://127.0.0.1:{port}/\", discard_body: true, discard_headers: true }} }} ]\n\
workflows:\n  nodes: [ {{ id: start, action: get, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]\n"
    );
    let path = dir.join(format!("load-{users}-{iterations}-{secs}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The scheduler to measure: the optimised build `just bench` makes, or (quick runs only)
/// the debug one.
fn scheduler_binary(quick: bool) -> Option<String> {
    let target = env!("CARGO_MANIFEST_DIR").to_string() + "/../target/";
    ["host-release/scheduler", "debug/scheduler"]
        .iter()
        .map(|p| target.clone() + p)
        .find(|p| std::path::Path::new(p).exists() && (quick || p.contains("host-release")))
}

/// Row 4m: the scheduler's peak RSS after N and after 10N requests (64 users): the recording
/// keeps histograms, not samples, so memory should not grow with the run's length.
/// Run the scheduler (`cmd`, its arguments given) with `--json FILE`, and read its report.
fn scheduler_report(mut cmd: Command, json: &std::path::Path) -> serde_json::Value {
    let out = cmd.arg("--json").arg(json).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

/// Requests per second of a report.
fn report_rate(v: &serde_json::Value) -> f64 {
    v["totals"]["requests"].as_f64().unwrap() / v["elapsed_s"].as_f64().unwrap()
}

fn memory_with_length(t: &mut Table, quick: bool, ng: &Nginx) {
    let Some(scheduler) = scheduler_binary(quick) else {
        return;
    };
    let dir = integration_tests::scratch::Scratch::new("bench-memory");
    let users = 64u32;
    let per_user = if quick { 20 } else { 400 };
    let peak = |iterations: u32| -> (f64, f64) {
        let path = load_scenario(&dir, ng.port, users, iterations, 600);
        let mut child = Command::new(&scheduler)
            .args(["run", path.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let status = format!("/proc/{}/status", child.id());
        let mut hwm_kb = 0.0f64;
        while child.try_wait().unwrap().is_none() {
            if let Ok(text) = std::fs::read_to_string(&status)
                && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
            {
                let kb: f64 = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                hwm_kb = hwm_kb.max(kb);
            }
            thread::sleep(std::time::Duration::from_millis(20));
        }
        (hwm_kb / 1024.0, f64::from(users * iterations))
    };
    let (small, n) = peak(per_user);
    let (large, n10) = peak(per_user * 10);
    t.row(
        "4m",
        &format!("scheduler peak RSS, {n:.0} then {n10:.0} requests (64 users)"),
        format!("{large:.1} MiB after {n10:.0}"),
        format!("{small:.1} MiB after {n:.0}"),
        format!("{:.2}x", large / small.max(1e-9)),
        "<= 1.1x (flat with length)",
    );
}

fn concurrent(t: &mut Table, quick: bool, reps: usize, ng: &Nginx) {
    let Some(wrk) = ["/usr/bin/wrk", "/usr/local/bin/wrk"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        t.row(
            "4",
            "concurrent load vs wrk",
            "-".into(),
            "wrk not installed".into(),
            "-".into(),
            ">= 0.5 x wrk",
        );
        return;
    };
    let secs = if quick { 1 } else { 5 };
    let Some(scheduler) = scheduler_binary(quick) else {
        t.row(
            "4",
            "concurrent load vs wrk",
            "-".into(),
            "build `scheduler` first (just bench does)".into(),
            "-".into(),
            "",
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("bench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario =
        |users: u32, iterations: u32| load_scenario(&dir, ng.port, users, iterations, secs);
    let json = dir.join("r.json");
    // Our artifact, or another drop-in one (the floor).
    // `sockets`: the TCP the run's instances get (SCHEDULER_SOCKETS).
    let run_on = |path: &PathBuf, artifact: Option<&PathBuf>, sockets: &str| {
        let mut cmd = Command::new(&scheduler);
        cmd.env("SCHEDULER_SOCKETS", sockets);
        if let Some(a) = artifact {
            cmd.env("SCHEDULER_EXECUTOR", a);
        }
        cmd.args(["run", path.to_str().unwrap()]);
        let v = scheduler_report(cmd, &json);
        let requests = v["totals"]["requests"].as_f64().unwrap();
        // A rate of failures would be no figure at all.
        assert_eq!(
            v["totals"]["failed"].as_f64(),
            Some(0.0),
            "failed requests with {}",
            artifact.map_or("our artifact".into(), |a| a.display().to_string())
        );
        let rps = requests / v["elapsed_s"].as_f64().unwrap();
        (rps, v["totals"]["p99_ms"].as_f64().unwrap(), requests)
    };
    let run_ours = |path: &PathBuf, artifact: Option<&PathBuf>| run_on(path, artifact, "own");
    // The scheduler's start-up (compiling the artifact) is not part of the cost per request:
    // measured once with a single request, and taken off each run's CPU; the floor's as well
    // (its artifact is smaller, so it compiles faster).
    let start_up_of = |artifact: Option<&PathBuf>| {
        let path = scenario(1, 1);
        let before = children_cpu().unwrap_or_default();
        run_ours(&path, artifact);
        let after = children_cpu().unwrap_or_default();
        (after.0 - before.0, after.1 - before.1)
    };
    let start_up = start_up_of(None);
    let floor = floor_artifact(&dir.join("floor.wasm"), false);
    let floor_start_up = floor.as_ref().map_or((0.0, 0.0), |f| start_up_of(Some(f)));
    let socket_floor = floor_artifact(&dir.join("floor-socket.wasm"), true);
    let socket_floor_start_up = socket_floor
        .as_ref()
        .map_or((0.0, 0.0), |f| start_up_of(Some(f)));
    for users in [64u32, 256] {
        let path = scenario(users, 0);
        let ours = || {
            let (rps, p99, requests) = run_ours(&path, None);
            ((rps, p99), requests, start_up)
        };
        // A floor artifact on `sockets`' TCP (SCHEDULER_SOCKETS): on wasmtime-wasi's, what the
        // host's own (compose::sockets) buys.
        let floor_run = |artifact: &PathBuf, start_up: (f64, f64), sockets: &str| {
            let (rps, p99, requests) = run_on(&path, Some(artifact), sockets);
            ((rps, p99), requests, start_up)
        };
        let wrk_run = || {
            let out = Command::new(wrk)
                .args([
                    "-t",
                    "2",
                    "-c",
                    &users.to_string(),
                    "-d",
                    &format!("{secs}s"),
                    "--latency",
                    &format!("http://127.0.0.1:{}/", ng.port),
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let rps = text
                .lines()
                .find(|l| l.starts_with("Requests/sec:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            let p99 = text
                .lines()
                .find(|l| l.trim_start().starts_with("99%"))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(wrk_ms)
                .unwrap_or(0.0);
            // "  780012 requests in 5.00s, ..."
            let requests = text
                .lines()
                .find(|l| l.contains(" requests in "))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            ((rps, p99), requests, (0.0, 0.0))
        };
        let oha_run = |oha: &PathBuf| {
            let out = Command::new(oha)
                .args(["-z", &format!("{secs}s"), "-c", &users.to_string()])
                .args(["--no-tui", "--output-format", "json"])
                .arg(format!("http://127.0.0.1:{}/", ng.port))
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let rps = v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0);
            let p99 = v["latencyPercentiles"]["p99"].as_f64().unwrap_or(0.0) * 1000.0;
            let requests = v["statusCodeDistribution"]
                .as_object()
                .map_or(0.0, |m| m.values().filter_map(|n| n.as_f64()).sum());
            ((rps, p99), requests, (0.0, 0.0))
        };
        let oha = oha_binary();
        let (mut a, mut b, mut c, mut d, mut sf, mut fw) = (
            Load::default(),
            Load::default(),
            Load::default(),
            Load::default(),
            Load::default(),
            Load::default(),
        );
        for _ in 0..reps {
            a.measure(ng, ours);
            b.measure(ng, wrk_run);
            if let Some(oha) = &oha {
                c.measure(ng, || oha_run(oha));
            }
            if let Ok(f) = &floor {
                d.measure(ng, || floor_run(f, floor_start_up, "own"));
                fw.measure(ng, || floor_run(f, floor_start_up, "wasmtime"));
            }
            if let Ok(f) = &socket_floor {
                sf.measure(ng, || floor_run(f, socket_floor_start_up, "own"));
            }
        }
        let what = format!("concurrent load on nginx, {users} users, {secs} s");
        let (ours_rps, ours_p99) = (stat(a.rps.clone()), stat(a.p99.clone()));
        let ours_text = format!(
            "{} (p99 {:.2} ms)",
            fmt(&ours_rps, "req/s"),
            ours_p99.median
        );
        let (wrk_rps, wrk_p99) = (stat(b.rps.clone()), stat(b.p99.clone()));
        t.row(
            "4",
            &what,
            ours_text.clone(),
            format!(
                "wrk {} (p99 {:.2} ms)",
                fmt(&wrk_rps, "req/s"),
                wrk_p99.median
            ),
            format!("{:.2} x wrk", ours_rps.median / wrk_rps.median),
            // A peer that measured nothing (its output not understood) meets nothing.
            &t.judged(
                ">= 0.5 x wrk",
                wrk_rps.median > 0.0 && ours_rps.median >= 0.5 * wrk_rps.median,
            ),
        );
        if oha.is_some() {
            let (oha_rps, oha_p99) = (stat(c.rps.clone()), stat(c.p99.clone()));
            t.row(
                "4",
                &what,
                ours_text,
                format!(
                    "oha {} (p99 {:.2} ms)",
                    fmt(&oha_rps, "req/s"),
                    oha_p99.median
                ),
                format!("{:.2} x oha", ours_rps.median / oha_rps.median),
                &t.judged(
                    ">= 1.0 x oha",
                    oha_rps.median > 0.0 && ours_rps.median >= oha_rps.median,
                ),
            );
        } else {
            t.row(
                "4",
                &what,
                "-".into(),
                "oha not installed (`just bench` installs it)".into(),
                "-".into(),
                ">= 1.0 x oha",
            );
        }
        // What each request costs in CPU, on each side: the clients and nginx share the
        // machine's cores, so this is what bounds the rates above.
        let mut reference = format!("wrk {}", b.cpu_text());
        let mut ratio = format!("{:.2} x wrk", a.cpu() / b.cpu());
        if oha.is_some() {
            let _ = write!(reference, "; oha {}", c.cpu_text());
            let _ = write!(ratio, ", {:.2} x oha", a.cpu() / c.cpu());
        }
        t.row(
            "4",
            &format!("CPU per request, {users} users: the client's, and nginx's under it"),
            a.cpu_text(),
            reference,
            ratio,
            "reported",
        );
        // What this runtime costs a client that does nothing else: the rate no guest of the
        // scheduler reaches, beside the peers'.
        let what = format!(
            "floor, {users} users: the executor interface on bare wasi:sockets \
             (bench/bare-guest), same scheduler"
        );
        let ours_cpu = format!("{}, CPU {:.1} us", fmt(&ours_rps, "req/s"), a.cpu());
        floor_row(t, &what, &floor, ours_cpu.clone(), ("floor", &d), |f| {
            let mut ratio = format!(
                "ours {:.2} x floor; floor {:.2} x wrk",
                ours_rps.median / f.median,
                f.median / wrk_rps.median
            );
            if oha.is_some() {
                let oha_rps = stat(c.rps.clone());
                let _ = write!(ratio, ", {:.2} x oha", f.median / oha_rps.median);
            }
            ratio
        });
        // The floor again on wasmtime-wasi's TCP, in the same run: what the host's own TCP
        // (compose::sockets, what runs use) buys the floor, in rate and in CPU.
        let what = format!(
            "floor on wasmtime-wasi's TCP, {users} users: bench/bare-guest, \
             SCHEDULER_SOCKETS=wasmtime"
        );
        let floor_text = format!(
            "floor {}, {}",
            fmt(&stat(d.rps.clone()), "req/s"),
            d.cpu_text()
        );
        floor_row(
            t,
            &what,
            &floor,
            floor_text,
            ("wasmtime-wasi floor", &fw),
            |w| {
                format!(
                    "own TCP floor {:.2} x it; CPU {:.2} x",
                    stat(d.rps.clone()).median / w.median,
                    d.cpu() / fw.cpu()
                )
            },
        );
        // The same floor with every byte through the socket component: above it, the socket
        // layer's cost; below our artifact, the HTTP client's.
        let what = format!(
            "floor through the socket component, {users} users: bench/bare-guest with one \
             send-receive a request (feature via-socket)"
        );
        floor_row(
            t,
            &what,
            &socket_floor,
            ours_cpu,
            ("socket floor", &sf),
            |rps| {
                let mut ratio = format!("ours {:.2} x it; it", ours_rps.median / rps.median);
                if floor.is_ok() {
                    let _ = write!(
                        ratio,
                        " {:.2} x floor,",
                        rps.median / stat(d.rps.clone()).median
                    );
                }
                let _ = write!(ratio, " {:.2} x wrk", rps.median / wrk_rps.median);
                ratio
            },
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A floor's line in row 4: `ours` beside the floor's rate and CPU (`name`, its measurements),
/// with `ratio` of its rate; or why the floor was not built.
fn floor_row(
    t: &mut Table,
    what: &str,
    built: &Result<PathBuf, String>,
    ours: String,
    (name, load): (&str, &Load),
    ratio: impl FnOnce(&Stat) -> String,
) {
    match built {
        Ok(_) => {
            let rps = stat(load.rps.clone());
            t.row(
                "4",
                what,
                ours,
                format!("{name} {}, {}", fmt(&rps, "req/s"), load.cpu_text()),
                ratio(&rps),
                "reported",
            );
        }
        Err(e) => t.row(
            "4",
            what,
            "-".into(),
            format!("not built: {e}"),
            "-".into(),
            "reported",
        ),
    }
}

/// One side of row 4 over its repetitions: rate, p99, and CPU per request (µs) of the client
/// (user, system) and of nginx while it served that client.
#[derive(Default)]
struct Load {
    rps: Vec<f64>,
    p99: Vec<f64>,
    user: Vec<f64>,
    sys: Vec<f64>,
    nginx: Vec<f64>,
}

impl Load {
    /// One run of `run`, which returns its (rate, p99), its request count, and CPU time
    /// (user, system) of its own not to count (the scheduler's start-up).
    fn measure(&mut self, ng: &Nginx, run: impl FnOnce() -> ((f64, f64), f64, (f64, f64))) {
        let (c0, n0) = (children_cpu(), ng.cpu());
        let ((rps, p99), requests, (skip_user, skip_sys)) = run();
        let (c1, n1) = (children_cpu(), ng.cpu());
        self.rps.push(rps);
        self.p99.push(p99);
        let per = |v: f64| v.max(0.0) * 1e6 / requests.max(1.0);
        if let (Some(c0), Some(c1)) = (c0, c1) {
            self.user.push(per(c1.0 - c0.0 - skip_user));
            self.sys.push(per(c1.1 - c0.1 - skip_sys));
        }
        if let (Some(n0), Some(n1)) = (n0, n1) {
            self.nginx.push(per(n1.0 + n1.1 - n0.0 - n0.1));
        }
    }

    fn median(v: &[f64]) -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        stat(v.to_vec()).median
    }

    /// The client's CPU per request (µs, user and system), median.
    fn cpu(&self) -> f64 {
        let total: Vec<f64> = self
            .user
            .iter()
            .zip(&self.sys)
            .map(|(u, s)| u + s)
            .collect();
        Self::median(&total)
    }

    fn cpu_text(&self) -> String {
        format!(
            "{:.1} us ({:.1} user + {:.1} sys), nginx {:.1} us",
            self.cpu(),
            Self::median(&self.user),
            Self::median(&self.sys),
            Self::median(&self.nginx)
        )
    }
}

/// oha on PATH or where `cargo install` puts it.
fn oha_binary() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/oha"));
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("oha"))
        .chain(home)
        .find(|p| p.is_file())
}

fn wrk_ms(v: &str) -> f64 {
    let (num, mult) = if let Some(x) = v.strip_suffix("us") {
        (x, 0.001)
    } else if let Some(x) = v.strip_suffix("ms") {
        (x, 1.0)
    } else if let Some(x) = v.strip_suffix('s') {
        (x, 1000.0)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().unwrap_or(0.0) * mult
}

fn artifact(t: &mut Table, quick: bool, reps: usize) {
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1024.0;
    t.row(
        "6",
        "component sizes (profile wasm)",
        format!(
            "socket {:.0} KiB, ip-pool {:.0} KiB, http-actions {:.0} KiB",
            size(compose::SOCKET_COMPONENT),
            size(compose::IP_POOL_COMPONENT),
            size(compose::HTTP_ACTIONS_COMPONENT)
        ),
        "originals: 460, 473, 622 KB".into(),
        "-".into(),
        "",
    );
    t.row(
        "6",
        "scheduler-executor.wasm size",
        format!("{:.0} KiB", size(compose::EXECUTOR_ARTIFACT)),
        "-".into(),
        "-".into(),
        &t.judged(
            "<= 400 KB",
            size(compose::EXECUTOR_ARTIFACT) * 1024.0 <= 400_000.0,
        ),
    );
    let bytes = std::fs::read(compose::EXECUTOR_ARTIFACT).unwrap();
    let compile: Vec<f64> = (0..reps.min(3))
        .map(|_| {
            let e = Engine::new(&Config::new()).unwrap();
            let s = Instant::now();
            Component::new(&e, &bytes).unwrap();
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    t.row(
        "6",
        "compile scheduler-executor.wasm (Cranelift)",
        fmt(&stat(compile), "ms"),
        "-".into(),
        "-".into(),
        "",
    );

    let users = if quick { 50 } else { 1000 };
    // As a run makes them (`compose::memory`): memories filled from their data segments (no
    // copy-on-write image: one mapping fewer a memory), in the pool and in the arena.
    use compose::memory::MemoryMode;
    let mut pool = None;
    for (mode, what) in [
        (MemoryMode::Arena, "memory arena, as runs take them"),
        (MemoryMode::Pool, "pooling allocator, SCHEDULER_MEMORY=pool"),
    ] {
        let (per_user, rss_per_user) =
            instantiate_users(&bytes, users, reps.min(3), Memories::Run(mode));
        t.row(
            "6",
            &format!("instantiate per user ({what}, pre-instantiated, fresh slots)"),
            fmt(&per_user, "us"),
            "-".into(),
            "-".into(),
            &t.judged("<= 50 us", per_user.median <= 50.0),
        );
        t.row(
            "7",
            &format!("host RSS per idle user ({users} users held, {what})"),
            fmt(&rss_per_user, "KiB"),
            "-".into(),
            "-".into(),
            "reported",
        );
        if mode == MemoryMode::Pool {
            pool = Some(per_user.median);
        }
    }
    // What copy-on-write images would give, at three more mappings a user (not used: a
    // process holds `vm.max_map_count` of them): the data pages mapped, not copied and
    // faulted in.
    let (images, images_rss) = instantiate_users(&bytes, users, reps.min(3), Memories::Images);
    t.row(
        "6",
        "instantiate per user with copy-on-write memory images (3 more mappings a user; not used)",
        fmt(&images, "us"),
        format!("RSS {}", fmt(&images_rss, "KiB")),
        format!("{:.2} x pool", pool.unwrap_or(f64::NAN) / images.median),
        "reported",
    );
}

/// Row 6's instantiation in one memory mode (`pool` or `arena`): 1,000 users thirty times, for
/// profiling (`USERS=N` and `REPS=N` for other counts: fewer under valgrind).
fn instantiate_alone(mode: &str) {
    use compose::memory::MemoryMode;
    let how = Memories::Run(if mode == "pool" {
        MemoryMode::Pool
    } else {
        MemoryMode::Arena
    });
    let bytes = std::fs::read(compose::EXECUTOR_ARTIFACT).unwrap();
    let (per_user, rss) = instantiate_users(&bytes, env_or("USERS", 1000), env_or("REPS", 30), how);
    println!(
        "instantiate ({mode}): {}, RSS {}; fresh pages {:.0} k/s, loop {:.0} M rounds/s",
        fmt(&per_user, "us"),
        fmt(&rss, "KiB"),
        integration_tests::machine::fresh_pages(),
        integration_tests::machine::speed()
    );
}

/// The environment variable `name` read as a `T` (a count the profiling parts take), or
/// `default` when it is unset or not one.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How the memories of row 6's instances are made.
#[derive(Clone, Copy)]
enum Memories {
    /// As a run makes them (`compose::memory`).
    Run(compose::memory::MemoryMode),
    /// The pooling allocator with copy-on-write images (not used by runs).
    Images,
}

/// An engine set up as `how` says, for `users` instances alive at once.
fn engine_for(how: Memories, users: u32) -> Engine {
    let mut config = Config::new();
    if std::env::var_os("PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    match how {
        Memories::Run(mode) => compose::memory::configure(&mut config, users + 2, mode).unwrap(),
        Memories::Images => {
            config.memory_init_cow(true);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(
                compose::pooling_config(users + 2),
            ));
        }
    }
    Engine::new(&config).unwrap()
}

/// `users` instances of the artifact made and held at once (a few times): the time and the
/// resident memory each took. Each time on a fresh engine, as a run's users are made: slots
/// never used before (the artifact compiled once, loaded into each engine).
fn instantiate_users(bytes: &[u8], users: u32, reps: usize, how: Memories) -> (Stat, Stat) {
    let compiled = Component::new(&engine_for(how, 2), bytes)
        .unwrap()
        .serialize()
        .unwrap();
    let rss = || rss_kib(std::process::id());
    let mut per_user = Vec::new();
    let mut rss_per_user = Vec::new();
    // The run's TLS client is made once (its roots read once); each user gets its context.
    let tls = compose::tls::TlsClient::new(&compose::tls::TlsSettings::default()).unwrap();
    for _ in 0..reps {
        let engine = engine_for(how, users);
        // SAFETY: bytes this process serialized just now, for an engine of the same settings.
        let component = unsafe { Component::deserialize(&engine, &compiled) }.unwrap();
        let mut linker: Linker<Ctx> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        compose::tls::add_to_linker(&mut linker).unwrap();
        let pre = linker.instantiate_pre(&component).unwrap();
        let before = rss();
        let start = Instant::now();
        let mut held = Vec::with_capacity(users as usize);
        for _ in 0..users {
            let ctx = Ctx::with_tls(wasi_ctx(loopback_policy()), tls.context().0);
            let mut store = Store::new(&engine, ctx);
            let inst = pre.instantiate(&mut store).unwrap();
            held.push((store, inst));
        }
        per_user.push(start.elapsed().as_secs_f64() * 1e6 / users as f64);
        rss_per_user.push((rss() - before) / users as f64);
        drop(held);
    }
    (stat(per_user), stat(rss_per_user))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only NAME`: one part (bulk, ping-pong, http, http-ours, load, memory, artifact), for
    // profiling.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    // `--only a,b`: several parts, in the full run's order.
    let named = |name: &str| {
        only.as_deref()
            .is_some_and(|o| o.split(',').any(|part| part == name))
    };
    let want = |name: &str| only.is_none() || named(name);
    let reps = if quick { 1 } else { 5 };
    let others = integration_tests::machine::MachineCpu::now();
    let mut t = Table {
        rows: Vec::new(),
        judge: !quick,
    };
    let header = "| # | measurement | ours (median, min-max) | reference (median, min-max) | ratio | target |\n|---|---|---|---|---|---|";
    println!("{header}");
    if want("bulk") {
        bulk(&mut t, quick, reps);
    }
    if want("ping-pong") {
        ping_pong(&mut t, quick, reps);
    }
    // Rows 3 and 4 share nginx; `--only load` runs row 4 alone.
    let load = want("http") || named("load");
    if want("http") || load {
        match nginx() {
            Some(ng) => {
                if want("http") {
                    http_sequential(&mut t, quick, reps, &ng);
                }
                if load {
                    concurrent(&mut t, quick, reps, &ng);
                    memory_with_length(&mut t, quick, &ng);
                }
            }
            None => t.row(
                "3-4",
                "HTTP against nginx",
                "-".into(),
                "nginx not installed".into(),
                "-".into(),
                "",
            ),
        }
    }
    // Row 4m alone: `--only memory`.
    if named("memory")
        && let Some(ng) = nginx()
    {
        memory_with_length(&mut t, quick, &ng);
    }
    // Our side of row 3 alone, longer, for profiling: `--only http-ours`.
    if named("http-ours")
        && let Some(ng) = nginx()
    {
        let url = format!("http://127.0.0.1:{}/", ng.port);
        let rate = driven_gets(&mut DrivenExecutor::new(), &url, 20_000);
        println!("ours: {rate:.0} req/s");
    }
    // A new connection per request through the artifact alone, for profiling:
    // `--only new-connection`.
    if named("new-connection")
        && let Some(ng) = nginx()
    {
        let url = format!("http://127.0.0.1:{}/", ng.port);
        let us = cpu_per_new_connection(&mut DrivenExecutor::new(), &url, 20_000);
        println!("ours: {us:.1} us of CPU a request");
    }
    // The same over TLS (a resumed handshake each): `--only new-connection-tls`.
    if named("new-connection-tls")
        && let Some((ng, ca_file, dir, _)) = nginx_tls()
    {
        let settings = compose::tls::TlsSettings {
            ca_files: vec![ca_file],
            ..Default::default()
        };
        let url = format!("https://127.0.0.1:{}/", ng.port);
        // Alternately with wasmtime-wasi's `read` for the TLS streams (a copy more a read).
        let mut direct = DrivenExecutor::with_tls(&settings);
        let mut copying = DrivenExecutor::with_copying_tls_reads(&settings);
        for _ in 0..3 {
            let d = cpu_per_new_connection(&mut direct, &url, 5_000);
            let c = cpu_per_new_connection(&mut copying, &url, 5_000);
            println!("ours: {d:.1} us of CPU a request; with copying reads {c:.1} us");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
    if want("https") {
        https(&mut t, quick, reps);
        https_load(&mut t, quick, reps);
    }
    if want("etcd")
        && let Some(ng) = nginx()
    {
        etcd_rows(&mut t, quick, &ng);
    }
    // The soak takes ten minutes: `--only soak` (SOAK_MINUTES=N for another length).
    if named("soak")
        && let Some(ng) = nginx()
    {
        soak(&mut t, quick, &ng);
    }
    // 50,000 users alive at once (about 80 s): in full runs, or `--only users` (USERS=N for
    // another count).
    if named("users") || (only.is_none() && !quick) {
        users_at_once(&mut t, quick);
    }
    if want("gzip") {
        gzip(&mut t, quick, reps);
    }
    if want("server")
        && let Some(ng) = nginx()
    {
        server_row::server(&mut t, quick, reps, &ng);
    }
    if want("websocket") {
        ws_row::websocket(&mut t, quick, reps);
    }
    if want("exec")
        && let Some(ng) = nginx()
    {
        exec_row::exec_startup(&mut t, quick, reps, &ng);
    }
    if want("http2") {
        h2_row::http2(&mut t, quick, reps);
    }
    if want("artifact") {
        artifact(&mut t, quick, reps);
    }
    // Row 6's instantiation alone, in one memory mode, for profiling: `--only instantiate-pool`
    // or `--only instantiate-arena`.
    if let Some(mode) = only.as_deref().and_then(|o| o.strip_prefix("instantiate-")) {
        instantiate_alone(mode);
    }
    t.row(
        "5",
        "ip-pool allocate+release",
        "see `cargo bench --bench ip_pool` below".into(),
        "go-ipam 196,687/s".into(),
        "-".into(),
        ">= 10 M/s native, >= 1 M/s component",
    );
    if !quick && only.is_none() {
        let machine = integration_tests::machine::description();
        let date = integration_tests::machine::utc_now();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("RESULTS.md");
        let prev = std::fs::read_to_string(&path).unwrap_or_default();
        let (prev_head, tail) = prev
            .split_once("\n## ip-pool")
            .map(|(h, t)| (h, format!("\n## ip-pool{t}")))
            .unwrap_or((&prev, String::new()));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Benchmark results\n\nMeasured {date} on {machine} by `just bench` (one run; A and B alternate, median of {reps}, min-max in brackets). {}\n",
            others
                .as_ref()
                .map_or(String::new(), |m| m.report_against(prev_head, prev_head))
        );
        let _ = writeln!(out, "{header}");
        for r in &t.rows {
            let _ = writeln!(out, "{r}");
        }
        integration_tests::machine::write_whole(&path, &(out + &tail)).unwrap();
        println!("\nwrote {}", path.display());
    }
}

/// nginx with TLS (a certificate from a CA made here), and the CA's PEM file.
/// Also a plain listener for the same 100 MB file (its port last).
fn nginx_tls() -> Option<(Nginx, PathBuf, PathBuf, u16)> {
    use compose::tls::pki::{Ca, Validity};
    let bin = integration_tests::nginx::binary()?;
    let dir = std::env::temp_dir().join(format!("bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let ca = Ca::new("bench CA").ok()?;
    let leaf = ca.server(&["127.0.0.1"], Validity::Now).ok()?;
    let (ca_file, cert, key) = (dir.join("ca.pem"), dir.join("s.pem"), dir.join("s.key"));
    std::fs::write(&ca_file, &ca.cert_pem).ok()?;
    std::fs::write(&cert, &leaf.cert_pem).ok()?;
    std::fs::write(&key, &leaf.key_pem).ok()?;
    // A 100 MB file for the bulk row.
    let mut big = std::fs::File::create(dir.join("big")).ok()?;
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..100 {
        big.write_all(&chunk).ok()?;
    }
    let plain_port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let server = format!(
        "server {{ listen 127.0.0.1:{plain_port}; location = /big {{ root {}; }} }}\n    server {{ listen 127.0.0.1:{{port}} ssl backlog=4096; ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate {}; ssl_certificate_key {}; ssl_session_cache shared:SSL:10m; location = /big {{ root {}; }} location / {{ return 200 \"hello\\n\"; }} }}",
        dir.display(),
        cert.display(),
        key.display(),
        dir.display()
    );
    let ng = Nginx::start_server(
        &bin,
        "bench-tls",
        "access_log off;\n    keepalive_requests 1000000;",
        &server,
    )
    .ok()?;
    Some((ng, ca_file, dir, plain_port))
}

/// `n` GETs of `url` through `ex`, each on a new connection: this process's CPU per request,
/// in microseconds.
fn cpu_per_new_connection(ex: &mut DrivenExecutor, url: &str, n: usize) -> f64 {
    let c = own_cpu();
    driven_get_n(ex, json!({ "url": url, "keep_alive": false }), n);
    (own_cpu() - c) / n as f64 * 1e6
}

/// `n` GETs through `ex` with `params`, each answered 200.
fn driven_get_n(ex: &mut DrivenExecutor, params: serde_json::Value, n: usize) {
    for _ in 0..n {
        let o = ex.run(driven::HttpMethod::Get, params.clone()).unwrap();
        assert_eq!(o.status, 200);
    }
}

/// One GET of `url` (a body of `size` bytes, discarded) through `ex`: MiB per second.
fn download_rate(ex: &mut DrivenExecutor, url: &str, size: f64) -> f64 {
    download_rate_as(ex, url, size, true)
}

/// One GET of `url` through `ex`, its body discarded (counted in the instance) or kept (and
/// handed to the host in the outcome): MiB per second.
fn download_rate_as(ex: &mut DrivenExecutor, url: &str, size: f64, discard: bool) -> f64 {
    let start = Instant::now();
    let o = ex
        .run(
            driven::HttpMethod::Get,
            json!({ "url": url, "discard_body": discard, "max_response_body": 200u64 << 20 }),
        )
        .unwrap();
    assert_eq!(o.body_length as f64, size);
    size / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

/// `n` sequential keep-alive GETs of `url` through `ex`: requests per second.
fn driven_gets(ex: &mut DrivenExecutor, url: &str, n: usize) -> f64 {
    let start = Instant::now();
    driven_get_n(ex, json!({ "url": url, "discard_body": true }), n);
    n as f64 / start.elapsed().as_secs_f64()
}

/// This process's CPU time so far (user + system, every thread), in seconds: the kernel's
/// CPU clock for the process, in nanoseconds (`/proc/self/stat` counts in 10 ms ticks: over a
/// row's 2,000 requests that alone is 5 us a request either way).
fn own_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// A native rustls client on the same crypto (ring), with session resumption as ours has.
fn native_tls_config(ca_file: &std::path::Path) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// One GET over a native rustls connection (new or kept); the body's length.
fn native_tls_get(
    s: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    path: &str,
) -> usize {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed in the response");
        buf.extend_from_slice(&chunk[..n]);
        let mut h = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut h);
        if let Ok(httparse::Status::Complete(at)) = resp.parse(&buf) {
            let len: usize = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap();
            let mut got = buf.len() - at;
            while got < len {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0);
                got += n;
            }
            return len;
        }
    }
}

fn native_tls_connect(
    config: &std::sync::Arc<rustls::ClientConfig>,
    port: u16,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = tcp.set_nodelay(true);
    let conn =
        rustls::ClientConnection::new(config.clone(), "127.0.0.1".try_into().unwrap()).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Rows 8: HTTPS against nginx with TLS, ours (the artifact, TLS on the host through wasi:tls)
/// beside a native rustls client with the same crypto in the same process.
fn https(t: &mut Table, quick: bool, reps: usize) {
    let Some((ng, ca_file, dir, big_plain_port)) = nginx_tls() else {
        t.row(
            "7",
            "HTTPS against nginx",
            "-".into(),
            "nginx not installed".into(),
            "-".into(),
            "",
        );
        return;
    };
    let settings = compose::tls::TlsSettings {
        ca_files: vec![ca_file.clone()],
        ..Default::default()
    };
    let config = native_tls_config(&ca_file);
    let port = ng.port;
    let plain_ng = nginx();
    let plain_port = plain_ng.as_ref().map_or(0, |n| n.port);
    let url = format!("https://127.0.0.1:{port}/");

    // 7a: a new connection (and handshake) per request: client CPU per request.
    let n = if quick { 20 } else { 2_000 };
    let mut ex = DrivenExecutor::with_tls(&settings);
    let ours = || cpu_per_new_connection(&mut ex, &url, n);
    let native = || {
        let c = own_cpu();
        for _ in 0..n {
            let mut s = native_tls_connect(&config, port);
            native_tls_get(&mut s, "/");
        }
        (own_cpu() - c) / n as f64 * 1e6
    };
    let mut ours = ours;
    let mut native = native;
    let (o, r) = ab(reps, &mut ours, &mut native);
    // The same through the artifact over plain HTTP: what is not TLS in the figure above.
    let plain = format!("http://127.0.0.1:{}/", plain_port);
    let mut ex_plain = DrivenExecutor::new();
    let p = stat(
        (0..reps)
            .map(|_| cpu_per_new_connection(&mut ex_plain, &plain, n))
            .collect(),
    );
    t.row(
        "8a",
        &format!("plain HTTP through the artifact, a connection per request, {n} requests: client CPU per request"),
        fmt(&p, "us"),
        format!("ours over TLS {}", fmt(&o, "us")),
        format!("TLS adds {:.0} us", o.median - p.median),
        "reported",
    );
    t.row(
        "8a",
        &format!("HTTPS, a TLS handshake per request (resumed, as both clients do), {n} requests: client CPU per request"),
        fmt(&o, "us"),
        format!("native rustls (ring) {}", fmt(&r, "us")),
        format!("{:.2} x native", o.median / r.median),
        &t.judged("<= 1.5 x native rustls", o.median <= 1.5 * r.median),
    );

    // 7b: sequential keep-alive GETs over TLS.
    let n = if quick { 50 } else { 5_000 };
    let mut ex = DrivenExecutor::with_tls(&settings);
    let mut ours = || driven_gets(&mut ex, &url, n);
    let mut native = || {
        let mut s = native_tls_connect(&config, port);
        let start = Instant::now();
        for _ in 0..n {
            native_tls_get(&mut s, "/");
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let (o, r) = ab(reps, &mut ours, &mut native);
    t.row(
        "8b",
        &format!("HTTPS sequential keep-alive GETs to nginx, {n} requests"),
        fmt(&o, "req/s"),
        format!("native rustls {}", fmt(&r, "req/s")),
        format!("{:.2} x native", o.median / r.median),
        &t.judged(">= 0.5 x native rustls", o.median >= 0.5 * r.median),
    );

    // 7c: 100 MB over TLS.
    let big = format!("https://127.0.0.1:{port}/big");
    let mut ex = DrivenExecutor::with_tls(&settings);
    let size = 100.0 * 1024.0 * 1024.0;
    let reps_bulk = if quick { 1 } else { 3 };
    let mut ours = || download_rate(&mut ex, &big, size);
    let mut native = || {
        let mut s = native_tls_connect(&config, port);
        let start = Instant::now();
        assert_eq!(native_tls_get(&mut s, "/big") as f64, size);
        size / (1 << 20) as f64 / start.elapsed().as_secs_f64()
    };
    let (o, r) = ab(reps_bulk, &mut ours, &mut native);
    // The same file over plain HTTP through the artifact: what is not TLS in the figure.
    let big_plain = format!("http://127.0.0.1:{big_plain_port}/big");
    let mut ex_plain = DrivenExecutor::new();
    let p = stat(
        (0..reps_bulk)
            .map(|_| download_rate(&mut ex_plain, &big_plain, size))
            .collect(),
    );
    // The same on wasmtime-wasi's TCP: what the own TCP buys a download (its reads go straight
    // into the guest's memory while the stream receives in bulk).
    let mut ex_wasmtime =
        DrivenExecutor::with(&compose::tls::TlsSettings::default(), SocketsImpl::Wasmtime);
    let own_theirs = ab(
        reps_bulk,
        || download_rate(&mut ex_plain, &big_plain, size),
        || download_rate(&mut ex_wasmtime, &big_plain, size),
    );
    tcp_row(
        t,
        "8c",
        "plain HTTP download of 100 MB through the artifact",
        own_theirs,
        "MiB/s",
        true,
    );
    // The same, the body kept: what the instance did with a discarded body before it was
    // only counted (kept in its memory), and the copy to the host besides.
    let mut ex_kept = DrivenExecutor::new();
    let kept = stat(
        (0..reps_bulk)
            .map(|_| download_rate_as(&mut ex_kept, &big_plain, size, false))
            .collect(),
    );
    t.row(
        "8c",
        "plain HTTP download of 100 MB through the artifact, the body kept and handed over",
        fmt(&kept, "MiB/s"),
        format!("discarded (counted) {}", fmt(&p, "MiB/s")),
        format!("{:.2} x discarded", kept.median / p.median),
        "reported",
    );
    t.row(
        "8c",
        "plain HTTP download of the same 100 MB through the artifact",
        fmt(&p, "MiB/s"),
        format!("ours over TLS {}", fmt(&o, "MiB/s")),
        format!("{:.2} x plain", o.median / p.median),
        "reported",
    );
    t.row(
        "8c",
        "HTTPS download of 100 MB from nginx",
        fmt(&o, "MiB/s"),
        format!("native rustls {}", fmt(&r, "MiB/s")),
        format!("{:.2} x native", o.median / r.median),
        &t.judged(">= 0.8 x native rustls", o.median >= 0.8 * r.median),
    );
    // What reading TLS plaintext straight into the guest's list buys: the same download
    // with wasmtime-wasi's `read` linked instead.
    let mut ex_copying = DrivenExecutor::with_copying_tls_reads(&settings);
    let mut copying = || download_rate(&mut ex_copying, &big, size);
    let (direct, copied) = ab(reps_bulk, &mut ours, &mut copying);
    t.row(
        "8c",
        "HTTPS download of 100 MB: TLS reads into the guest's memory against wasmtime-wasi's \
         `read` (a copy more)",
        fmt(&direct, "MiB/s"),
        format!("copying {}", fmt(&copied, "MiB/s")),
        format!("{:.2} x copying", direct.median / copied.median),
        "reported",
    );
    drop(ng);
    let _ = std::fs::remove_dir_all(dir);
}

/// Row 8d: HTTPS keep-alive load at 64 and 256 users, the scheduler (its own scenario's
/// `tls:` trusting the bench CA) against wrk (OpenSSL) and oha (rustls) on the same nginx.
fn https_load(t: &mut Table, quick: bool, reps: usize) {
    let Some((ng, ca_file, dir, _)) = nginx_tls() else {
        return;
    };
    let Some(scheduler) = scheduler_binary(quick) else {
        t.row(
            "8d",
            "HTTPS load",
            "-".into(),
            "build `scheduler` first (just bench does)".into(),
            "-".into(),
            "",
        );
        return;
    };
    let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let oha = oha_binary();
    let secs = if quick { 1 } else { 5 };
    let url = format!("https://127.0.0.1:{}/", ng.port);
    let json = dir.join("r.json");
    for users in [64u32, 256] {
        let text = format!(
            "version: \"1.0\"\nname: load\ntls: {{ ca_file: {} }}\n\
load:\n  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: {users} }} ] }}\n  user_lifetime: {{ mode: loop, iterations: 0, duration: {secs}s }}\n  concurrency: {{ max_concurrent_users: {users} }}\n\
actions:\n  actions: [ {{ id: get, call: get, with: {{ url: \"{url}\", discard_body: true, discard_headers: true }} }} ]\n\
workflows:\n  nodes: [ {{ id: start, action: get, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]\n",
            ca_file.display()
        );
        let path = dir.join(format!("https-{users}.yaml"));
        std::fs::write(&path, text).unwrap();
        let ours = || {
            let mut cmd = Command::new(&scheduler);
            cmd.args(["run", path.to_str().unwrap()]);
            let v = scheduler_report(cmd, &json);
            assert_eq!(v["totals"]["failed"].as_f64(), Some(0.0));
            report_rate(&v)
        };
        let wrk_run = || {
            let Some(wrk) = wrk else { return 0.0 };
            let out = Command::new(wrk)
                .args([
                    "-t",
                    "2",
                    "-c",
                    &users.to_string(),
                    "-d",
                    &format!("{secs}s"),
                    &url,
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| l.starts_with("Requests/sec:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        let oha_run = || {
            let Some(oha) = &oha else { return 0.0 };
            let out = Command::new(oha)
                .args(["-z", &format!("{secs}s"), "-c", &users.to_string()])
                .args(["--no-tui", "--insecure", "--output-format", "json", &url])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0)
        };
        let (mut xo, mut xw, mut xh) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            xo.push(ours());
            xw.push(wrk_run());
            xh.push(oha_run());
        }
        let (o, w, h) = (stat(xo), stat(xw), stat(xh));
        let what = format!("HTTPS keep-alive load on nginx, {users} users, {secs} s");
        if w.median > 0.0 {
            t.row(
                "8d",
                &what,
                fmt(&o, "req/s"),
                format!("wrk (OpenSSL) {}", fmt(&w, "req/s")),
                format!("{:.2} x wrk", o.median / w.median),
                &t.judged(">= 0.5 x wrk", o.median >= 0.5 * w.median),
            );
        }
        if h.median > 0.0 {
            t.row(
                "8d",
                &what,
                fmt(&o, "req/s"),
                format!("oha (rustls) {}", fmt(&h, "req/s")),
                format!("{:.2} x oha", o.median / h.median),
                "reported",
            );
        }
    }
    drop(ng);
    let _ = std::fs::remove_dir_all(dir);
}

/// Rows 9: etcd as the address authority. Block claims per second (the scheduler's claim: a
/// create-if-absent transaction under a lease, through the JSON gateway), and three segments
/// sharing a pool through etcd against one process running the whole scenario.
fn etcd_rows(t: &mut Table, quick: bool, ng: &Nginx) {
    use base64::Engine as _;
    let etcd = integration_tests::etcd::binary()
        .and_then(|bin| integration_tests::etcd::Etcd::start(&bin, "bench").ok());
    let Some(etcd) = etcd else {
        t.row(
            "9",
            "etcd",
            "-".into(),
            "etcd not installed".into(),
            "-".into(),
            "",
        );
        return;
    };
    let url = etcd.url.clone();
    let lease =
        integration_tests::etcd::post(&url, "/v3/lease/grant", r#"{"TTL": 60}"#).unwrap()["ID"]
            .as_str()
            .unwrap()
            .to_string();
    let n = if quick { 50 } else { 2_000 };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let start = Instant::now();
    for i in 0..n {
        let key = b64(&format!("/scheduler/ipam/v1/bench/{i}"));
        let body = json!({
            "compare": [{ "key": key, "result": "EQUAL", "target": "CREATE", "create_revision": "0" }],
            "success": [{ "request_put": { "key": key, "value": b64("bench"), "lease": lease } }],
        });
        let v = integration_tests::etcd::post(&url, "/v3/kv/txn", &body.to_string()).unwrap();
        assert_eq!(v["succeeded"], true);
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    t.row(
        "9a",
        &format!("etcd block claims (create-if-absent under a lease), {n} sequential"),
        format!("{rate:.0} claims/s"),
        "-".into(),
        "-".into(),
        "reported",
    );
    // 9b: 3 segments with --etcd against one process, the same scenario and nginx.
    let Some(scheduler) = scheduler_binary(quick) else {
        return;
    };
    let secs = if quick { 1 } else { 5 };
    let dir = std::env::temp_dir().join(format!("bench-etcd-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.yaml");
    std::fs::write(
        &path,
        format!(
            "version: \"1.0\"\nname: shared\nworkbook:\n  ip_pools: [ {{ id: p, ranges: [\"127.0.90.0/24\"] }} ]\n\
load:\n  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 96, ip_pool_override: p }} ] }}\n  user_lifetime: {{ mode: loop, iterations: 0, duration: {secs}s }}\n  user_resources:\n    ip_binding: {{ enabled: true, pool_id: p, strategy: per_user, release_on: user_exit }}\n\
actions:\n  actions: [ {{ id: get, call: get, with: {{ url: \"http://127.0.0.1:{}/\", bind_ip: \"{{{{user.allocated_ip}}}}\", discard_body: true }} }} ]\n\
workflows:\n  nodes: [ {{ id: start, action: get, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]\n",
            ng.port
        ),
    )
    .unwrap();
    let one = || {
        let mut one = Command::new(&scheduler);
        one.args(["run", path.to_str().unwrap()]);
        report_rate(&scheduler_report(one, &dir.join("one.json")))
    };
    let segments = || segments_rate(&scheduler, &path, &url, &dir);
    // Alternately, a few times: one run of each is mostly the machine's mood.
    let (total, single) = ab(if quick { 1 } else { 3 }, segments, one);
    t.row(
        "9b",
        &format!("96 users with pool addresses, {secs} s: three segments sharing the pool through etcd, aggregate"),
        fmt(&total, "req/s"),
        format!("one process {}", fmt(&single, "req/s")),
        format!("{:.2} x one process", total.median / single.median),
        &t.judged(
            ">= 0.95 x one process",
            total.median >= 0.95 * single.median,
        ),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three `run --segment I/3 --etcd` processes of the scenario at `path` at once: the sum of
/// their request rates.
fn segments_rate(scheduler: &str, path: &std::path::Path, url: &str, dir: &std::path::Path) -> f64 {
    // The machine's cores shared out, as three machines' would not be contended for.
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.div_ceil(3);
    let children: Vec<_> = (0..3)
        .map(|i| {
            let json = dir.join(format!("seg{i}.json"));
            let child = Command::new(scheduler)
                .args([
                    "run",
                    path.to_str().unwrap(),
                    "--segment",
                    &format!("{i}/3"),
                ])
                .args(["--etcd", url, "--json", json.to_str().unwrap()])
                .env("SCHEDULER_THREADS", threads.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (child, json)
        })
        .collect();
    let mut total = 0.0;
    for (child, json) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        total +=
            report_rate(&serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap());
    }
    total
}

/// Row 10: a soak. 50 users of `per_task` addresses (a new address, and connection, every
/// task) against nginx for `minutes`; the scheduler's open fds and RSS sampled as it runs.
/// Flat figures mean releasing an address closes its connections and nothing else leaks.
fn soak(t: &mut Table, quick: bool, ng: &Nginx) {
    let Some(scheduler) = scheduler_binary(quick) else {
        return;
    };
    let minutes: u64 = env_or("SOAK_MINUTES", if quick { 1 } else { 10 });
    let secs = minutes * 60;
    let dir = std::env::temp_dir().join(format!("bench-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("soak.yaml");
    std::fs::write(
        &path,
        format!(
            "version: \"1.0\"\nname: soak\nworkbook:\n  ip_pools: [ {{ id: p, ranges: [\"127.0.96.0/22\"] }} ]\n\
load:\n  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 50, ip_pool_override: p }} ] }}\n  user_lifetime: {{ mode: loop, iterations: 0, duration: {secs}s, think_time: 10ms }}\n  user_resources:\n    ip_binding: {{ enabled: true, pool_id: p, strategy: per_task, release_on: task_end }}\n\
actions:\n  actions: [ {{ id: get, call: get, with: {{ url: \"http://127.0.0.1:{}/\", bind_ip: \"{{{{user.allocated_ip}}}}\", discard_body: true }} }} ]\n\
workflows:\n  nodes: [ {{ id: start, action: get, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]\n",
            ng.port
        ),
    )
    .unwrap();
    let json = dir.join("soak.json");
    let mut child = Command::new(&scheduler)
        .args([
            "run",
            path.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let sample = || {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        (fds, rss_kib(pid) / 1024.0)
    };
    // The first sample a tenth of the way in (warmed up), then every tenth.
    let mut samples = Vec::new();
    for i in 1..=9u64 {
        thread::sleep(
            std::time::Duration::from_secs(secs * i / 10)
                - std::time::Duration::from_secs(secs * (i - 1) / 10),
        );
        samples.push(sample());
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the soak run failed");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let max_fds = samples.iter().map(|s| s.0).max().unwrap_or(0);
    t.row(
        "10",
        &format!(
            "soak: 50 users, per_task addresses (a new connection each task), {minutes} min: {} requests, {} failed",
            v["totals"]["requests"], v["totals"]["failed"]
        ),
        format!(
            "fds {} -> {} (max {max_fds}), RSS {:.1} -> {:.1} MiB",
            first.0, last.0, first.1, last.1
        ),
        "-".into(),
        format!("RSS {:.2} x", last.1 / first.1.max(1.0)),
        &t.judged("flat: RSS <= 1.1 x, fds <= 2 x", last.1 <= 1.1 * first.1 && last.0 <= 2 * first.0.max(1)),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Row 11: `decompress`. The inflater (puff, a bit at a time, chosen for size) against flate2
/// natively, and what decoding adds to a GET of the same gzip body through the artifact.
fn gzip(t: &mut Table, quick: bool, reps: usize) {
    let size = if quick { 1 << 20 } else { 8 << 20 };
    // JSON records with varied words and numbers: about 5x compressible, as API bodies are.
    let words = [
        "id", "name", "alpha", "beta", "status", "ok", "pending", "items", "value",
    ];
    let mut page = Vec::with_capacity(size + 64);
    let mut x = 0x2545_f491_u64;
    while page.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w = words[(x % 9) as usize];
        page.extend(format!("{{\"{w}\": {}, \"k\": \"{w}{}\"}},\n", x % 100_000, x >> 50).bytes());
    }
    page.truncate(size);
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&page).unwrap();
        e.finish().unwrap()
    };
    let mb = size as f64 / (1 << 20) as f64;
    let (ours, theirs) = ab(
        reps,
        || {
            let s = Instant::now();
            let out = http_core::encoding::decode("gzip", gz.clone(), u64::MAX).unwrap();
            assert_eq!(out.len(), size);
            mb / s.elapsed().as_secs_f64()
        },
        || {
            let s = Instant::now();
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out.len(), size);
            mb / s.elapsed().as_secs_f64()
        },
    );
    t.row(
        "11",
        &format!(
            "gzip decode, native, {} MiB text ({:.1}x compressed)",
            size >> 20,
            size as f64 / gz.len() as f64
        ),
        fmt(&ours, "MiB/s"),
        format!("flate2 (miniz_oxide) {}", fmt(&theirs, "MiB/s")),
        format!("{:.2} x flate2", ours.median / theirs.median),
        "reported (size before speed: 5 KB of artifact)",
    );
    let body = gz.clone();
    let server = integration_tests::http_server::serve("127.0.0.1:0", None, move |_| {
        integration_tests::http_server::Reply::Full(
            200,
            vec![("Content-Encoding".into(), "gzip".into())],
            body.clone(),
        )
    });
    let url = server.url("/page");
    let mut ex = Executor::new();
    let mut get = |decompress: bool| {
        let s = Instant::now();
        let o = ex
            .run(
                HttpMethod::Get,
                json!({ "url": url, "decompress": decompress, "max_response_body": 1u64 << 30 }),
                vec![],
            )
            .unwrap();
        assert_eq!(o.body.len(), if decompress { size } else { gz.len() });
        s.elapsed().as_secs_f64() * 1000.0
    };
    let (mut plain, mut decoded) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        plain.push(get(false));
        decoded.push(get(true));
    }
    let (plain, decoded) = (stat(plain), stat(decoded));
    t.row(
        "11",
        &format!(
            "GET of the same {} KiB gzip body through the artifact, decompress on",
            gz.len() >> 10
        ),
        format!(
            "{} ({:.0} MiB/s decoded)",
            fmt(&decoded, "ms"),
            mb / (decoded.median - plain.median).max(0.001) * 1000.0
        ),
        format!("decompress off {}", fmt(&plain, "ms")),
        format!("{:.2} x off", decoded.median / plain.median),
        "reported",
    );
}

/// Row 12: 50,000 users alive at once on this machine, each with its own address from a /16
/// and its own kept-alive connection to nginx, every request ok. A process may hold 20,000
/// fds here (the hard limit; a user keeps a connection), so one `scheduler run --workers N`
/// command spreads the users over N segment processes of at most 17,000 (each takes its
/// slice of the pool; their memories come from the arena, about 2 mappings a user) and merges
/// them. Users are held by a
/// think time between their two GETs; the figures are sampled when every process has all its
/// users active.
fn users_at_once(t: &mut Table, quick: bool) {
    let Some(scheduler) = scheduler_binary(quick) else {
        t.row(
            "12",
            "users at once",
            "-".into(),
            "build `scheduler` first".into(),
            "-".into(),
            "",
        );
        return;
    };
    let Some(bin) = integration_tests::nginx::binary() else {
        t.row(
            "12",
            "users at once",
            "-".into(),
            "nginx not installed".into(),
            "-".into(),
            "",
        );
        return;
    };
    let total: u32 = env_or("USERS", if quick { 2_000 } else { 50_000 });
    let per = 17_000.min(total);
    let n = total.div_ceil(per);
    // Long enough that no user ends its pass before the last has started (at 1,500 a second
    // the spawning alone takes 33 s, and on two cores about 56).
    let think = if quick { 8 } else { 100 };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("bench-users-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let d = dir.display();
    // Four workers sharing the port (reuseport): one worker may hold 20,000 fds.
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process on;\nworker_processes 4;\nworker_rlimit_nofile 20000;\n\
             error_log {d}/logs/error.log warn;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 18000; }}\nhttp {{\n    client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n    access_log off;\n    keepalive_timeout 300s;\n\
             keepalive_requests 1000000;\n    server {{ listen 127.0.0.1:{port} reuseport backlog=65535; \
             location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
        ),
    )
    .unwrap();
    let mut nginx = Command::new(&bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .spawn()
        .unwrap();
    let up = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() && up.elapsed().as_secs() < 10 {
        thread::sleep(std::time::Duration::from_millis(50));
    }
    let scenario = dir.join("users.yaml");
    std::fs::write(
        &scenario,
        format!(
            r#"version: "1.0"
name: users-at-once
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.1.0.0/16"] }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: {total} }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2, think_time: {think}s }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
  concurrency: {{ max_concurrent_users: {total}, spawn_rate_limit: {rate}/s }}
actions:
  actions:
    - {{ id: hello, call: get, with: {{ url: "http://127.0.0.1:{port}/", timeouts: {{ connect_ms: 30000, first_byte_ms: 60000 }} }} }}
workflows:
  nodes:
    - {{ id: start, action: hello, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#,
            rate = 1500
        ),
    )
    .unwrap();
    let started = Instant::now();
    // One command: `run --workers N` starts the N segment processes and merges them.
    let merged = dir.join("merged.json");
    let mut parent = Command::new(&scheduler)
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--workers",
            &n.to_string(),
        ])
        .arg("--json")
        .arg(&merged)
        .arg("--out")
        .arg(format!("json={}", dir.join("o.jsonl").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Each worker's users active, from the last interval it wrote (its stream is FILE.I,
    // written to `.FILE.I.*.partial` beside it until the run ends).
    let stream_of = |i: u32| -> String {
        let name = format!("o.jsonl.{i}");
        let partial = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&format!(".{name}.")) && n.ends_with(".partial")
            });
        let path = partial.map_or(dir.join(&name), |e| e.path());
        std::fs::read_to_string(path).unwrap_or_default()
    };
    let active = |i: u32| -> u64 {
        stream_of(i)
            .lines()
            .rev()
            .find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["type"] == "interval").then(|| v["users_active"].as_u64().unwrap_or(0))
            })
            .unwrap_or(0)
    };
    let proc_figures = |pid: u32| -> (f64, usize) {
        let maps = std::fs::read(format!("/proc/{pid}/maps"))
            .map_or(0, |m| m.iter().filter(|&&b| b == b'\n').count());
        (rss_kib(pid), maps)
    };
    // The workers: the processes whose parent is the command.
    let workers = |parent: u32| -> Vec<u32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                    st.rsplit_once(") ")
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                        == Some(parent)
                })
            })
            .collect()
    };
    // Sample until every worker has all its users active (or the think time is over).
    let mut peak = (0u64, 0.0f64, 0usize, 0.0f64);
    while started.elapsed().as_secs() < think + 60 {
        thread::sleep(std::time::Duration::from_millis(500));
        let held: u64 = (0..n).map(active).sum();
        if held > peak.0 {
            let (rss, maps) = workers(parent.id())
                .into_iter()
                .map(proc_figures)
                .fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            peak = (held, rss, maps, started.elapsed().as_secs_f64());
        }
        if held >= u64::from(total) {
            break;
        }
    }
    let ok = parent.wait().map(|s| s.success()).unwrap_or(false);
    // The master stops its workers (a killed master would leave them running).
    let _ = Command::new(&bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-s", "stop"])
        .status();
    let _ = nginx.wait();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap_or_default())
            .unwrap_or_default();
    let requests = v["totals"]["requests"].as_u64().unwrap_or(0);
    let failed = v["totals"]["failed"].as_u64().unwrap_or(u64::MAX);
    let sources = v["by_source"].as_object().map_or(0, |m| m.len());
    let (held, rss_kib, maps, at) = peak;
    t.row(
        "12",
        &format!(
            "users alive at once: {total} users from one `scheduler run --workers {n}` command, own address (/16) and connection each; {requests} requests, {failed} failed, {sources} source addresses"
        ),
        format!(
            "{held} held at {at:.0} s; RSS {:.0} KiB a user ({:.2} GiB in all), {:.1} mappings a user",
            rss_kib / held.max(1) as f64,
            rss_kib / 1024.0 / 1024.0,
            maps as f64 / held.max(1) as f64
        ),
        "k6: about 3 MB a VU".into(),
        format!("{:.3} x k6's memory a user", rss_kib / held.max(1) as f64 / 3072.0),
        &t.judged(
            "all held at once, every request ok",
            ok && held >= u64::from(total) && failed == 0 && requests == 2 * u64::from(total),
        ),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A process's resident memory in KiB (`/proc/PID/status`), 0 if it is gone.
fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
