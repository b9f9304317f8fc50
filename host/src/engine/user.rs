//! A user's life: its address from the authority, its passes through the workflow, its
//! think time, and what it keeps from one request to the next.

use super::*;

/// A user's source address, from the authority: from `pool_id`, or when it has none from the
/// fallback pool (`capacity_management.fallback_pool`), waiting on exhaustion if so configured.
/// With the binding, the scenario pool it came from (the one to release it to).
pub(super) async fn acquire(
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

pub(super) struct User {
    pub(super) id: u32,
    pub(super) tenant: String,
    pub(super) pool: Option<String>,
    /// The open model: iterations come from the schedule instead of the user's lifetime.
    pub(super) jobs: Option<Jobs>,
    /// Ramping users: set when the user is to leave (after its current iteration); it loops
    /// until then, whatever the lifetime's iterations.
    pub(super) retire: Option<Arc<AtomicBool>>,
}

/// A user of the open model: its first iteration's scheduled start, and where it says it is
/// free (a one-shot sender the schedule uses to give it the next start).
pub(super) struct Jobs {
    pub(super) first: Option<Instant>,
    pub(super) idle: tokio::sync::mpsc::UnboundedSender<tokio::sync::oneshot::Sender<Instant>>,
}

/// The next scheduled start for an open-model user: announce itself free and wait; `None`
/// when the schedule is over (its sender dropped) or the run stops.
pub(super) async fn next_job(shared: &Shared, jobs: &mut Jobs) -> Option<Instant> {
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

pub(super) async fn run_user(shared: Arc<Shared>, mut user: User) {
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
    let addr = Addressing::of(sc, &user);
    // The address in force, and the pool it goes back to.
    let mut held: Option<(pool::Binding, String)> = None;
    if addr.on {
        // Nothing to bind until the pool gives an address.
        policy.pin(None);
    }
    if addr.on && !addr.per_task {
        match acquire(&shared, &addr.pool_id, &addr.own).await {
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
    while next_pass(
        &shared,
        (&mut user.jobs, &user.retire),
        &mut state,
        n,
        iterations,
    )
    .await
    {
        let ip = held.as_ref().map(|(b, _)| b.ip.clone());
        if addr.on && !addr.per_task {
            // The policy follows the binding in force: this address, and no other.
            policy.pin(ip.as_ref().and_then(|ip| ip.parse().ok()));
        }
        // `per_task`: a task is a workflow node, with an address of its own (as the original).
        let task_binding = (addr.on && addr.per_task).then(|| pass::TaskBinding {
            pool_id: &addr.pool_id,
            own: &addr.own,
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
        if state.trapped {
            match fresh_instance(&shared, &policy, &user, &mut state).await {
                Ok(i) => inst = i,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if shared.watch_thresholds {
            // Thresholds judged while the run goes see each iteration.
            state.flush();
        }
        n += 1;
        // Ramping users loop until told to leave, whatever the lifetime's count.
        let more = user.retire.is_some() || iterations == 0 || n < iterations;
        if more && !sc.lifetime.think_time.is_zero() && user.jobs.is_none() {
            think(&shared, &mut state).await;
        }
    }
    super::websocket::close_kept(&mut state, &mut inst).await;
    // A shared address belongs to the tenant; it is released at the end of the run.
    if let Some((_, from)) = &held
        && sc.ip_binding.strategy != BindStrategy::Shared
        && let Err(e) = shared.authority.release(from, &addr.own).await
    {
        error.get_or_insert(e);
    }
    if let Some(e) = error {
        fail(e);
    }
}

/// A fresh instance for a user whose instance trapped (as a k6 VU goes on after an
/// exception): what lived in the old one (connections, cookies, WebSocket sessions) is gone.
async fn fresh_instance(
    shared: &Shared,
    policy: &Arc<Policy>,
    user: &User,
    state: &mut UserState<'_>,
) -> Result<Instance, String> {
    state.trapped = false;
    state.ws_sessions.clear();
    shared
        .runtime
        .instantiate(policy.clone(), Some(user.tenant.as_str()))
        .await
}

/// Where a user's addresses come from: whether a binding is in force, its pool, the owner
/// the pool knows the user by, and whether each task (workflow node) takes its own.
struct Addressing {
    on: bool,
    pool_id: String,
    own: pool::Owner,
    per_task: bool,
}

impl Addressing {
    fn of(sc: &crate::format::scenario::Scenario, user: &User) -> Addressing {
        let resource = match sc.ip_binding.strategy {
            BindStrategy::Shared => "shared".to_string(),
            _ => format!("user-{}", user.id),
        };
        Addressing {
            on: sc.ip_binding.enabled && user.pool.is_some(),
            pool_id: user.pool.clone().unwrap_or_default(),
            own: owner(&user.tenant, &resource),
            per_task: sc.ip_binding.strategy == BindStrategy::PerTask
                || sc.ip_binding.release_on == ReleaseOn::TaskEnd,
        }
    }
}

/// Whether the user runs another pass: the open model's next scheduled start, a ramping
/// user not yet retired, or the lifetime's count, the run's shared iterations and its
/// duration; and this pass's data rows (unique rows run out: the user stops).
async fn next_pass(
    shared: &Shared,
    (jobs, retire): (&mut Option<Jobs>, &Option<Arc<AtomicBool>>),
    state: &mut UserState<'_>,
    n: u32,
    iterations: u32,
) -> bool {
    let sc = &shared.scenario;
    let stop = || shared.stop.load(Ordering::SeqCst);
    if let Some(jobs) = jobs.as_mut() {
        // Open model: one iteration per scheduled start, latency counted from it. What the
        // last one recorded goes to the run before the user waits.
        state.flush();
        match next_job(shared, jobs).await {
            Some(t) => state.scheduled = Some(t),
            None => return false,
        }
    } else if let Some(r) = retire {
        if r.load(Ordering::SeqCst) || stop() {
            return false;
        }
    } else {
        if stop() || (iterations != 0 && n >= iterations) {
            return false;
        }
        // Shared iterations: the next of the run's, while there are any left.
        if let Some(total) = sc.lifetime.shared_iterations
            && shared.claimed.fetch_add(1, Ordering::SeqCst) >= total
        {
            return false;
        }
        if sc
            .lifetime
            .duration
            .is_some_and(|d| shared.started.elapsed() >= d)
        {
            return false;
        }
    }
    state.pick_rows()
}

/// The think time between passes (ending early when the run stops or its duration ends);
/// what happened before it goes to the run first, in its own interval.
async fn think(shared: &Shared, state: &mut UserState<'_>) {
    let sc = &shared.scenario;
    state.flush();
    let pause = sc
        .lifetime
        .think_time
        .sample(state.random(), state.random());
    let mut until = Instant::now() + pause;
    if let Some(d) = sc.lifetime.duration {
        until = until.min(shared.started + d);
    }
    while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(50))).await;
    }
}

/// What a user keeps from one request to the next.
pub(super) struct UserState<'a> {
    pub(super) shared: &'a Shared,
    pub(super) user: u32,
    pub(super) tenant: Arc<str>,
    /// Per action (in scenario order), for actions without templates: the call as rendered,
    /// and the source address it was rendered with.
    pub(super) prepared: Vec<Option<(Option<String>, super::action::Call)>>,
    /// Per action (in scenario order): its id, as shown in samples.
    pub(super) action_ids: Vec<Arc<str>>,
    /// The last source address the user was given (None: none), as shown in samples ("-").
    pub(super) given: (Option<String>, Arc<str>),
    /// The last source address seen, as reported by the executor and as shown in samples.
    pub(super) source: (String, Arc<str>),
    /// Samples not yet handed to the run's collection (in batches, and when the user ends or
    /// is cut off).
    pub(super) samples: Vec<Sample>,
    /// The request being executed (its action's index, its source, when it started): if the
    /// user is cut off at the drain, it is counted as interrupted.
    pub(super) in_flight: Option<(usize, Arc<str>, Instant)>,
    /// Per check: [passed, failed] since the last flush.
    pub(super) checks: Vec<[u64; 2]>,
    /// When the samples were last handed over (they go at least every 250 ms, so the
    /// intervals see them).
    pub(super) last_flush: Instant,
    /// Open model: when the current iteration was due; its first request's latency counts
    /// from then, so time spent waiting for a free user shows (no coordinated omission).
    pub(super) scheduled: Option<Instant>,
    /// Ids of the dynamic tasks this user has run (each runs once).
    pub(super) dynamic_seen: HashSet<String>,
    /// Per action: its last UDP reply in this pass (what wait nodes look at).
    pub(super) last_reply: Vec<Option<Vec<u8>>>,
    /// The user's own random sequence (think times, random data rows).
    rng: u64,
    /// Per data source, the row of this pass.
    pub(super) rows: Vec<usize>,
    /// `once` nodes' actions run in the first pass: how each ended (by action index).
    pub(super) once: std::collections::HashMap<usize, crate::format::scenario::Outcome>,
    /// Their variables (exports, `ok`, `status_code`), seen by every later pass.
    pub(super) kept: crate::format::template::Vars,
    /// WebSocket sessions kept open (`keep_open`), by name.
    pub(super) ws_sessions: HashMap<String, super::websocket::Kept>,
    /// A call into the instance trapped: it cannot be entered again, so the pass ends and
    /// the user goes on in a fresh instance.
    pub(super) trapped: bool,
}

/// Samples handed over at once: one lock per batch instead of one per request.
pub(super) const SAMPLE_BATCH: usize = 256;

impl<'a> UserState<'a> {
    pub(super) fn new(shared: &'a Shared, user: &User) -> Self {
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
            once: Default::default(),
            rows: vec![0; shared.scenario.data.len()],
            kept: Default::default(),
            ws_sessions: HashMap::new(),
            trapped: false,
            rng: (u64::from(user.id) << 32 | u64::from(std::process::id()))
                ^ shared.started.elapsed().as_nanos() as u64
                | 1,
        }
    }

    /// Take this pass's row of each data source; false when a unique source ran out (it
    /// is noted for the report).
    pub(super) fn pick_rows(&mut self) -> bool {
        let shared = self.shared;
        for (i, d) in shared
            .scenario
            .data
            .iter()
            .enumerate()
            .filter(|(_, d)| d.read)
        {
            let next = match d.mode {
                crate::format::scenario::DataMode::Sequential
                | crate::format::scenario::DataMode::Unique => {
                    shared.data_next[i].fetch_add(1, Ordering::SeqCst)
                }
                _ => 0,
            };
            let draw = match d.mode {
                crate::format::scenario::DataMode::Random => self.random(),
                _ => 0.0,
            };
            match d.row(next, self.user, draw) {
                Some(r) => self.rows[i] = r,
                None => {
                    shared
                        .data_out
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(d.id.clone());
                    return false;
                }
            }
        }
        true
    }

    /// A draw uniform in [0, 1) (xorshift64*).
    pub(super) fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn record(&mut self, sample: Sample) {
        // Every trap is recorded as a sample of its own kind (`trap: ...`).
        self.trapped |= sample
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("trap: "));
        self.samples.push(sample);
        if self.samples.len() >= SAMPLE_BATCH
            || self.last_flush.elapsed() >= Duration::from_millis(250)
        {
            self.flush();
        }
    }

    pub(super) fn flush(&mut self) {
        self.last_flush = Instant::now();
        if self.samples.is_empty() && self.checks.iter().all(|c| c == &[0, 0]) {
            return;
        }
        let mut c = self.shared.collected();
        c.rec.add_all(&self.samples);
        if self.checks.iter().any(|c| c != &[0, 0]) {
            c.rec.add_checks(&self.checks);
            self.checks.iter_mut().for_each(|c| *c = [0, 0]);
        }
        drop(c);
        // The samples' names let go of outside the run's lock.
        self.samples.clear();
    }

    /// The sample's name for the source address the user was given, until the executor
    /// reports the one used.
    pub(super) fn given_source(&mut self, ip: Option<&str>) -> Arc<str> {
        if self.given.0.as_deref() != ip {
            self.given = (ip.map(str::to_string), ip.unwrap_or("-").into());
        }
        self.given.1.clone()
    }

    /// A sample of action `index` from `ip`, not yet sent.
    pub(super) fn sample(&mut self, index: usize, ip: Option<&str>) -> Sample {
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
            ws: None,
        }
    }

    /// The sample's name for the source address the executor reports (`ip:port`).
    pub(super) fn source_of(&mut self, reported: &str) -> Option<Arc<str>> {
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
                ws: None,
            });
            self.shared.live.requests.fetch_add(1, Ordering::Relaxed);
            self.shared.live.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.flush();
    }
}
