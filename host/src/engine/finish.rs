//! The end of a run: what users still hold goes back to the pools, and the report.

use super::*;

/// Release what users still hold, close the authority, and make the report: `once_errors`
/// (setup and teardown) and the streams' outcome are the run's errors, `interrupted` the
/// signal that stopped it (0: none).
pub(super) async fn report(
    shared: &Arc<Shared>,
    opts: &RunOptions,
    (once_errors, streamed): (Vec<String>, Result<(), String>),
    interrupted: u8,
) -> Result<Report, String> {
    let sc = &shared.scenario;
    // Whatever users still hold (cut off, or shared per tenant) goes back to the pool. A
    // failure here is the run's error, in the report: nothing collected is lost.
    let mut run_errors = once_errors;
    if let Err(e) = streamed {
        run_errors.push(e);
    }
    let mut pools = Vec::new();
    let tenants: BTreeSet<String> = sc
        .phases
        .iter()
        .map(|ph| {
            ph.tenant
                .clone()
                .unwrap_or_else(|| crate::format::scenario::DEFAULT_TENANT.into())
        })
        .collect();
    for p in &sc.pools {
        for tenant in &tenants {
            for b in shared
                .authority
                .bindings(&p.id, tenant)
                .await
                .unwrap_or_default()
            {
                if (b.resource == "shared" || b.resource.starts_with("user-"))
                    && let Err(e) = shared
                        .authority
                        .release(&p.id, &owner(&b.tenant, &b.resource))
                        .await
                {
                    run_errors.push(e);
                }
            }
        }
        match shared.authority.stats(&p.id).await {
            Ok(st) => pools.push(PoolState {
                id: p.id.clone(),
                name: p.name.clone(),
                total: st.total,
                allocated: st.allocated,
                available: st.available,
            }),
            Err(e) => run_errors.push(format!("pool {}: {e}", p.id)),
        }
    }
    // The etcd lease ends: blocks still held go back at once.
    shared.authority.close().await;
    if let Some(e) = shared.authority.fault() {
        run_errors.insert(0, e);
    }
    run_errors.dedup();
    let elapsed = shared.started.elapsed().as_secs_f64();
    let mut collected = std::mem::take(&mut *shared.collected());
    collected.run_errors = run_errors;
    let iterations = shared.live.iterations.load(Ordering::Relaxed);
    let mut report = Report::new(&sc.name, elapsed, collected, pools, interrupted != 0);
    report.signal = Some(interrupted).filter(|n| *n != 0);
    report.started_at = Some(shared.started_wall);
    report.data_exhausted = shared
        .data_out
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    report.ended_at = Some(shared.started_wall + Duration::from_secs_f64(elapsed));
    // A segment whose share holds no user (2 users over 3 segments) had nothing to run.
    report.empty_segment = opts.segment.is_some()
        && report.users_spawned == 0
        && report.dropped_iterations == 0
        && report.run_errors.is_empty()
        && !report.interrupted;
    report.declare(declared_actions(sc));
    report.iterations = iterations;
    report.tls = shared.runtime.tls().counts();
    report.tls_insecure = shared.runtime.tls().insecure();
    report.series = std::mem::take(&mut *shared.series.lock().unwrap_or_else(|e| e.into_inner()));
    report.dropped_iterations = shared.live.dropped.load(Ordering::Relaxed);
    report.checks = check_results(sc, &report.rec.checks);
    report.thresholds = verdict::judge(
        &sc.thresholds,
        &verdict::Observed {
            rec: &report.rec,
            checks: &report.checks,
            iterations,
            elapsed_s: elapsed,
        },
    );
    report.aborted_by = shared
        .aborted_by
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(report)
}
