//! Making a run ready: its runtime and pool authority, the machine's limits checked, and
//! what every user shares.

use super::*;

/// The run's shared state, and the signals it listens to from the start (a signal during the
/// set-up stops the run as soon as it can, with its report, instead of killing the process).
pub(super) async fn start(
    scenario: Scenario,
    opts: &RunOptions,
) -> Result<(Arc<Shared>, signals::Signals), String> {
    // Listening from the start: a signal during the set-up stops the run as soon as it can,
    // with its report, instead of killing the process.
    let signals = signals::Signals::listen()?;
    let cap = scenario.concurrency.max_users.unwrap_or(u32::MAX);
    let max = u64::from(cap).min(scenario.total_users().max(1)) as u32;
    if u64::from(cap) < scenario.total_users() {
        eprintln!(
            "at most {cap} users at once (load.concurrency.max_concurrent_users); {} in all",
            scenario.total_users()
        );
    }
    let tls = runtime::Tls::new(&scenario.tls.settings, &scenario.tls.tenants)?;
    let runtime = Runtime::new(max + 2, tls)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut authority = Authority::new(&runtime, opts.state_dir.clone(), stop.clone()).await?;
    if let Some(o) = &opts.etcd {
        authority.use_etcd(o).await?;
    }
    authority.setup(&scenario.pools).await?;
    if let Some(e) = authority.fault() {
        return Err(e);
    }
    // What a user's instance takes, measured on one made for that (with the first
    // instance's one-time costs already paid by the authority's).
    let before = runtime::mappings();
    let probe = runtime
        .instantiate(Arc::new(Policy::default()), None)
        .await?;
    if let (Some(before), Some(after), Some(limit)) =
        (before, runtime::mappings(), runtime::max_mappings())
    {
        check_mappings(max, after.saturating_sub(before) + 1, after, limit)?;
    }
    drop(probe);
    check_fds(max)?;
    let static_with: Vec<bool> = scenario
        .actions
        .iter()
        .map(|a| !template::has_template(&a.with))
        .collect();
    let uses_vars = static_with.contains(&false)
        || scenario
            .nodes
            .iter()
            .any(|n| n.edges.iter().any(|e| e.condition().is_some()))
        || scenario
            .actions
            .iter()
            .any(|a| a.udp.is_some() || a.dynamic.iter().any(|t| t.id.contains("{{")));
    let watch = scenario.thresholds.iter().any(|t| t.abort_on_fail);
    let check_base = scenario
        .actions
        .iter()
        .scan(0, |n, a| {
            let base = *n;
            *n += a.checks.len();
            Some(base)
        })
        .collect();
    let data_next = scenario.data.iter().map(|_| Default::default()).collect();
    let shared = Arc::new(Shared {
        action_slot: Mutex::new(None),
        static_with,
        uses_vars,
        scenario,
        runtime,
        authority,
        collected: Mutex::new(Collected::default()),
        live: Live::default(),
        stop,
        force: AtomicBool::new(false),
        watch_thresholds: watch,
        check_base,
        aborted_by: Mutex::new(None),
        series: Mutex::new(Vec::new()),
        started: Instant::now(),
        started_wall: std::time::SystemTime::now(),
        claimed: std::sync::atomic::AtomicU64::new(0),
        setup_vars: std::sync::OnceLock::new(),
        live_pools: Mutex::new(Vec::new()),
        data_next,
        data_out: Mutex::new(BTreeSet::new()),
        board: opts.dashboard.map(|_| Default::default()),
    });
    Ok((shared, signals))
}
