//! Nothing lost on the way out: the signals production sends end a run with every output
//! written and every address released; output files are whole or untouched (SIGKILL, a full
//! disk); output paths are checked before the first request; a closed stdout costs nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::http_server::{Reply, serve};
use serde_json::Value;

use crate::common::*;

/// Users that loop without end (200 ms requests), from a pool, so that a run must be stopped.
fn endless(port: u16, pool: &str) -> String {
    format!(
        r#"
version: "1.0"
name: endless
workbook:
  ip_pools: [ {{ id: p, ranges: ["{pool}"] }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 4 }}, {{ at_second: 60, spawn_users: 4 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 0, think_time: 20ms }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p }} }}
actions:
  actions: [ {{ id: hit, call: get, with: {{ url: "http://127.0.0.1:{port}/x" }} }} ]
workflows:
  nodes: [ {{ id: n, action: hit }} ]
"#
    )
}

fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal}");
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// SIGTERM and SIGHUP do what Ctrl-C does: stop spawning, drain, write every output, release
/// the addresses (in the state dir too), and exit 143 and 129.
#[test]
fn sigterm_and_sighup_end_a_run_with_everything_written() {
    let server = serve("127.0.0.1:0", None, |_| {
        std::thread::sleep(Duration::from_millis(200));
        Reply::ok("ok")
    });
    for (signal, code, pool) in [
        ("TERM", 143, "127.0.46.0/29"),
        ("HUP", 129, "127.0.47.0/29"),
    ] {
        let dir = tmp(&format!("sig{signal}"));
        let path = scenario_file(&dir, &endless(server.addr.port(), pool));
        let (json, result, html) = (dir.join("r.json"), dir.join("r.result"), dir.join("r.html"));
        let state = dir.join("state");
        let child = spawn_run(
            &path,
            &[
                "--json",
                json.to_str().unwrap(),
                "--result",
                result.to_str().unwrap(),
                "--report",
                html.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
            ],
        );
        // The signal comes once every user of the first phase is sending (however long the
        // run took to start).
        let (before, deadline) = (
            server.stats.requests(),
            Instant::now() + Duration::from_secs(30),
        );
        while server.stats.requests() < before + 8 {
            assert!(Instant::now() < deadline, "the run never sent its requests");
            std::thread::sleep(Duration::from_millis(20));
        }
        kill(child.id(), signal);
        let sent = Instant::now();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "SIG{signal}: {err}");
        assert!(sent.elapsed() < Duration::from_secs(12), "within the drain");
        assert!(err.contains(&format!("stopping on SIG{signal}")), "{err}");
        let r = read_json(&json);
        assert_eq!(r["interrupted"], true, "{r}");
        assert_eq!(r["users"]["spawned"], 4, "the second phase never came");
        assert!(r["totals"]["requests"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["pools"][0]["allocated"], 0, "released: {r}");
        assert_eq!(read_json(&result)["format"], "scheduler-result/1");
        assert!(std::fs::read_to_string(&html).unwrap().contains("</html>"));
        assert_eq!(
            persisted_pools(&state).stats("p").unwrap().allocated,
            0,
            "persisted as released"
        );
    }
}

/// A second signal cuts the drain: requests held by the server are cut off at once and
/// counted as interrupted.
#[test]
fn a_second_signal_cuts_the_drain() {
    let arrived = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let a = arrived.clone();
    let server = serve("127.0.0.1:0", None, move |_| {
        a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(30));
        Reply::ok("late")
    });
    let dir = tmp("second-signal");
    let path = scenario_file(&dir, &endless(server.addr.port(), "127.0.48.0/29"));
    let json = dir.join("r.json");
    let child = spawn_run(&path, &["--json", json.to_str().unwrap()]);
    // Every user's request is held by the server (however loaded the machine is).
    let waited = Instant::now();
    while arrived.load(std::sync::atomic::Ordering::SeqCst) < 4
        && waited.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(child.id(), "TERM");
    std::thread::sleep(Duration::from_millis(300));
    kill(child.id(), "TERM");
    let sent = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    let r = read_json(&json);
    assert_eq!(r["errors"]["interrupted"], 4, "{r}");
}

/// An output path that cannot be written is refused before the first request.
#[test]
fn output_paths_are_checked_before_the_first_request() {
    let (server, log) = recording_target();
    let dir = tmp("out-paths");
    let path = scenario_file(&dir, &endless(server.addr.port(), "127.0.49.0/29"));
    let missing = dir.join("no-such-dir").join("f");
    for flag in ["--json", "--result", "--report", "--metrics"] {
        let out = run(&[
            "run",
            path.to_str().unwrap(),
            flag,
            missing.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(flag) && err.contains("no directory"),
            "{flag}: {err}"
        );
    }
    let out_flag = format!("json={}", missing.display());
    let out = run(&["run", path.to_str().unwrap(), "--out", &out_flag]);
    assert_eq!(out.status.code(), Some(2));
    let as_dir = run(&[
        "run",
        path.to_str().unwrap(),
        "--json",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(as_dir.status.code(), Some(2));
    assert!(log.lock().unwrap().is_empty(), "nothing was sent");
}

/// A short run whose outputs overwrite complete earlier ones, killed with SIGKILL at points
/// spread over its life: each file is the old one or a whole new one, never torn.
#[test]
fn sigkill_never_leaves_a_torn_output() {
    let (server, _log) = recording_target();
    let dir = tmp("sigkill");
    let s = endless(server.addr.port(), "127.0.50.0/29")
        .replace("iterations: 0", "iterations: 30")
        .replace(
            "at_second: 60, spawn_users: 4",
            "at_second: 0, spawn_users: 4",
        );
    let path = scenario_file(&dir, &s);
    let (json, result) = (dir.join("r.json"), dir.join("r.result"));
    let args = |p: &Path| {
        vec![
            "run".to_string(),
            p.display().to_string(),
            "--json".into(),
            json.display().to_string(),
            "--result".into(),
            result.display().to_string(),
        ]
    };
    let first = Command::new(BIN).args(args(&path)).output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let full = Instant::now();
    let again = Command::new(BIN).args(args(&path)).output().unwrap();
    assert!(again.status.success());
    let whole = full.elapsed();
    for i in 0..16u32 {
        let child = Command::new(BIN)
            .args(args(&path))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole * i / 14);
        kill(child.id(), "KILL");
        let _ = child.wait_with_output();
        for f in [&json, &result] {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(
                serde_json::from_str::<Value>(&text).is_ok(),
                "try {i}: {} is torn ({} bytes)",
                f.display(),
                text.len()
            );
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    // A killed process may leave its hidden temporary file; never a torn output.
    assert!(
        leftovers.iter().all(|n| n.starts_with('.')),
        "{leftovers:?}"
    );
}

/// On a full disk the earlier file stays whole and the run says it could not write.
#[test]
fn a_full_disk_leaves_the_earlier_file_whole() {
    let (server, _log) = recording_target();
    let dir = tmp("full-disk");
    let mnt = dir.join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=16k",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("REQUIRE_TMPFS").is_err(),
            "REQUIRE_TMPFS is set but a tmpfs could not be mounted"
        );
        eprintln!("SKIPPED: cannot mount a small tmpfs here (not root?)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    let json = mnt.join("r.json");
    std::fs::write(&json, "{\"earlier\": true}").unwrap();
    // Fill the rest of the disk.
    let _ = std::fs::write(mnt.join("filler"), vec![0u8; 64 * 1024]);
    let s = endless(server.addr.port(), "127.0.51.0/29")
        .replace("iterations: 0", "iterations: 2")
        .replace(
            "at_second: 60, spawn_users: 4",
            "at_second: 0, spawn_users: 4",
        );
    let path = scenario_file(&dir, &s);
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    // Either the check before the run or the write after it finds no room.
    assert!(matches!(out.status.code(), Some(1) | Some(2)), "{err}");
    assert!(
        err.contains("No space left") || err.contains("cannot write"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&json).unwrap(),
        "{\"earlier\": true}"
    );
}

/// `run ... | head -1` closes stdout (and stderr with 2>&1): the outputs are still written.
#[test]
fn a_closed_stdout_costs_no_output() {
    let (server, _log) = recording_target();
    let dir = tmp("closed-stdout");
    let s = endless(server.addr.port(), "127.0.52.0/29")
        .replace("iterations: 0", "iterations: 2")
        .replace(
            "at_second: 60, spawn_users: 4",
            "at_second: 0, spawn_users: 4",
        );
    let path = scenario_file(&dir, &s);
    let (json, result) = (dir.join("r.json"), dir.join("r.result"));
    let cmd = format!(
        "{BIN} run {} --json {} --result {} 2>&1 | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        path.display(),
        json.display(),
        result.display()
    );
    let out = Command::new("bash").args(["-c", &cmd]).output().unwrap();
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(code, "0", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read_json(&json)["totals"]["requests"], 16);
    assert_eq!(read_json(&result)["format"], "scheduler-result/1");
}

/// `/dev/null`, a link and a FIFO are written in place, never replaced by a rename.
#[test]
fn devices_and_links_are_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let (server, _log) = recording_target();
    let dir = tmp("in-place");
    let s = endless(server.addr.port(), "127.0.53.0/29")
        .replace("iterations: 0", "iterations: 1")
        .replace(
            "at_second: 60, spawn_users: 4",
            "at_second: 0, spawn_users: 4",
        );
    let path = scenario_file(&dir, &s);
    let real = dir.join("real.json");
    std::fs::write(&real, "old").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--json",
        link.to_str().unwrap(),
        "--result",
        "/dev/null",
        "--out",
        "json=/dev/null",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("http://127.0.0.1:{}/", server.addr.port());
    let out = run(&["exec", &url, "-o", "/dev/null"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(
        null.file_type().is_char_device(),
        "/dev/null is still a device"
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read_json(&real)["totals"]["requests"], 8);
}
