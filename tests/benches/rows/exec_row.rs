//! Row 15: `scheduler exec` of one GET as a curl user runs it, a new process each time, beside
//! curl against the same nginx: with the compiled artifact cached (every run after the first
//! of a build) and from an empty cache (the first, which compiles it).

use std::path::Path;
use std::time::Instant;

use super::*;

/// Wall time of one command, in milliseconds; it must succeed.
fn wall_ms(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ms
}

fn exec(scheduler: &str, url: &str, cache: &Path) -> Command {
    let mut cmd = Command::new(scheduler);
    cmd.args(["exec", "-s", "-o", "/dev/null", url])
        .env("SCHEDULER_CACHE_DIR", cache)
        .env_remove("SCHEDULER_EXECUTOR");
    cmd
}

pub fn exec_startup(t: &mut Table, quick: bool, reps: usize, ng: &Nginx) {
    let curl = ["/usr/bin/curl", "/usr/local/bin/curl"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let (Some(curl), Some(scheduler)) = (curl, scheduler_binary(quick)) else {
        let what = "scheduler exec of one GET, a process each";
        t.row(
            "15",
            what,
            "-".into(),
            "curl or scheduler missing".into(),
            "-".into(),
            "reported",
        );
        return;
    };
    let url = format!("http://127.0.0.1:{}/", ng.port);
    let dir = std::env::temp_dir().join(format!("bench-exec-{}", std::process::id()));
    let cache = dir.join("cache");
    // Filled once before the timed runs.
    wall_ms(&mut exec(&scheduler, &url, &cache));
    let runs = if quick { 2 } else { 20 };
    let (ours, theirs) = ab(
        runs.max(reps),
        || wall_ms(&mut exec(&scheduler, &url, &cache)),
        || wall_ms(Command::new(curl).args(["-s", "-o", "/dev/null", &url])),
    );
    t.row(
        "15",
        "`scheduler exec` of one GET to nginx, a new process each, wall time (compiled artifact cached)",
        fmt(&ours, "ms"),
        format!("curl {}", fmt(&theirs, "ms")),
        format!("{:.2} x curl", ours.median / theirs.median),
        "reported",
    );
    let mut n = 0;
    let cold = ab(
        reps.min(3),
        || {
            n += 1;
            wall_ms(&mut exec(&scheduler, &url, &dir.join(format!("empty-{n}"))))
        },
        || wall_ms(&mut exec(&scheduler, &url, &cache)),
    );
    t.row(
        "15",
        "the same, the first after a build: an empty cache (Cranelift compiles the artifact)",
        fmt(&cold.0, "ms"),
        format!("cached {}", fmt(&cold.1, "ms")),
        format!("{:.1} x cached", cold.0.median / cold.1.median),
        "reported",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
