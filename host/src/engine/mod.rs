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
mod dashboard;
mod finish;
mod limits;
mod pass;
mod progress;
pub mod servers;
mod setup;
mod shards;
mod signals;
mod spawn;
mod start;
mod streams;
mod tasks;
mod udp;
mod upload;
mod user;
mod web;
mod websocket;
mod ws_receive;

use action::*;
pub use action::{allow_proxy, allow_resolved, allow_url, target_of_url};
use limits::*;
use progress::*;
pub use shards::check_settings;
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
    /// `--dashboard ADDR`: the live dashboard served while the run goes.
    pub dashboard: Option<SocketAddr>,
    /// `--etcd URL`: the pools are shared with the run's other processes through etcd.
    pub etcd: Option<crate::authority::EtcdOptions>,
    /// `--run-id`: with etcd, a threshold with `abort_on_fail` that one process crosses stops
    /// every process of the run.
    pub run_id: Option<String>,
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
    /// `--dashboard`: what its page shows, fed each second.
    board: Option<Arc<dashboard::Board>>,
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

/// `--metrics-listen` and `--dashboard`, served until the flag returned is set.
fn serve_live(shared: &Arc<Shared>, opts: &RunOptions) -> Result<Arc<AtomicBool>, String> {
    let done = Arc::new(AtomicBool::new(false));
    if let Some(addr) = opts.metrics_listen {
        tasks::serve_metrics(shared, addr, &done)?;
    }
    if let (Some(addr), Some(board)) = (opts.dashboard, &shared.board) {
        let bound = dashboard::serve(board.clone(), addr, done.clone())?;
        eprintln!("dashboard: http://{bound}/");
    }
    Ok(done)
}

/// The scenario's servers, listening before anything is sent to them (in segment 0 only: the
/// other segments' users reach them there).
async fn start_servers(
    sc: &Scenario,
    opts: &RunOptions,
) -> Result<Option<servers::Running>, String> {
    if sc.servers.is_empty() || opts.segment.is_some_and(|(i, _)| i != 0) {
        return Ok(None);
    }
    let announce = |s: &str| eprintln!("server {s}");
    servers::start(&sc.servers, &sc.dir, announce, |_, _| {})
        .await
        .map(Some)
}

pub async fn run(scenario: Scenario, opts: RunOptions) -> Result<Report, String> {
    let (shared, signals) = start::start(scenario, &opts).await?;
    let interrupted = tasks::watch_signals(&shared, signals);
    if shared.watch_thresholds {
        tasks::watch_thresholds(&shared, &opts);
    }
    let metrics_done = serve_live(&shared, &opts)?;
    let streams = Streams::open(&opts.out, shared.started_wall)?;
    let (interval_stop, intervals) = tasks::stream_intervals(&shared, streams);
    let terminal = std::io::stderr().is_terminal();
    let ticker = opts.progress.then(|| tasks::progress(&shared, terminal));

    let sc = &shared.scenario;
    let mut running = start_servers(sc, &opts).await?;
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
    let mut crowd = spawn::Crowd {
        tasks: tokio::task::JoinSet::new(),
        users: HashMap::new(),
        shards,
    };
    if let Some(stages) = &sc.stages {
        spawn::by_stages(&shared, &mut crowd, stages, opts.segment).await;
    }
    if let Some(arrival) = &sc.arrival {
        spawn::by_arrival(&shared, &mut crowd, arrival, opts.segment).await;
    }
    if sc.stages.is_none() && sc.arrival.is_none() {
        spawn::by_phases(&shared, &mut crowd, &limit, opts.segment).await?;
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
            next = crowd.tasks.join_next_with_id() => match next {
                Some(done) => ended(&shared, &mut crowd.users, done),
                None => break,
            },
            _ = wait_stop(&shared) => {
                // Stopped: in-flight work gets `drain` to finish (or until a second Ctrl-C),
                // then it is cut off; what it was doing is counted as interrupted.
                let deadline = tokio::time::sleep(drain);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        next = crowd.tasks.join_next_with_id() => match next {
                            Some(done) => ended(&shared, &mut crowd.users, done),
                            None => break,
                        },
                        _ = &mut deadline => break,
                        _ = wait_force(&shared) => break,
                    }
                }
                crowd.tasks.abort_all();
                while let Some(done) = crowd.tasks.join_next_with_id().await {
                    ended(&shared, &mut crowd.users, done);
                }
                break;
            }
        }
    }
    drop(crowd);
    // teardown: after the last user, unless setup failed or a second signal cut the run.
    if !sc.teardown.is_empty() && once_errors.is_empty() && !shared.force.load(Ordering::SeqCst) {
        let given = shared.setup_vars.get().cloned().unwrap_or_default();
        if let Err(e) = setup::run_once(&shared, &sc.teardown, "teardown", &given).await {
            once_errors.push(e);
        }
    }
    // The servers stop after the last request to them.
    let served = stop_servers(running.as_mut()).await;
    metrics_done.store(true, Ordering::SeqCst);
    // The last interval, up to now.
    let _ = interval_stop.send(());
    let streamed = intervals
        .await
        .unwrap_or_else(|e| Err(format!("--out: the writer failed: {e}")));
    if let Some(board) = &shared.board {
        // The last totals whatever their pace: the page ends on the report's figures.
        let totals = crate::results::charts::data(&streams::live_report(&shared));
        board.push(Vec::new(), Some(totals));
        board.end();
    }
    if let Some(t) = ticker {
        t.abort();
        if terminal {
            let line = progress_line(&shared, &mut (0.0, 0));
            eprintln!("\r{}\x1b[K", fit(&line, terminal_width().unwrap_or(80)));
        }
    }
    let interrupted = interrupted.load(Ordering::SeqCst);
    let mut report = finish::report(&shared, &opts, (once_errors, streamed), interrupted).await?;
    report.add_servers(served);
    Ok(report)
}

/// Stop the run's servers: what each answered.
async fn stop_servers(
    running: Option<&mut servers::Running>,
) -> Vec<crate::results::report::ServerServed> {
    match running {
        Some(r) => r.finish().await.iter().map(|e| e.served()).collect(),
        None => Vec::new(),
    }
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
