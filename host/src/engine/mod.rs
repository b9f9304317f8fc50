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

mod metrics_http;
mod pass;
mod signals;

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

/// The metrics of the run so far (what the report's metrics say at the end).
fn live_metrics(shared: &Shared) -> String {
    let mut c = Collected {
        rec: shared.collected().rec.clone(),
        ..Collected::default()
    };
    c.users_spawned = shared.live.spawned.load(Ordering::Relaxed);
    c.users_finished = c
        .users_spawned
        .saturating_sub(shared.live.active.load(Ordering::Relaxed));
    let elapsed = shared.started.elapsed().as_secs_f64();
    Report::new(&shared.scenario.name, elapsed, c, Vec::new(), false).metrics()
}

/// Serve `GET /metrics` (any path) on `listener` until the run ends; one connection at a time,
/// each answered and closed.
#[derive(Debug, Clone)]
pub enum Out {
    Json(PathBuf),
    Csv(PathBuf),
}

impl std::str::FromStr for Out {
    type Err = String;
    fn from_str(s: &str) -> Result<Out, String> {
        match s.split_once('=') {
            Some(("json", f)) if !f.is_empty() => Ok(Out::Json(f.into())),
            Some(("csv", f)) if !f.is_empty() => Ok(Out::Csv(f.into())),
            _ => Err(format!("{s:?}: expected json=FILE or csv=FILE")),
        }
    }
}

/// Writes the intervals (and errors) to the `--out` files.
/// Each goes to a hidden temporary file beside its path while the run goes, renamed over the
/// path when the run ends (`finish`): a reader never sees a torn file.
struct Streams {
    files: Vec<(bool, std::io::BufWriter<tempfile::NamedTempFile>, PathBuf)>,
}

impl Out {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Out::Json(p) | Out::Csv(p) => p,
        }
    }
}

impl Streams {
    fn open(outs: &[Out]) -> Result<Streams, String> {
        use std::io::Write;
        let mut files = Vec::new();
        for o in outs {
            let json = matches!(o, Out::Json(_));
            let path = o.path();
            let f = crate::results::output::temp_beside(path)
                .map_err(|e| format!("--out {}: {e}", path.display()))?;
            let mut w = std::io::BufWriter::new(f);
            if !json {
                let _ = writeln!(
                    w,
                    "t_s,requests,failed,rps,p50_ms,p90_ms,p99_ms,max_ms,users_active"
                );
            }
            files.push((json, w, path.to_path_buf()));
        }
        Ok(Streams { files })
    }

    /// Each stream's file, whole, at its path.
    fn finish(self) -> Result<(), String> {
        for (_, w, path) in self.files {
            let f = w
                .into_inner()
                .map_err(|e| format!("--out {}: {}", path.display(), e.error()))?;
            crate::results::output::persist(f, &path)
                .map_err(|e| format!("--out {}: {e}", path.display()))?;
        }
        Ok(())
    }

    fn write(&mut self, i: &Interval, secs: f64, errors: &[ErrorEvent], dropped: u64) {
        use std::io::Write;
        let rps = if secs > 0.0 {
            i.requests as f64 / secs
        } else {
            0.0
        };
        for (json, w, _) in &mut self.files {
            if *json {
                let line = serde_json::json!({
                    "type": "interval", "t_s": i.t, "requests": i.requests, "failed": i.failed,
                    "rps": rps, "p50_ms": i.p50_ms, "p90_ms": i.p90_ms, "p99_ms": i.p99_ms,
                    "max_ms": i.max_ms, "users_active": i.users_active,
                });
                let _ = writeln!(w, "{line}");
                for e in errors {
                    let line = serde_json::json!({
                        "type": "error", "t_s": i.t, "action": &*e.action, "tenant": &*e.tenant,
                        "user": e.user, "source": &*e.source, "error": e.error,
                    });
                    let _ = writeln!(w, "{line}");
                }
                if dropped > 0 {
                    let line = serde_json::json!({ "type": "errors_not_listed", "t_s": i.t, "count": dropped });
                    let _ = writeln!(w, "{line}");
                }
            } else {
                let _ = writeln!(
                    w,
                    "{:.3},{},{},{:.1},{:.3},{:.3},{:.3},{:.3},{}",
                    i.t,
                    i.requests,
                    i.failed,
                    rps,
                    i.p50_ms,
                    i.p90_ms,
                    i.p99_ms,
                    i.max_ms,
                    i.users_active
                );
            }
            let _ = w.flush();
        }
    }
}

/// Take an interval from the collection, keep it for the report and stream it.
fn tick(shared: &Shared, streams: &mut Streams, last: &mut f64) {
    let t = shared.started.elapsed().as_secs_f64();
    let active = shared.live.active.load(Ordering::Relaxed);
    let (interval, errors, dropped) = shared.collected().rec.take_interval(t, active);
    streams.write(&interval, t - *last, &errors, dropped);
    *last = t;
    shared
        .series
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(interval);
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

fn method(call: &str) -> exec::HttpMethod {
    match call {
        "post" => exec::HttpMethod::Post,
        "put" => exec::HttpMethod::Put,
        "delete" => exec::HttpMethod::Delete,
        "patch" => exec::HttpMethod::Patch,
        "head" => exec::HttpMethod::Head,
        "options" => exec::HttpMethod::Options,
        _ => exec::HttpMethod::Get,
    }
}

/// Where a rendered URL points, resolved natively so the policy can allow exactly that. The
/// url crate reads it as the client does (any case of scheme, IPv6 literals, default port).
/// Let `policy` reach what `url` names: its host name may be looked up, and its addresses
/// connected to.
pub async fn allow_url(policy: &Policy, url: &str) {
    if let Ok(u) = url::Url::parse(url)
        && let Some(url::Host::Domain(name)) = u.host()
    {
        policy.allow_name(name);
    }
    for t in target_of_url(url).await.unwrap_or_default() {
        policy.allow_target(t);
    }
}

pub async fn target_of_url(text: &str) -> Option<Vec<SocketAddr>> {
    let u = url::Url::parse(text).ok()?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return None;
    }
    let port = u.port_or_known_default()?;
    match u.host()? {
        url::Host::Ipv4(ip) => Some(vec![SocketAddr::new(ip.into(), port)]),
        // The client connects to an IPv4-mapped address over IPv4.
        url::Host::Ipv6(ip) => Some(vec![SocketAddr::new(
            ip.to_ipv4_mapped().map_or(ip.into(), Into::into),
            port,
        )]),
        url::Host::Domain(host) => tokio::net::lookup_host((host, port))
            .await
            .ok()
            .map(|a| a.collect()),
    }
}

/// A user's source address, from the authority: from `pool_id`, or when it has none from the
/// fallback pool (`capacity_management.fallback_pool`), waiting on exhaustion if so configured.
/// With the binding, the scenario pool it came from (the one to release it to).
async fn acquire(
    shared: &Shared,
    pool_id: &str,
    o: &pool::Owner,
) -> Result<(pool::Binding, String), String> {
    let b = &shared.scenario.ip_binding;
    let deadline = Instant::now() + b.wait_timeout;
    let fallback = b.fallback_pool.as_deref().filter(|f| *f != pool_id);
    loop {
        let mut from = pool_id;
        let mut r = shared.authority.allocate(pool_id, o).await?;
        if let (Err(pool::PoolError::Exhausted(_)), Some(f)) = (&r, fallback) {
            from = f;
            r = shared.authority.allocate(f, o).await?;
        }
        match r {
            Ok(binding) => return Ok((binding, from.to_string())),
            Err(pool::PoolError::Exhausted(_))
                if b.wait_on_exhaustion && Instant::now() < deadline =>
            {
                if shared.stop.load(Ordering::SeqCst) {
                    return Err("stopped while waiting for an address".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(pool::PoolError::Exhausted(p)) if b.wait_on_exhaustion => {
                return Err(format!(
                    "pool {p} exhausted: no address within {:?}",
                    b.wait_timeout
                ));
            }
            Err(e) => {
                return Err(format!(
                    "no address from pool {pool_id}: {}",
                    crate::runtime::pool_error_text(&e)
                ));
            }
        }
    }
}

struct User {
    id: u32,
    tenant: String,
    pool: Option<String>,
    /// The open model: iterations come from the schedule instead of the user's lifetime.
    jobs: Option<Jobs>,
    /// Ramping users: set when the user is to leave (after its current iteration); it loops
    /// until then, whatever the lifetime's iterations.
    retire: Option<Arc<AtomicBool>>,
}

/// A user of the open model: its first iteration's scheduled start, and where it says it is
/// free (a one-shot sender the schedule uses to give it the next start).
struct Jobs {
    first: Option<Instant>,
    idle: tokio::sync::mpsc::UnboundedSender<tokio::sync::oneshot::Sender<Instant>>,
}

/// The next scheduled start for an open-model user: announce itself free and wait; `None`
/// when the schedule is over (its sender dropped) or the run stops.
async fn next_job(shared: &Shared, jobs: &mut Jobs) -> Option<Instant> {
    if let Some(t) = jobs.first.take() {
        return Some(t);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    jobs.idle.send(tx).ok()?;
    tokio::select! {
        t = rx => t.ok(),
        _ = wait_stop(shared) => None,
    }
}

async fn run_user(shared: Arc<Shared>, mut user: User) {
    // Fault injection for the tests (debug builds only): this user's task panics.
    #[cfg(debug_assertions)]
    if std::env::var("SCHEDULER_TEST_PANIC_USER").is_ok_and(|v| v == user.id.to_string()) {
        panic!("fault injected into user {}", user.id);
    }
    let sc = &shared.scenario;
    let policy = Arc::new(Policy::default());
    let fail = |e: String| {
        shared.collected().user_errors.push(UserError {
            user: user.id,
            tenant: user.tenant.clone(),
            error: e,
        });
    };
    let mut inst = match shared
        .runtime
        .instantiate(policy.clone(), Some(user.tenant.as_str()))
        .await
    {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let binding_on = sc.ip_binding.enabled && user.pool.is_some();
    let pool_id = user.pool.clone().unwrap_or_default();
    let resource = match sc.ip_binding.strategy {
        BindStrategy::Shared => "shared".to_string(),
        _ => format!("user-{}", user.id),
    };
    let own = owner(&user.tenant, &resource);
    let per_task = sc.ip_binding.strategy == BindStrategy::PerTask
        || sc.ip_binding.release_on == ReleaseOn::TaskEnd;
    // The address in force, and the pool it goes back to.
    let mut held: Option<(pool::Binding, String)> = None;
    if binding_on {
        // Nothing to bind until the pool gives an address.
        policy.pin(None);
    }
    if binding_on && !per_task {
        match acquire(&shared, &pool_id, &own).await {
            Ok(b) => held = Some(b),
            Err(e) => return fail(e),
        }
    }
    let iterations = match sc.lifetime.mode {
        Mode::Once => 1,
        Mode::Loop => sc.lifetime.iterations,
    };
    let mut n = 0u32;
    let mut error = None;
    let mut state = UserState::new(&shared, &user);
    loop {
        if let Some(jobs) = user.jobs.as_mut() {
            // Open model: one iteration per scheduled start, latency counted from it. What
            // the last one recorded goes to the run before the user waits.
            state.flush();
            match next_job(&shared, jobs).await {
                Some(t) => state.scheduled = Some(t),
                None => break,
            }
        } else if let Some(r) = &user.retire {
            if r.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst) {
                break;
            }
        } else {
            if shared.stop.load(Ordering::SeqCst) || (iterations != 0 && n >= iterations) {
                break;
            }
            if sc
                .lifetime
                .duration
                .is_some_and(|d| shared.started.elapsed() >= d)
            {
                break;
            }
        }
        let ip = held.as_ref().map(|(b, _)| b.ip.clone());
        if binding_on && !per_task {
            // The policy follows the binding in force: this address, and no other.
            policy.pin(ip.as_ref().and_then(|ip| ip.parse().ok()));
        }
        // `per_task`: a task is a workflow node, with an address of its own (as the original).
        let task_binding = (binding_on && per_task).then(|| pass::TaskBinding {
            pool_id: &pool_id,
            own: &own,
        });
        let pass = pass::run_task(
            &mut state,
            &mut inst,
            &policy,
            ip.as_deref(),
            n,
            task_binding.as_ref(),
        )
        .await;
        shared.live.iterations.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = pass {
            error = Some(e);
            break;
        }
        if shared.watch_thresholds {
            // Thresholds judged while the run goes see each iteration.
            state.flush();
        }
        n += 1;
        // Ramping users loop until told to leave, whatever the lifetime's count.
        let more = user.retire.is_some() || iterations == 0 || n < iterations;
        if more && !sc.lifetime.think_time.is_zero() && user.jobs.is_none() {
            // What happened before the pause goes to the run now, in its own interval.
            state.flush();
            let mut until = Instant::now() + sc.lifetime.think_time;
            if let Some(d) = sc.lifetime.duration {
                until = until.min(shared.started + d);
            }
            while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(50))).await;
            }
        }
    }
    // A shared address belongs to the tenant; it is released at the end of the run.
    if let Some((_, from)) = &held
        && sc.ip_binding.strategy != BindStrategy::Shared
        && let Err(e) = shared.authority.release(from, &own).await
    {
        error.get_or_insert(e);
    }
    if let Some(e) = error {
        fail(e);
    }
}

/// What a user keeps from one request to the next.
struct UserState<'a> {
    shared: &'a Shared,
    user: u32,
    tenant: Arc<str>,
    /// Per action (in scenario order), for actions without templates: the call as rendered,
    /// and the source address it was rendered with.
    prepared: Vec<Option<(Option<String>, exec::Action)>>,
    /// Per action (in scenario order): its id, as shown in samples.
    action_ids: Vec<Arc<str>>,
    /// The last source address the user was given (None: none), as shown in samples ("-").
    given: (Option<String>, Arc<str>),
    /// The last source address seen, as reported by the executor and as shown in samples.
    source: (String, Arc<str>),
    /// Samples not yet handed to the run's collection (in batches, and when the user ends or
    /// is cut off).
    samples: Vec<Sample>,
    /// The request being executed (its action's index, its source, when it started): if the
    /// user is cut off at the drain, it is counted as interrupted.
    in_flight: Option<(usize, Arc<str>, Instant)>,
    /// Per check: [passed, failed] since the last flush.
    checks: Vec<[u64; 2]>,
    /// When the samples were last handed over (they go at least every 250 ms, so the
    /// intervals see them).
    last_flush: Instant,
    /// Open model: when the current iteration was due; its first request's latency counts
    /// from then, so time spent waiting for a free user shows (no coordinated omission).
    scheduled: Option<Instant>,
    /// Ids of the dynamic tasks this user has run (each runs once).
    dynamic_seen: HashSet<String>,
    /// Per action: its last UDP reply in this pass (what wait nodes look at).
    last_reply: Vec<Option<Vec<u8>>>,
}

/// Samples handed over at once: one lock per batch instead of one per request.
const SAMPLE_BATCH: usize = 256;

impl<'a> UserState<'a> {
    fn new(shared: &'a Shared, user: &User) -> Self {
        UserState {
            shared,
            user: user.id,
            tenant: user.tenant.as_str().into(),
            prepared: vec![None; shared.scenario.actions.len()],
            action_ids: shared
                .scenario
                .actions
                .iter()
                .map(|a| a.id.as_str().into())
                .collect(),
            given: (None, "-".into()),
            source: (String::new(), "-".into()),
            samples: Vec::new(),
            in_flight: None,
            scheduled: None,
            last_flush: Instant::now(),
            checks: vec![[0, 0]; shared.scenario.actions.iter().map(|a| a.checks.len()).sum()],
            dynamic_seen: HashSet::new(),
            last_reply: vec![None; shared.scenario.actions.len()],
        }
    }

    fn record(&mut self, sample: Sample) {
        self.samples.push(sample);
        if self.samples.len() >= SAMPLE_BATCH
            || self.last_flush.elapsed() >= Duration::from_millis(250)
        {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.last_flush = Instant::now();
        if self.samples.is_empty() && self.checks.iter().all(|c| c == &[0, 0]) {
            return;
        }
        let mut c = self.shared.collected();
        for s in self.samples.drain(..) {
            c.rec.add(&s);
        }
        if self.checks.iter().any(|c| c != &[0, 0]) {
            c.rec.add_checks(&self.checks);
            self.checks.iter_mut().for_each(|c| *c = [0, 0]);
        }
    }

    /// The sample's name for the source address the user was given, until the executor
    /// reports the one used.
    fn given_source(&mut self, ip: Option<&str>) -> Arc<str> {
        if self.given.0.as_deref() != ip {
            self.given = (ip.map(str::to_string), ip.unwrap_or("-").into());
        }
        self.given.1.clone()
    }

    /// A sample of action `index` from `ip`, not yet sent.
    fn sample(&mut self, index: usize, ip: Option<&str>) -> Sample {
        Sample {
            action: self.action_ids[index].clone(),
            tenant: self.tenant.clone(),
            user: self.user,
            source: self.given_source(ip),
            sent: false,
            ok: false,
            status: None,
            latency_us: 0,
            bytes_sent: 0,
            bytes_received: 0,
            error: None,
        }
    }

    /// The sample's name for the source address the executor reports (`ip:port`).
    fn source_of(&mut self, reported: &str) -> Option<Arc<str>> {
        if self.source.0 != reported {
            let ip = reported.parse::<SocketAddr>().ok()?.ip().to_string();
            self.source = (reported.to_string(), ip.into());
        }
        Some(self.source.1.clone())
    }
}

impl Drop for UserState<'_> {
    fn drop(&mut self) {
        // Cut off (or panicked) in the middle of a request: it was sent, and never finished.
        if let Some((index, source, start)) = self.in_flight.take() {
            self.samples.push(Sample {
                action: self.action_ids[index].clone(),
                tenant: self.tenant.clone(),
                user: self.user,
                source,
                sent: true,
                ok: false,
                status: None,
                latency_us: start.elapsed().as_micros() as u64,
                bytes_sent: 0,
                bytes_received: 0,
                error: Some(INTERRUPTED.into()),
            });
            self.shared.live.requests.fetch_add(1, Ordering::Relaxed);
            self.shared.live.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.flush();
    }
}

/// The error of a request cut off when the run stopped.
pub const INTERRUPTED: &str = "interrupted";

/// A UDP action: its target and payload rendered, one exchange through the user's own socket
/// component from the user's address, the reply checked. Recorded as HTTP's are (latency,
/// bytes, errors by kind); `ACTION.ok`, `ACTION.error` and `content` exports (the reply as
/// text) for later templates; the reply kept for wait nodes.
async fn run_udp(
    st: &mut UserState<'_>,
    inst: &mut Instance,
    policy: &Policy,
    ip: Option<&str>,
    index: usize,
    udp: &crate::format::scenario::Udp,
    vars: &mut Vars,
) -> Sample {
    use crate::format::scenario::{UdpPayload, UdpTarget};
    let shared = st.shared;
    let action = &shared.scenario.actions[index];
    let mut sample = st.sample(index, ip);
    let render = |t: &str| template::render(t, vars).map_err(|e| format!("template: {e}"));
    let prepared = (|| -> Result<(SocketAddr, Vec<u8>, Option<std::net::IpAddr>), String> {
        let target = match &udp.target {
            UdpTarget::Addr(t) => {
                let t = render(t)?;
                t.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| format!("udp target {t:?}: not host:port with an IP literal"))?
            }
            UdpTarget::Parts(host, port) => {
                let (host, port) = (render(host)?, render(port)?);
                let ip = host
                    .trim()
                    .trim_matches(['[', ']'])
                    .parse()
                    .map_err(|_| format!("udp peer_ip {host:?}: not an IP address"))?;
                let port = port
                    .trim()
                    .parse()
                    .map_err(|_| format!("udp peer_port {port:?}: not a port"))?;
                SocketAddr::new(ip, port)
            }
        };
        let payload = match &udp.payload {
            UdpPayload::Text(t) => render(t)?.into_bytes(),
            UdpPayload::Bytes(b) => b.clone(),
        };
        let given = match &udp.bind_ip {
            Some(t) => {
                let t = render(t)?;
                (!t.trim().is_empty())
                    .then(|| {
                        t.trim()
                            .parse()
                            .map_err(|_| format!("bind_ip {t:?}: not an IP"))
                    })
                    .transpose()?
            }
            None => None,
        };
        let bind = match (ip.and_then(|ip| ip.parse().ok()), given) {
            (Some(mine), Some(other)) if other != mine => {
                return Err(format!(
                    "bind_ip: {other} is not the user's address from the pool ({mine})"
                ));
            }
            (Some(mine), _) => Some(mine),
            (None, given) => given,
        };
        Ok((target, payload, bind))
    })();
    let (target, payload, bind) = match prepared {
        Ok(p) => p,
        Err(e) => {
            sample.error = Some(e);
            return sample;
        }
    };
    policy.allow_target(target);
    shared.action_turn().await;
    let start = Instant::now();
    st.in_flight = Some((index, sample.source.clone(), start));
    let result = inst
        .udp(&crate::runtime::UdpExchange {
            target,
            bind,
            payload: &payload,
            reply: udp.reply,
            timeout_ms: udp.timeout_ms,
            retries: udp.retries,
            backoff_ms: udp.backoff_ms,
            max_reply: udp.max_reply,
        })
        .await;
    st.in_flight = None;
    sample.latency_us = start.elapsed().as_micros() as u64;
    let mut reply_text = None;
    let mut error_text = None;
    match result {
        Ok(Ok(o)) => {
            sample.sent = true;
            sample.bytes_sent = o.bytes_sent;
            sample.bytes_received = o.bytes_received;
            // The last try's send to its reply.
            sample.latency_us = o.latency_us;
            if let Some(src) = o.local.as_deref().and_then(|s| st.source_of(s)) {
                sample.source = src;
            }
            sample.ok = o.reply.as_deref().is_none_or(|r| udp.expect.holds(r));
            if !sample.ok {
                sample.error = Some("udp-reply-mismatch".into());
                error_text = Some("the reply did not match expect".to_string());
            }
            reply_text = o
                .reply
                .as_deref()
                .map(|r| String::from_utf8_lossy(r).into_owned());
            st.last_reply[index] = o.reply;
        }
        Ok(Err(f)) => {
            sample.sent = f.kind != "udp-socket" && f.kind != "udp-bind";
            sample.error = Some(f.kind.to_string());
            error_text = Some(f.detail);
        }
        Err(trap) => {
            sample.sent = true;
            sample.error = Some(format!("trap: {trap}"));
        }
    }
    if !action.checks.is_empty() {
        let ms = sample.latency_us as f64 / 1000.0;
        let base = shared.check_base[index];
        for (i, c) in action.checks.iter().enumerate() {
            let pass = match (&c.kind, &reply_text) {
                (CheckKind::Duration(..), _) if sample.sent => check_duration(&c.kind, ms),
                (CheckKind::BodyContains(x), Some(r)) => r.contains(x.as_str()),
                (CheckKind::BodyMatches(re), Some(r)) => re.is_match(r),
                _ => false,
            };
            st.checks[base + i][usize::from(!pass)] += 1;
        }
    }
    if shared.uses_vars {
        let scope = vars.entry(action.id.clone()).or_default();
        scope.clear();
        scope.insert("ok".into(), sample.ok.to_string());
        if let Some(e) = error_text {
            scope.insert("error".into(), e);
        }
        for e in &action.exports {
            match (&e.kind, &reply_text) {
                (ExportKind::Body, Some(r)) => {
                    scope.insert(e.name.clone(), r.clone());
                }
                _ => {
                    if let Some(d) = &e.default {
                        scope.insert(e.name.clone(), d.clone());
                    }
                }
            }
        }
    }
    sample
}

/// The call for `action`: its `with` rendered (the source address put in as `bind_ip` unless
/// it names one), and its targets allowed by the user's policy. `None` when the URL keeps a
/// template nothing declares (`{{undefined.endpoint}}`): the action is not sent and counts as
/// done, as the original's actions-http does (its way of a dry run), in `skipped`, with no
/// error, and `ACTION.ok` true.
async fn prepare(
    action: &crate::format::scenario::Action,
    policy: &Policy,
    ip: Option<&str>,
    vars: &Vars,
) -> Result<Option<exec::Action>, String> {
    let mut with =
        template::render_json(&action.with, vars).map_err(|e| format!("template: {e}"))?;
    if with
        .get("url")
        .and_then(|u| u.as_str())
        .is_some_and(|u| u.contains("{{"))
    {
        return Ok(None);
    }
    if let (Some(obj), Some(ip)) = (with.as_object_mut(), ip) {
        match obj.get("bind_ip") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) if s.is_empty() || s == ip => {}
            Some(other) => {
                // The pool's address is in force: no other (the wildcard included).
                return Err(format!(
                    "bind_ip: {other} is not the user's address from the pool ({ip})"
                ));
            }
        }
        obj.insert("bind_ip".into(), ip.into());
    }
    if let Some(url) = with.get("url").and_then(|u| u.as_str()) {
        allow_url(policy, url).await;
    }
    // `with.timeout` (the original's): the whole request's deadline.
    if let Some(obj) = with.as_object_mut()
        && let Some(t) = obj.remove("timeout")
    {
        let text = match &t {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let d = crate::format::scenario::parse_duration(&text)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("timeout: {text:?} is not a duration"))?;
        let timeouts = obj
            .entry("timeouts")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(t) = timeouts.as_object_mut() {
            t.insert(
                "total_ms".into(),
                (d.as_millis().clamp(1, u128::from(u64::MAX)) as u64).into(),
            );
        }
    }
    // Exports with a default are read here, from the outcome: their failure is no error.
    let exports = action
        .exports
        .iter()
        .filter(|e| e.default.is_none())
        .map(|e| exec::ExportSpec {
            name: e.name.clone(),
            source: match &e.kind {
                ExportKind::StatusCode => exec::ExportSource::StatusCode,
                ExportKind::Body => exec::ExportSource::Body,
                ExportKind::Header(h) => exec::ExportSource::Header(h.clone()),
                ExportKind::JsonPointer(p) => exec::ExportSource::JsonPointer(p.clone()),
            },
        })
        .collect();
    Ok(Some(exec::Action {
        id: action.id.clone(),
        call: method(&action.call),
        with_params: with.to_string(),
        exports,
    }))
}

async fn run_action(
    st: &mut UserState<'_>,
    inst: &mut Instance,
    policy: &Policy,
    ip: Option<&str>,
    index: usize,
    vars: &mut Vars,
) -> Sample {
    let shared = st.shared;
    let action = &shared.scenario.actions[index];
    if let Some(udp) = &action.udp {
        return run_udp(st, inst, policy, ip, index, udp, vars).await;
    }
    let mut sample = st.sample(index, ip);
    // An action without templates renders the same for the same source address: once.
    let fresh;
    let call = match &st.prepared[index] {
        Some((for_ip, call)) if for_ip.as_deref() == ip => call,
        _ => match prepare(action, policy, ip, vars).await {
            Ok(Some(call)) if shared.static_with[index] => {
                let slot = &mut st.prepared[index];
                &slot.insert((ip.map(str::to_string), call)).1
            }
            Ok(Some(call)) => {
                fresh = call;
                &fresh
            }
            Ok(None) => {
                sample.ok = true;
                if shared.uses_vars {
                    let scope = vars.entry(action.id.clone()).or_default();
                    scope.clear();
                    scope.insert("ok".into(), "true".into());
                }
                return sample;
            }
            Err(e) => {
                sample.error = Some(e);
                return sample;
            }
        },
    };
    shared.action_turn().await;
    let start = st
        .scheduled
        .take()
        .map_or_else(Instant::now, |t| t.min(Instant::now()));
    st.in_flight = Some((index, sample.source.clone(), start));
    let result = inst.execute(call).await;
    st.in_flight = None;
    sample.latency_us = start.elapsed().as_micros() as u64;
    // What later templates and conditions can read of this action (when any reads).
    let mut scope = shared.uses_vars.then(|| {
        let scope = vars.entry(action.id.clone()).or_default();
        scope.clear();
        scope
    });
    if !action.checks.is_empty() {
        let outcome = match &result {
            Ok(Ok(o)) => Some(o),
            _ => None,
        };
        let base = shared.check_base[index];
        let ms = sample.latency_us as f64 / 1000.0;
        for (i, c) in action.checks.iter().enumerate() {
            let pass = check_holds(&c.kind, outcome, ms);
            st.checks[base + i][usize::from(!pass)] += 1;
        }
    }
    match result {
        Ok(Ok(o)) => {
            sample.sent = true;
            sample.ok = o.status < 400;
            sample.status = Some(o.status);
            sample.bytes_sent = o.bytes_sent;
            sample.bytes_received = o.bytes_received;
            if let Some(src) = o.source_address.as_deref().and_then(|s| st.source_of(s)) {
                sample.source = src;
            }
            if !sample.ok {
                sample.error = Some(format!("http {}", o.status));
            }
            if let Some(scope) = scope.as_mut() {
                scope.insert("status_code".into(), o.status.to_string());
                for e in &action.exports {
                    if let Some(d) = &e.default {
                        scope.insert(e.name.clone(), export_or(&e.kind, &o).unwrap_or(d.clone()));
                    }
                }
                for e in o.exports {
                    scope.insert(e.name, e.value);
                }
            }
        }
        Ok(Err(e)) => {
            // Refused before anything went on the wire: an error, not a request.
            sample.sent = !matches!(
                e,
                exec::ActionError::InvalidParams(_)
                    | exec::ActionError::Pool(_)
                    | exec::ActionError::AccessDenied(_)
            );
            sample.error = Some(error_kind(&e));
            if let Some(scope) = scope.as_mut() {
                scope.insert("error".into(), error_text(&e));
                for e in &action.exports {
                    if let Some(d) = &e.default {
                        scope.insert(e.name.clone(), d.clone());
                    }
                }
            }
        }
        Err(trap) => {
            sample.sent = true;
            sample.error = Some(format!("trap: {trap}"));
        }
    }
    if let Some(scope) = scope {
        scope.insert("ok".into(), sample.ok.to_string());
    }
    sample
}

/// An export read from an outcome, as the executor reads it (`None`: not there).
fn export_or(kind: &ExportKind, o: &exec::Outcome) -> Option<String> {
    match kind {
        ExportKind::StatusCode => Some(o.status.to_string()),
        ExportKind::Body => String::from_utf8(o.body.clone()).ok(),
        ExportKind::Header(h) => o
            .headers
            .iter()
            .find(|x| x.name.eq_ignore_ascii_case(h))
            .map(|x| x.value.clone()),
        ExportKind::JsonPointer(p) => serde_json::from_slice::<serde_json::Value>(&o.body)
            .ok()?
            .pointer(p)
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
    }
}

/// Each check of the scenario with its counts (`counts` in the same order).
fn check_results(sc: &Scenario, counts: &[[u64; 2]]) -> Vec<crate::results::record::CheckResult> {
    sc.actions
        .iter()
        .flat_map(|a| a.checks.iter().map(move |c| (a.id.clone(), c.name.clone())))
        .enumerate()
        .map(|(i, (action, name))| {
            let [pass, fail] = counts.get(i).copied().unwrap_or([0, 0]);
            crate::results::record::CheckResult {
                action,
                name,
                pass,
                fail,
            }
        })
        .collect()
}

/// Whether a check holds for an answer (`None`: no answer, which fails every check).
fn check_holds(kind: &CheckKind, o: Option<&exec::Outcome>, ms: f64) -> bool {
    let Some(o) = o else { return false };
    let matches = |m: &Match, v: &str| match m {
        Match::Exists => true,
        Match::Equals(x) => v == x,
        Match::Contains(x) => v.contains(x.as_str()),
        Match::Matches(r) => r.is_match(v),
    };
    match kind {
        CheckKind::Status(codes) => codes.contains(&o.status),
        CheckKind::BodyContains(x) => o.body.windows(x.len().max(1)).any(|w| w == x.as_bytes()),
        CheckKind::BodyMatches(r) => r.is_match(&String::from_utf8_lossy(&o.body)),
        CheckKind::Header(name, m) => o
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .any(|h| matches(m, &h.value)),
        CheckKind::Json(pointer, m) => serde_json::from_slice::<serde_json::Value>(&o.body)
            .ok()
            .and_then(|v| {
                v.pointer(pointer).map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            })
            .is_some_and(|v| matches(m, &v)),
        CheckKind::Duration(..) => check_duration(kind, ms),
    }
}

/// A `duration` check on a latency in ms (false for any other kind).
fn check_duration(kind: &CheckKind, ms: f64) -> bool {
    match kind {
        CheckKind::Duration(op, limit) => match *op {
            "<" => ms < *limit,
            "<=" => ms <= *limit,
            ">" => ms > *limit,
            _ => ms >= *limit,
        },
        _ => false,
    }
}

/// The progress line: the current rate (over the last interval, `last`: when and how many
/// requests then), and the time left when the run has a duration.
fn progress_line(shared: &Shared, last: &mut (f64, u64)) -> String {
    let l = &shared.live;
    let t = shared.started.elapsed().as_secs_f64();
    let req = l.requests.load(Ordering::Relaxed);
    let rate = if t > last.0 {
        (req - last.1.min(req)) as f64 / (t - last.0)
    } else {
        0.0
    };
    *last = (t, req);
    let eta = shared
        .scenario
        .lifetime
        .duration
        .or(shared.scenario.arrival.as_ref().map(|a| a.duration()))
        .map(|d| format!(", {:.0}s left", (d.as_secs_f64() - t).max(0.0)))
        .unwrap_or_default();
    format!(
        "[{t:.1}s] {} users active, {} spawned, {} requests, {} errors, {rate:.0} req/s{eta}",
        l.active.load(Ordering::Relaxed),
        l.spawned.load(Ordering::Relaxed),
        req,
        l.errors.load(Ordering::Relaxed),
    )
}

/// Columns of the terminal on stderr, if it is one.
fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ writes one winsize into the struct given; nothing else is touched.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// At most `width` columns (the line is ASCII but for what the scenario names).
fn fit(line: &str, width: usize) -> String {
    line.chars().take(width.saturating_sub(1)).collect()
}

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
    }
    // One interval a second: kept for the report and streamed to --out.
    let mut streams = Streams::open(&opts.out)?;
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
    let mut run_errors = Vec::new();
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

/// Refuse a run whose users could not all hold a connection at once: a user alive keeps one
/// socket (more while it reconnects), and past the process's fd limit connects fail with
/// EMFILE in the middle of the run. The soft limit is raised to the hard one first.
fn check_fds(users: u32) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit on a local struct.
    let limit = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Ok(());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    };
    // The process's own: the artifact, the state file, the target's listeners, stdio.
    let need = u64::from(users) + 256;
    if need <= limit {
        return Ok(());
    }
    Err(format!(
        "{users} concurrent users need about {need} file descriptors (a connection each), and \
         this process may open {limit}. Lower load.concurrency.max_concurrent_users, spread the \
         users over processes (run --segment I/N, one process a share), or raise the limit \
         (ulimit -n)"
    ))
}

/// Refuse a run whose users could not all be alive at once: each instance holds memory
/// mappings, and past `vm.max_map_count` instantiation fails with ENOMEM in the middle of the
/// run.
fn check_mappings(users: u32, per_user: usize, now: usize, limit: usize) -> Result<(), String> {
    let need = now + per_user * users as usize;
    if need <= limit {
        return Ok(());
    }
    let fit = limit.saturating_sub(now) / per_user;
    Err(format!(
        "{users} concurrent users need about {need} memory mappings ({per_user} per user), and \
         vm.max_map_count is {limit}: about {fit} users fit. Lower \
         load.concurrency.max_concurrent_users, spread the users over processes (run \
         --segment I/N, one process a share), or raise the limit (sysctl -w \
         vm.max_map_count={})",
        need.next_power_of_two()
    ))
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

/// Users run on one single-threaded runtime per core, each with its own event loop (as wrk
/// runs one per thread): a user's socket events wake the thread that runs it, instead of
/// waking and handing work between the threads of one shared runtime, which cost more than
/// the requests themselves under load.
struct Shards {
    handles: Vec<tokio::runtime::Handle>,
    threads: Vec<(
        std::thread::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

impl Shards {
    fn start(users: usize) -> Result<Shards, String> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut shards = Shards {
            handles: Vec::new(),
            threads: Vec::new(),
        };
        for i in 0..cores.min(users.max(1)) {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("users-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => return drop(handle_tx.send(Err(e.to_string()))),
                    };
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = stop_rx.await;
                    });
                })
                .map_err(|e| format!("starting a user thread: {e}"))?;
            let handle = handle_rx
                .recv()
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|e| format!("starting a user runtime: {e}"))?;
            shards.handles.push(handle);
            shards.threads.push((thread, stop_tx));
        }
        Ok(shards)
    }

    fn next(&self, user: u32) -> &tokio::runtime::Handle {
        &self.handles[user as usize % self.handles.len()]
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        for (thread, stop) in self.threads.drain(..) {
            let _ = stop.send(());
            let _ = thread.join();
        }
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
