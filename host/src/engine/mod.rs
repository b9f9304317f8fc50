//! Running a scenario: ramp-up phases spawn users, each user runs the workflow in its own
//! instance of the artifact, addresses come from the one pool authority, and samples go to
//! the report.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::authority::{Authority, owner};
use crate::format::scenario::{
    BindStrategy, CheckKind, ExportKind, Match, Mode, ReleaseOn, Scenario,
};
use crate::format::template::{self, Vars};
use crate::results::record::{ErrorEvent, Interval};
use crate::results::report::{Collected, PoolState, Report, Sample, UserError};
use crate::results::verdict;
use crate::runtime::{self, Instance, Policy, Runtime, error_kind, error_text, exec, pool};

mod action;
mod limits;
mod metrics_http;
mod pass;
mod progress;
mod setup;
mod shards;
mod signals;
mod streams;
mod user;

use action::*;
pub use action::{allow_proxy, allow_resolved, allow_url, target_of_url};
use limits::*;
use progress::*;
use shards::*;
pub use streams::Out;
use streams::*;
use user::*;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub state_dir: Option<PathBuf>,
    /// A live progress line on stderr (only when it is a terminal).
    pub progress: bool,
    /// How long in-flight users may take to finish after a stop (Ctrl-C or `duration`).
    pub drain: Option<Duration>,
    /// `--segment I/N`: this process runs the users whose global id k has (k-1) mod N == I
    /// (the scenario was cut with `Scenario::segment`).
    pub segment: Option<(u32, u32)>,
    /// `--out json=FILE` / `--out csv=FILE`: the run as it goes, one line a second (and each
    /// error, in JSON).
    pub out: Vec<Out>,
    /// `--metrics-listen ADDR`: Prometheus metrics served live while the run goes.
    pub metrics_listen: Option<SocketAddr>,
    /// `--etcd URL`: the pools are shared with the run's other processes through etcd.
    pub etcd: Option<crate::authority::EtcdOptions>,
}

/// Live counters for the progress line.
#[derive(Default)]
struct Live {
    /// Workflow runs completed.
    iterations: AtomicU64,
    /// Open model: iterations due when no user was free and none could be added.
    dropped: AtomicU64,
    spawned: AtomicU64,
    active: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
}

struct Shared {
    scenario: Scenario,
    /// `action_rate_limit`: the next free start time for an action, over all users.
    action_slot: Mutex<Option<Instant>>,
    /// Per action (in scenario order): its `with` has no template, so it renders the same
    /// every time.
    static_with: Vec<bool>,
    /// Some template or edge condition reads the variables; when none does, they are not kept.
    uses_vars: bool,
    runtime: Runtime,
    authority: Authority,
    collected: Mutex<Collected>,
    live: Live,
    /// Set by Ctrl-C, the end of `duration`, or a fault that ends the run (the pool state
    /// could not be written).
    stop: Arc<AtomicBool>,
    /// A second Ctrl-C: cut in-flight work off now.
    force: AtomicBool,
    /// Per action (in scenario order): the index of its first check in the run's list.
    check_base: Vec<usize>,
    /// Some threshold aborts the run when it fails (judged every second).
    watch_thresholds: bool,
    /// The threshold that aborted the run.
    aborted_by: Mutex<Option<String>>,
    /// The run second by second.
    series: Mutex<Vec<Interval>>,
    started: Instant,
    /// The wall clock at `started`.
    started_wall: std::time::SystemTime,
    /// Per data source: the next shared position (sequential and unique modes).
    data_next: Vec<std::sync::atomic::AtomicU64>,
    /// Data sources whose unique rows ran out (users stopped for it).
    data_out: Mutex<BTreeSet<String>>,
    /// The pools' state as last taken (every 250 ms while live metrics are served).
    live_pools: Mutex<Vec<crate::results::report::PoolState>>,
    /// What `setup:` exported, for every user (set before the first user starts).
    setup_vars: std::sync::OnceLock<template::Vars>,
    /// Iterations taken so far of `lifetime.shared_iterations`.
    claimed: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Wait for this action's turn under `action_rate_limit` (starts spaced 1/rate apart over
    /// all users, as a token bucket of one); at once without a limit, or when the run stops.
    async fn action_turn(&self) {
        let Some(rate) = self.scenario.concurrency.action_rate else {
            return;
        };
        let gap = Duration::from_secs_f64(1.0 / rate);
        let at = {
            let mut slot = self.action_slot.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let at = slot.map_or(now, |s| s.max(now));
            *slot = Some(at + gap);
            at
        };
        while Instant::now() < at && !self.stop.load(Ordering::SeqCst) {
            tokio::time::sleep((at - Instant::now()).min(Duration::from_millis(50))).await;
        }
    }

    /// The collection, even if a user panicked while holding it.
    fn collected(&self) -> std::sync::MutexGuard<'_, Collected> {
        self.collected.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error of a request cut off when the run stopped.
pub const INTERRUPTED: &str = "interrupted";

pub async fn run(scenario: Scenario, opts: RunOptions) -> Result<Report, String> {
    // Listening from the start: a signal during the set-up stops the run as soon as it can,
    // with its report, instead of killing the process.
    let mut signals = signals::Signals::listen()?;
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
    });
    // The first SIGINT, SIGTERM or SIGHUP stops spawning and lets in-flight work drain; a
    // second cuts it off.
    let interrupted = Arc::new(std::sync::atomic::AtomicU8::new(0));
    {
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
    }
    if watch {
        // abort_on_fail: judged every second, each after its delay; the first to fail stops
        // the run (exit 99).
        let s = shared.clone();
        tokio::spawn(async move {
            while !s.stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let elapsed = s.started.elapsed();
                let c = s.collected();
                let checks = check_results(&s.scenario, &c.rec.checks);
                let o = verdict::Observed {
                    rec: &c.rec,
                    checks: &checks,
                    iterations: s.live.iterations.load(Ordering::Relaxed),
                    elapsed_s: elapsed.as_secs_f64(),
                };
                let failed = s
                    .scenario
                    .thresholds
                    .iter()
                    .find(|t| t.abort_on_fail && elapsed >= t.delay_abort && !t.holds(&o).0);
                if let Some(t) = failed {
                    let what = format!("{} {}", t.name, t.expr);
                    drop(c);
                    *s.aborted_by.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
                    s.stop.store(true, Ordering::SeqCst);
                }
            }
        });
    }
    // On a terminal a line redrawn in place, cut to its width; otherwise (a CI log) a plain
    // line every 10 s.
    let metrics_done = Arc::new(AtomicBool::new(false));
    if let Some(addr) = opts.metrics_listen {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        let (s, d) = (shared.clone(), metrics_done.clone());
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || metrics_http::serve(listener, s, d))
            .map_err(|e| format!("starting the metrics server: {e}"))?;
        // The pool gauges: the pools' state, taken four times a second.
        let (s, d) = (shared.clone(), metrics_done.clone());
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
    }
    // One interval a second: kept for the report and streamed to --out.
    let mut streams = Streams::open(&opts.out, shared.started_wall)?;
    let (interval_stop, mut interval_stopped) = tokio::sync::oneshot::channel::<()>();
    let intervals = {
        let s = shared.clone();
        tokio::spawn(async move {
            let mut last = 0.0;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => tick(&s, &mut streams, &mut last),
                    _ = &mut interval_stopped => {
                        tick(&s, &mut streams, &mut last);
                        break;
                    }
                }
            }
            streams.finish()
        })
    };
    let terminal = std::io::stderr().is_terminal();
    let ticker = opts.progress.then(|| {
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
    });

    let sc = &shared.scenario;
    // setup: before any user; a failure stops the run before it starts.
    let mut once_errors = Vec::new();
    if !sc.setup.is_empty() {
        match setup::run_once(&shared, &sc.setup, "setup", &template::Vars::new()).await {
            Ok(v) => {
                let _ = shared.setup_vars.set(v);
            }
            Err(e) => {
                once_errors.push(e);
                shared.stop.store(true, Ordering::SeqCst);
            }
        }
    }
    let cap = sc
        .concurrency
        .max_users
        .map_or(Semaphore::MAX_PERMITS, |n| n as usize);
    let limit = Arc::new(Semaphore::new(cap));
    let shards = Shards::start(cap.min(sc.total_users().max(1) as usize))?;
    let mut tasks = tokio::task::JoinSet::new();
    // Which user each task runs, to name the one whose task panicked.
    let mut users: HashMap<tokio::task::Id, (u32, String)> = HashMap::new();
    let mut phases = sc.phases.clone();
    phases.sort_by_key(|p| p.at);
    let mut next_id = 0u32;
    let mut last_spawn: Option<Instant> = None;
    if let Some(stages) = &sc.stages {
        // Ramping users: every 100 ms the running users follow the target, new ones added,
        // the newest told to leave after their current iteration.
        phases.clear();
        let mut alive: Vec<Arc<AtomicBool>> = Vec::new();
        let (seg_i, seg_n) = opts.segment.unwrap_or((0, 1));
        let mut made = 0u32;
        while let Some(target) = stages.target(shared.started.elapsed()) {
            if shared.stop.load(Ordering::SeqCst) {
                break;
            }
            // This segment's share of the target.
            let target = (target + seg_n - 1 - seg_i) / seg_n;
            alive.retain(|r| !r.load(Ordering::SeqCst));
            while (alive.len() as u32) < target {
                made += 1;
                let retire = Arc::new(AtomicBool::new(false));
                alive.push(retire.clone());
                let user = User {
                    id: (made - 1) * seg_n + seg_i + 1,
                    tenant: stages
                        .tenant
                        .clone()
                        .unwrap_or_else(|| crate::format::scenario::DEFAULT_TENANT.into()),
                    pool: sc.ip_binding.pool.clone(),
                    jobs: None,
                    retire: Some(retire),
                };
                spawn_user(&shared, &mut tasks, &mut users, &shards, user, None);
            }
            while alive.len() as u32 > target {
                if let Some(r) = alive.pop() {
                    r.store(true, Ordering::SeqCst);
                }
            }
            while let Some(done) = tasks.try_join_next_with_id() {
                ended(&shared, &mut users, done);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = wait_stop(&shared) => break,
            }
        }
        for r in alive {
            r.store(true, Ordering::SeqCst);
        }
    }
    if let Some(arrival) = &sc.arrival {
        // The open model: iterations start on schedule, each in a free user; a new user when
        // none is free, up to max_users; past that the iteration is dropped (counted).
        phases.clear();
        let (idle_tx, mut idle_rx) = tokio::sync::mpsc::unbounded_channel();
        let tenant = arrival
            .tenant
            .clone()
            .unwrap_or_else(|| crate::format::scenario::DEFAULT_TENANT.into());
        // Open-model users are numbered apart per segment: ids I+1, I+1+N, ...
        let (seg_i, seg_n) = opts.segment.unwrap_or((0, 1));
        let mut made = 0u32;
        let new_user = |first: Option<Instant>, made: &mut u32| {
            *made += 1;
            User {
                id: (*made - 1) * seg_n + seg_i + 1,
                tenant: tenant.clone(),
                pool: sc.ip_binding.pool.clone(),
                jobs: Some(Jobs {
                    first,
                    idle: idle_tx.clone(),
                }),
                retire: None,
            }
        };
        for _ in 0..arrival.pre_allocated_users {
            let user = new_user(None, &mut made);
            spawn_user(&shared, &mut tasks, &mut users, &shards, user, None);
        }
        'schedule: for offset in arrival.schedule() {
            let due = shared.started + offset;
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = wait_stop(&shared) => break 'schedule,
            }
            let mut given = false;
            while let Ok(free) = idle_rx.try_recv() {
                if free.send(due).is_ok() {
                    given = true;
                    break;
                }
            }
            if !given {
                if made < arrival.max_users {
                    let user = new_user(Some(due), &mut made);
                    spawn_user(&shared, &mut tasks, &mut users, &shards, user, None);
                } else {
                    shared.live.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // The schedule is over: users waiting for an iteration end.
        drop(idle_rx);
    }
    'phases: for phase in &phases {
        let at = shared.started + phase.at;
        while Instant::now() < at {
            if shared.stop.load(Ordering::SeqCst) {
                break 'phases;
            }
            tokio::time::sleep((at - Instant::now()).min(Duration::from_millis(50))).await;
        }
        for _ in 0..phase.users {
            // Users are numbered over all segments; another segment runs the others.
            if let Some((i, n)) = opts.segment
                && next_id % n != i
            {
                next_id += 1;
                continue;
            }
            if shared.stop.load(Ordering::SeqCst)
                || sc
                    .lifetime
                    .duration
                    .is_some_and(|d| shared.started.elapsed() >= d)
            {
                break 'phases;
            }
            if let (Some(rate), Some(last)) = (sc.concurrency.spawn_rate, last_spawn) {
                // The scenario's rate is bounded (a day a user at the slowest).
                let gap = Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX);
                let wait = (last + gap).saturating_duration_since(Instant::now());
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = wait_stop(&shared) => break 'phases,
                }
            }
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => p.map_err(|e| e.to_string())?,
                _ = wait_stop(&shared) => break 'phases,
            };
            last_spawn = Some(Instant::now());
            next_id += 1;
            let user = User {
                id: next_id,
                tenant: phase
                    .tenant
                    .clone()
                    .unwrap_or_else(|| crate::format::scenario::DEFAULT_TENANT.into()),
                pool: phase.pool.clone().or_else(|| sc.ip_binding.pool.clone()),
                jobs: None,
                retire: None,
            };
            spawn_user(&shared, &mut tasks, &mut users, &shards, user, Some(permit));
        }
    }
    // A loop with a duration stops spawning and, at the end of the duration, tells users to stop.
    if let Some(d) = sc.lifetime.duration {
        let s = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d.saturating_sub(s.started.elapsed())).await;
            s.stop.store(true, Ordering::SeqCst);
        });
    }
    let drain = opts.drain.unwrap_or(Duration::from_secs(10));
    loop {
        tokio::select! {
            next = tasks.join_next_with_id() => match next {
                Some(done) => ended(&shared, &mut users, done),
                None => break,
            },
            _ = wait_stop(&shared) => {
                // Stopped: in-flight work gets `drain` to finish (or until a second Ctrl-C),
                // then it is cut off; what it was doing is counted as interrupted.
                let deadline = tokio::time::sleep(drain);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        next = tasks.join_next_with_id() => match next {
                            Some(done) => ended(&shared, &mut users, done),
                            None => break,
                        },
                        _ = &mut deadline => break,
                        _ = wait_force(&shared) => break,
                    }
                }
                tasks.abort_all();
                while let Some(done) = tasks.join_next_with_id().await {
                    ended(&shared, &mut users, done);
                }
                break;
            }
        }
    }
    drop(shards);
    // teardown: after the last user, unless setup failed or a second signal cut the run.
    if !sc.teardown.is_empty() && once_errors.is_empty() && !shared.force.load(Ordering::SeqCst) {
        let given = shared.setup_vars.get().cloned().unwrap_or_default();
        if let Err(e) = setup::run_once(&shared, &sc.teardown, "teardown", &given).await {
            once_errors.push(e);
        }
    }
    metrics_done.store(true, Ordering::SeqCst);
    // The last interval, up to now.
    let _ = interval_stop.send(());
    let streamed = intervals
        .await
        .unwrap_or_else(|e| Err(format!("--out: the writer failed: {e}")));
    if let Some(t) = ticker {
        t.abort();
        if terminal {
            let line = progress_line(&shared, &mut (0.0, 0));
            eprintln!("\r{}\x1b[K", fit(&line, terminal_width().unwrap_or(80)));
        }
    }
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
    let mut report = Report::new(
        &sc.name,
        elapsed,
        collected,
        pools,
        interrupted.load(Ordering::SeqCst) != 0,
    );
    report.signal = Some(interrupted.load(Ordering::SeqCst)).filter(|n| *n != 0);
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

/// The scenario's actions for the report, each skipped one with the names that make it so.
fn declared_actions(sc: &Scenario) -> Vec<crate::results::report::DeclaredAction> {
    sc.actions
        .iter()
        .map(|a| {
            let url = a.with.get("url").and_then(|u| u.as_str()).unwrap_or("");
            let names = template::names(url).unwrap_or_default();
            let missing: Vec<String> = names
                .into_iter()
                .filter(|n| sc.undeclared.contains(n))
                .map(|n| format!("{{{{{n}}}}}"))
                .collect();
            crate::results::report::DeclaredAction {
                id: a.id.clone(),
                tags: a.tags.clone(),
                skip_reason: (!missing.is_empty()).then(|| {
                    format!(
                        "its URL keeps {}, which nothing declares",
                        missing.join(", ")
                    )
                }),
            }
        })
        .collect()
}

/// Start a user's task on its shard; `permit` (the concurrency limit) goes with it.
fn spawn_user(
    shared: &Arc<Shared>,
    tasks: &mut tokio::task::JoinSet<()>,
    users: &mut HashMap<tokio::task::Id, (u32, String)>,
    shards: &Shards,
    user: User,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let who = (user.id, user.tenant.clone());
    shared.live.spawned.fetch_add(1, Ordering::Relaxed);
    shared.live.active.fetch_add(1, Ordering::Relaxed);
    shared.collected().users_spawned += 1;
    let s = shared.clone();
    let shard = shards.next(user.id);
    let task = tasks.spawn_on(
        async move {
            run_user(s, user).await;
            drop(permit);
        },
        shard,
    );
    users.insert(task.id(), who);
    // Reap users as they finish, so the table stays as small as the users alive.
    while let Some(done) = tasks.try_join_next_with_id() {
        ended(shared, users, done);
    }
}

/// A user's task ended: count it, and a panic becomes that user's error.
fn ended(
    shared: &Shared,
    users: &mut HashMap<tokio::task::Id, (u32, String)>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    let id = match &done {
        Ok((id, ())) => *id,
        Err(e) => e.id(),
    };
    let who = users.remove(&id);
    shared.live.active.fetch_sub(1, Ordering::Relaxed);
    let mut c = shared.collected();
    if done.is_ok() {
        c.users_finished += 1;
    }
    // A cancelled task was cut off at the drain: spawned, not finished.
    if let (Err(e), Some((user, tenant))) = (done, who)
        && e.is_panic()
    {
        let p = e.into_panic();
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        c.user_errors.push(UserError {
            user,
            tenant,
            error: format!("internal error (the user's task panicked): {msg}"),
        });
    }
}

async fn wait_stop(shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A second signal, or an etcd lease that may have expired (the addresses may be another
/// process's now): in-flight work is cut off.
async fn wait_force(shared: &Shared) {
    while !shared.force.load(Ordering::SeqCst) && !shared.authority.expired() {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
