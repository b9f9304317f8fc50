//! The run's background tasks: signals, abort thresholds, live metrics, the intervals
//! streamed to `--out`, and the progress line.

use super::*;

/// The first SIGINT, SIGTERM or SIGHUP stops spawning and lets in-flight work drain; a
/// second cuts it off. The first signal's number, once one came.
pub(super) fn watch_signals(
    shared: &Arc<Shared>,
    mut signals: signals::Signals,
) -> Arc<std::sync::atomic::AtomicU8> {
    let interrupted = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let (s, i) = (shared.clone(), interrupted.clone());
    tokio::spawn(async move {
        let first = signals.next().await;
        i.store(first, Ordering::SeqCst);
        s.stop.store(true, Ordering::SeqCst);
        eprintln!(
            "\nscheduler: stopping on {} (in-flight requests get the drain; a second signal cuts them off)",
            signals::name(first)
        );
        signals.next().await;
        s.force.store(true, Ordering::SeqCst);
    });
    interrupted
}

/// `abort_on_fail`: thresholds judged every second, each after its delay; the first to fail
/// stops the run (exit 99). With etcd and a run id, it stops every process of the run: the
/// process that crosses it says so in etcd, and each looks every second.
pub(super) fn watch_thresholds(shared: &Arc<Shared>, opts: &RunOptions) {
    let s = shared.clone();
    let run_id = opts.run_id.clone().filter(|_| opts.etcd.is_some());
    let me = opts.segment.map_or("this process".to_string(), |(i, n)| {
        format!("segment {i}/{n}")
    });
    tokio::spawn(async move {
        while !s.stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Some(id) = &run_id
                && let Some(why) = s.authority.abort_said(id).await
            {
                *s.aborted_by.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                s.stop.store(true, Ordering::SeqCst);
                break;
            }
            // Judged with the collection locked; nothing held past it.
            let failed = {
                let elapsed = s.started.elapsed();
                let c = s.collected();
                let checks = check_results(&s.scenario, &c.rec.checks);
                let o = verdict::Observed {
                    rec: &c.rec,
                    checks: &checks,
                    iterations: s.live.iterations.load(Ordering::Relaxed),
                    elapsed_s: elapsed.as_secs_f64(),
                };
                s.scenario
                    .thresholds
                    .iter()
                    .find(|t| t.abort_on_fail && elapsed >= t.delay_abort && !t.holds(&o).0)
                    .map(|t| format!("{} {}", t.name, t.expr))
            };
            if let Some(what) = failed {
                if let Some(id) = &run_id {
                    s.authority
                        .say_abort(id, &format!("{what} (in {me})"))
                        .await;
                }
                *s.aborted_by.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
                s.stop.store(true, Ordering::SeqCst);
            }
        }
    });
}

/// `--metrics-listen`: the metrics served on a thread of their own until `done`, and the
/// pools' state taken four times a second for their gauges.
pub(super) fn serve_metrics(
    shared: &Arc<Shared>,
    addr: std::net::SocketAddr,
    done: &Arc<AtomicBool>,
) -> Result<(), String> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    let (s, d) = (shared.clone(), done.clone());
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let handler: super::web::Handler = Arc::new(move |mut conn, _, _| {
                let body = super::streams::live_metrics(&s);
                let ctype = "text/plain; version=0.0.4";
                super::web::respond(&mut conn, "200 OK", ctype, body.as_bytes());
            });
            super::web::serve(listener, d, handler)
        })
        .map_err(|e| format!("starting the metrics server: {e}"))?;
    let (s, d) = (shared.clone(), done.clone());
    tokio::spawn(async move {
        while !d.load(Ordering::SeqCst) {
            let mut now = Vec::new();
            for p in &s.scenario.pools {
                if let Ok(st) = s.authority.stats(&p.id).await {
                    now.push(crate::results::report::PoolState {
                        id: p.id.clone(),
                        name: p.name.clone(),
                        total: st.total,
                        allocated: st.allocated,
                        available: st.available,
                    });
                }
            }
            *s.live_pools.lock().unwrap_or_else(|e| e.into_inner()) = now;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    Ok(())
}

/// One interval a second, kept for the report and streamed to `--out` until the sender is
/// used (then the last interval, up to then); the task ends with the streams written whole.
pub(super) fn stream_intervals(
    shared: &Arc<Shared>,
    mut streams: Streams,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let s = shared.clone();
    let task = tokio::spawn(async move {
        let mut last = 0.0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => tick(&s, &mut streams, &mut last),
                _ = &mut stopped => {
                    tick(&s, &mut streams, &mut last);
                    break;
                }
            }
        }
        streams.finish()
    });
    (stop, task)
}

/// The progress line: on a terminal redrawn in place, cut to its width; otherwise (a CI log)
/// a plain line every 10 s.
pub(super) fn progress(shared: &Arc<Shared>, terminal: bool) -> tokio::task::JoinHandle<()> {
    let s = shared.clone();
    tokio::spawn(async move {
        let mut last = (0.0, 0);
        let every = Duration::from_millis(if terminal { 500 } else { 10_000 });
        loop {
            tokio::time::sleep(every).await;
            let line = progress_line(&s, &mut last);
            if terminal {
                let w = terminal_width().unwrap_or(80);
                eprint!("\r{}\x1b[K", fit(&line, w));
            } else {
                eprintln!("{line}");
            }
        }
    })
}
