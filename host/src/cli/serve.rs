//! `scheduler serve SCENARIO`: the scenario's `servers:` (the http-server component), each
//! instance on its own address, until Ctrl-C, SIGTERM or `--duration`; each instance's URL is
//! printed as it starts, access-log lines as they come, and what each answered at the end.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::format::scenario::{ServerSpec, parse_servers};
use crate::runtime::server::{Served, ServerRuntime};

/// How long one `serve` call of an instance lasts: the stop flag is looked at between calls.
const SLICE_MS: u64 = 200;

/// One instance's end: its name, URL and what it answered (or why it failed).
type Ended = (String, String, Result<Served, String>);

async fn instance(
    rt: Arc<ServerRuntime>,
    spec: &ServerSpec,
    i: usize,
    stop: Arc<AtomicBool>,
) -> Ended {
    let name = format!("{}[{i}]", spec.id);
    let failed = |url: &str, e: String| (name.clone(), url.to_string(), Err(e));
    let mut inst = match rt.instantiate(spec.addresses[i]).await {
        Ok(x) => x,
        Err(e) => return failed("", e),
    };
    let bound = match inst.start(&spec.config_for(i)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) | Err(e) => return failed("", e),
    };
    let url = format!("http://{bound}");
    println!("{name} {url}");
    let mut last = None;
    while !stop.load(Ordering::SeqCst) {
        match inst.serve(SLICE_MS).await {
            Ok(Ok(mut served)) => {
                for line in std::mem::take(&mut served.log) {
                    println!("{name} {line}");
                }
                last = Some(served);
            }
            Ok(Err(e)) | Err(e) => return failed(&url, e),
        }
    }
    let _ = inst.stop().await;
    (
        name,
        url,
        last.ok_or_else(|| "stopped before serving".to_string()),
    )
}

/// Set `stop` at Ctrl-C, SIGTERM or the end of `duration`.
fn stop_on_signals(stop: Arc<AtomicBool>, duration: Option<Duration>) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let until = duration.map(|d| Instant::now() + d);
        let timer = async {
            match until {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            _ = timer => {}
        }
        stop.store(true, Ordering::SeqCst);
    });
}

fn summary(ended: &[Ended]) -> (String, bool) {
    let mut out = format!(
        "\n{:<20} {:<28} {:>11} {:>9} {:>7}  statuses\n",
        "server", "url", "connections", "requests", "resets"
    );
    let mut ok = true;
    for (name, url, r) in ended {
        match r {
            Ok(s) => {
                let statuses: Vec<String> = s
                    .statuses
                    .iter()
                    .map(|(c, n)| format!("{c}: {n}"))
                    .collect();
                out.push_str(&format!(
                    "{name:<20} {url:<28} {:>11} {:>9} {:>7}  {}\n",
                    s.connections,
                    s.requests,
                    s.resets,
                    statuses.join(", ")
                ));
            }
            Err(e) => {
                ok = false;
                out.push_str(&format!("{name:<20} {url:<28} failed: {e}\n"));
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
    rt.block_on(async move {
        let runtime = match ServerRuntime::new() {
            Ok(r) => Arc::new(r),
            Err(e) => {
                eprintln!("scheduler: {e}");
                return ExitCode::FAILURE;
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        stop_on_signals(stop.clone(), duration);
        let mut tasks = tokio::task::JoinSet::new();
        for spec in specs {
            let spec = Arc::new(spec);
            for i in 0..spec.addresses.len() {
                let (rt, spec, stop) = (runtime.clone(), spec.clone(), stop.clone());
                tasks.spawn(async move { instance(rt, &spec, i, stop).await });
            }
        }
        let mut ended: Vec<Ended> = Vec::new();
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(e) => {
                    if e.2.is_err() {
                        // One instance that cannot serve ends them all.
                        stop.store(true, Ordering::SeqCst);
                    }
                    ended.push(e)
                }
                Err(e) => ended.push(("?".into(), String::new(), Err(e.to_string()))),
            }
        }
        ended.sort_by(|a, b| a.0.cmp(&b.0));
        let (text, ok) = summary(&ended);
        print!("{text}");
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
