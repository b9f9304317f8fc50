//! `run --workers N`: one machine's worth of users in N local segment processes (one process
//! may hold only so many descriptors and mappings), merged into one report and one exit code.

use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use super::args::RunArgs;
use super::finish::{EXIT_USAGE, check_outputs, finish, load, usage};
use crate::results::identity;
use crate::results::merge as results_file;

/// `--workers N` or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Auto,
    Count(u32),
}

pub fn parse_workers(s: &str) -> Result<Workers, String> {
    match s {
        "auto" => Ok(Workers::Auto),
        n => match n.parse::<u32>() {
            Ok(n @ 1..=256) => Ok(Workers::Count(n)),
            _ => Err(format!("{s:?}: expected auto or a count from 1 to 256")),
        },
    }
}

/// What the workers share with the parent's `run`: etcd and its flags, the run id.
pub struct Shared {
    pub etcd: super::args::EtcdArgs,
    pub run_id: Option<String>,
    /// `--env` pairs, passed on.
    pub env: Vec<(String, String)>,
    /// `--users`, `--duration`, `--iterations`, passed on.
    pub load: super::args::LoadArgs,
}

/// How many processes `auto` takes: enough that each one's users fit its descriptors.
fn auto_count(users: u64) -> u32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit on a local struct.
    let fds = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_max.max(lim.rlim_cur)
    } else {
        1024
    };
    // A user holds a connection; the process keeps 256 for itself, and a margin of a tenth.
    let per_process = (fds.saturating_sub(256) * 9 / 10).max(1);
    users.div_ceil(per_process).clamp(1, 256) as u32
}

/// `--out` for worker `i`: the same kind of stream to `FILE.I` (each worker streams its own
/// share as it goes; the merged report comes at the end).
fn worker_out(out: &crate::engine::Out, i: u32) -> String {
    let (kind, f) = match out {
        crate::engine::Out::Json(f) => ("json", f),
        crate::engine::Out::Csv(f) => ("csv", f),
    };
    format!("{kind}={}.{i}", f.display())
}

/// Start worker `i` of `n`: its segment, the run id, its result in `dir`, its streams.
fn worker(
    exe: &Path,
    path: &Path,
    (i, n): (u32, u32),
    dir: &Path,
    (shared, run_id): (&Shared, &str),
    outs: &[crate::engine::Out],
) -> std::io::Result<Child> {
    let mut cmd = Command::new(exe);
    // The machine's cores shared out between the workers, unless the threads are set already
    // (each worker then reads the setting, and refuses a bad one).
    if std::env::var_os("SCHEDULER_THREADS").is_none_or(|v| v.is_empty()) {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        cmd.env("SCHEDULER_THREADS", cores.div_ceil(n as usize).to_string());
    }
    cmd.arg("run")
        .arg(path)
        .args([
            "--segment",
            &format!("{i}/{n}"),
            "--run-id",
            run_id,
            "--result",
        ])
        .arg(dir.join(format!("w{i}.result")));
    for o in outs {
        cmd.arg("--out").arg(worker_out(o, i));
    }
    cmd.args(shared.load.to_args());
    for (name, value) in &shared.env {
        cmd.arg("--env").arg(format!("{name}={value}"));
    }
    let e = &shared.etcd;
    let c = &e.conn;
    if let Some(url) = &c.etcd {
        cmd.args(["--etcd", url])
            .arg(format!("--lease-ttl={}s", e.lease_ttl.as_secs_f64()))
            .arg(format!("--etcd-wait={}s", e.etcd_wait.as_secs_f64()));
        for (flag, file) in [
            ("--etcd-cacert", &c.etcd_cacert),
            ("--etcd-cert", &c.etcd_cert),
            ("--etcd-key", &c.etcd_key),
        ] {
            if let Some(f) = file {
                cmd.arg(flag).arg(f);
            }
        }
    }
    // A process group of its own: a terminal's Ctrl-C reaches the command alone, which
    // passes it on once (twice would cut the workers' drain).
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // A command killed outright (SIGKILL) takes its workers with it: each gets SIGTERM, and
    // drains and writes its result as for any SIGTERM.
    // SAFETY: prctl(2) only, between fork and exec; it allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("w{i}.out")))?)
        .stderr(std::fs::File::create(dir.join(format!("w{i}.err")))?)
        .spawn()
}

/// Wait for every worker, passing on SIGINT, SIGTERM and SIGHUP to all of them; the
/// signal that came, if one did.
async fn wait_all(children: &mut [Child]) -> Option<u8> {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!(
            "scheduler: cannot listen for signals; the workers get them from the terminal only"
        );
        while !children
            .iter_mut()
            .all(|c| c.try_wait().is_ok_and(|s| s.is_some()))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        return None;
    };
    let mut got = None;
    while !children
        .iter_mut()
        .all(|c| c.try_wait().is_ok_and(|s| s.is_some()))
    {
        let sig = tokio::select! {
            _ = int.recv() => Some(libc::SIGINT),
            _ = term.recv() => Some(libc::SIGTERM),
            _ = hup.recv() => Some(libc::SIGHUP),
            _ = tokio::time::sleep(Duration::from_millis(50)) => None,
        };
        if let Some(n) = sig {
            got = Some(n as u8);
            for c in children.iter_mut() {
                if c.try_wait().is_ok_and(|s| s.is_none()) {
                    // SAFETY: kill(2) on a child this process started and has not reaped.
                    unsafe { libc::kill(c.id() as i32, n) };
                }
            }
        }
    }
    got
}

/// The workers' result files, or why one is missing (with the end of its error output).
fn results(
    dir: &Path,
    n: u32,
    children: &mut [Child],
) -> Result<Vec<(String, serde_json::Value)>, String> {
    let mut loaded = Vec::new();
    for i in 0..n {
        let file = dir.join(format!("w{i}.result"));
        let text = std::fs::read_to_string(&file).map_err(|_| {
            let code = children[i as usize].try_wait().ok().flatten();
            let err = std::fs::read_to_string(dir.join(format!("w{i}.err"))).unwrap_or_default();
            let out = std::fs::read_to_string(dir.join(format!("w{i}.out"))).unwrap_or_default();
            let tail: Vec<&str> = err
                .lines()
                .chain(out.lines())
                .filter(|l| !l.trim().is_empty())
                .collect();
            let tail = tail[tail.len().saturating_sub(8)..].join("\n  ");
            format!(
                "worker {i}/{n} ended ({}) without a result:\n  {tail}",
                code.map_or("?".into(), |c| c.to_string())
            )
        })?;
        let v = serde_json::from_str(&text).map_err(|e| format!("worker {i}/{n}'s result: {e}"))?;
        loaded.push((file.display().to_string(), v));
    }
    Ok(loaded)
}

pub fn run(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    workers: Workers,
    shared: Shared,
    out: &RunArgs,
) -> Option<ExitCode> {
    let mut sc = match load(path) {
        Ok(s) => s,
        Err(code) => return Some(code),
    };
    let l = &shared.load;
    sc.override_load(l.users, l.duration, l.iterations);
    let users = sc
        .concurrency
        .max_users
        .map_or(sc.total_users(), u64::from)
        .min(sc.total_users());
    let n = match workers {
        Workers::Count(n) => n,
        Workers::Auto => auto_count(users.max(1)),
    };
    if n <= 1 {
        return None;
    }
    if out.state_dir.is_some() {
        return Some(usage(
            "--state-dir keeps one process's pools: with --workers, use --etcd (or neither)",
        ));
    }
    if out.dashboard.is_some() || out.metrics_listen.is_some() {
        return Some(usage(
            "--dashboard and --metrics-listen show one process's figures: with --workers, \
             each worker is a process (run one --segment per process to watch each)",
        ));
    }
    if let Err(code) = check_outputs(out) {
        return Some(code);
    }
    Some(rt.block_on(supervise(path, n, shared, out)))
}

async fn supervise(path: &Path, n: u32, shared: Shared, out: &RunArgs) -> ExitCode {
    let (exe, dir) = match (std::env::current_exe(), tempfile::tempdir()) {
        (Ok(e), Ok(d)) => (e, d),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("scheduler: starting workers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run_id = shared
        .run_id
        .clone()
        .unwrap_or_else(|| format!("workers-{}", std::process::id()));
    let mut children = Vec::new();
    for i in 0..n {
        match worker(&exe, path, (i, n), dir.path(), (&shared, &run_id), &out.out) {
            Ok(c) => children.push(c),
            Err(e) => {
                eprintln!("scheduler: starting worker {i}/{n}: {e}");
                for c in &mut children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("{n} workers (run --segment I/{n} each), run id {run_id}");
    let signal = wait_all(&mut children).await;
    let loaded = match results(dir.path(), n, &mut children) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = identity::check_set(&loaded, false) {
        eprintln!("scheduler: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let merged = async {
        let mut r = results_file::merge(&loaded)?;
        if let Some(s) = signal {
            r.interrupted = true;
            r.signal = Some(s);
        }
        Ok(r)
    };
    finish(merged, out, None).await
}
