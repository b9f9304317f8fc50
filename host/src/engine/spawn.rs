//! Starting users as the load model says: ramping stages (k6's ramping-vus), an arrival
//! schedule (the open model), or phases.

use super::*;

/// The users' tasks, which user each runs (to name the one whose task panicked), and the
/// threads they run on.
pub(super) struct Crowd {
    pub(super) tasks: tokio::task::JoinSet<()>,
    pub(super) users: HashMap<tokio::task::Id, (u32, String)>,
    pub(super) shards: Shards,
}

impl Crowd {
    /// Start `user` on its shard (with its place under the concurrency cap, if any).
    pub(super) fn spawn(
        &mut self,
        shared: &Arc<Shared>,
        user: User,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        spawn_user(
            shared,
            &mut self.tasks,
            &mut self.users,
            &self.shards,
            user,
            permit,
        );
    }

    /// Account for the users whose tasks ended, without waiting.
    pub(super) fn reap(&mut self, shared: &Shared) {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            ended(shared, &mut self.users, done);
        }
    }
}

/// Ramping users: every 100 ms the running users follow the target, new ones added, the
/// newest told to leave after their current iteration.
pub(super) async fn by_stages(
    shared: &Arc<Shared>,
    crowd: &mut Crowd,
    stages: &crate::format::scenario::UserStages,
    segment: Option<(u32, u32)>,
) {
    let sc = &shared.scenario;
    let mut alive: Vec<Arc<AtomicBool>> = Vec::new();
    let (seg_i, seg_n) = segment.unwrap_or((0, 1));
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
            crowd.spawn(shared, user, None);
        }
        while alive.len() as u32 > target {
            if let Some(r) = alive.pop() {
                r.store(true, Ordering::SeqCst);
            }
        }
        crowd.reap(shared);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = wait_stop(shared) => break,
        }
    }
    for r in alive {
        r.store(true, Ordering::SeqCst);
    }
}

/// The open model: iterations start on schedule, each in a free user; a new user when none
/// is free, up to max_users; past that the iteration is dropped (counted).
pub(super) async fn by_arrival(
    shared: &Arc<Shared>,
    crowd: &mut Crowd,
    arrival: &crate::format::scenario::ArrivalRate,
    segment: Option<(u32, u32)>,
) {
    let sc = &shared.scenario;
    let (idle_tx, mut idle_rx) = tokio::sync::mpsc::unbounded_channel();
    let tenant = arrival
        .tenant
        .clone()
        .unwrap_or_else(|| crate::format::scenario::DEFAULT_TENANT.into());
    // Open-model users are numbered apart per segment: ids I+1, I+1+N, ...
    let (seg_i, seg_n) = segment.unwrap_or((0, 1));
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
        crowd.spawn(shared, user, None);
    }
    // `--iterations N`: the schedule's first N iterations (this segment's share of them).
    let total = sc
        .lifetime
        .shared_iterations
        .map_or(usize::MAX, |n| n as usize);
    'schedule: for offset in arrival.schedule().take(total) {
        let due = shared.started + offset;
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = wait_stop(shared) => break 'schedule,
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
                crowd.spawn(shared, user, None);
            } else {
                shared.live.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // The schedule is over: users waiting for an iteration end.
    drop(idle_rx);
}

/// Phases: each one's users at its time, at most the spawn rate, under the concurrency cap.
pub(super) async fn by_phases(
    shared: &Arc<Shared>,
    crowd: &mut Crowd,
    limit: &Arc<Semaphore>,
    segment: Option<(u32, u32)>,
) -> Result<(), String> {
    let sc = &shared.scenario;
    let mut phases = sc.phases.clone();
    phases.sort_by_key(|p| p.at);
    let mut next_id = 0u32;
    let mut last_spawn: Option<Instant> = None;
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
            if let Some((i, n)) = segment
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
                    _ = wait_stop(shared) => break 'phases,
                }
            }
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => p.map_err(|e| e.to_string())?,
                _ = wait_stop(shared) => break 'phases,
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
            crowd.spawn(shared, user, Some(permit));
        }
    }
    Ok(())
}
