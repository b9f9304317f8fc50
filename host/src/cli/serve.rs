//! `scheduler serve SCENARIO`: the scenario's `servers:` (the http-server component), each
//! instance on its own address, until Ctrl-C, SIGTERM or `--duration`; each instance's URL is
//! printed as it starts, access-log lines as they come, and what each answered at the end.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::engine::servers::{self, ServerEnd};
use crate::format::scenario::parse_servers;

/// Ctrl-C, SIGTERM, or the end of `duration`.
async fn stopped(duration: Option<Duration>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
        _ = timer => {}
    }
}

/// The table of what each instance answered; false if one failed.
pub fn summary(ended: &[ServerEnd]) -> (String, bool) {
    let mut out = format!(
        "\n{:<20} {:<28} {:>11} {:>9} {:>7}  statuses\n",
        "server", "url", "connections", "requests", "resets"
    );
    let mut ok = true;
    for e in ended {
        match &e.served {
            Ok(s) => {
                let statuses: Vec<String> = s
                    .statuses
                    .iter()
                    .map(|(c, n)| format!("{c}: {n}"))
                    .collect();
                out.push_str(&format!(
                    "{:<20} {:<28} {:>11} {:>9} {:>7}  {}\n",
                    e.name,
                    e.url,
                    s.connections,
                    s.requests,
                    s.resets,
                    statuses.join(", ")
                ));
            }
            Err(why) => {
                ok = false;
                out.push_str(&format!("{:<20} {:<28} failed: {why}\n", e.name, e.url));
            }
        }
    }
    (out, ok)
}

pub fn serve(
    rt: &tokio::runtime::Runtime,
    path: &std::path::Path,
    duration: Option<Duration>,
) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return super::finish::usage(&format!("{}: {e}", path.display())),
    };
    let base = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let specs = match parse_servers(&text) {
        Ok((s, _)) => s,
        Err(problems) => {
            eprintln!("{}: {} problem(s)", path.display(), problems.len());
            for p in &problems {
                eprintln!("  {p}");
            }
            return ExitCode::from(2);
        }
    };
    let problems: Vec<String> = specs.iter().flat_map(|s| s.check_dirs(&base)).collect();
    if !problems.is_empty() {
        eprintln!("{}: {} problem(s)", path.display(), problems.len());
        for p in &problems {
            eprintln!("  {p}");
        }
        return ExitCode::from(2);
    }
    rt.block_on(async move {
        let announce = |s: &str| println!("{s}");
        let line = |name: &str, l: &str| println!("{name} {l}");
        let mut running = match servers::start(&specs, &base, announce, line).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("scheduler: {e}");
                return ExitCode::FAILURE;
            }
        };
        let failed = tokio::select! {
            _ = stopped(duration) => None,
            f = running.failed() => f,
        };
        running.stop.store(true, Ordering::SeqCst);
        let mut ended = running.finish().await;
        ended.extend(failed);
        ended.sort_by(|a, b| a.name.cmp(&b.name));
        let (text, ok) = summary(&ended);
        print!("{text}");
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
