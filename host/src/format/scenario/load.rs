//! `load:`: phases, stages or an arrival rate, the users' lifetime, their addresses and the
//! concurrency limits. serde fills the schema's `Load` (types, required fields, unknown
//! fields); the passes here judge what it says (ranges, names of pools, one load model).

use super::*;

/// `load:`'s parts.
pub(super) struct Load {
    pub phases: Vec<Phase>,
    pub lifetime: Lifetime,
    pub ip_binding: IpBinding,
    pub concurrency: Concurrency,
    pub arrival: Option<ArrivalRate>,
    pub stages: Option<UserStages>,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            phases: Vec::new(),
            lifetime: Lifetime {
                mode: Mode::Once,
                iterations: 1,
                think_time: Think::None,
                duration: None,
                shared_iterations: None,
            },
            ip_binding: IpBinding {
                enabled: false,
                pool: None,
                strategy: BindStrategy::PerUser,
                release_on: ReleaseOn::UserExit,
                wait_on_exhaustion: false,
                wait_timeout: Duration::from_secs(30),
                fallback_pool: None,
            },
            concurrency: Concurrency {
                max_users: None,
                spawn_rate: None,
                action_rate: None,
            },
            arrival: None,
            stages: None,
        }
    }
}

/// `load:` (and the top-level `user_resources:` of the original's UDP files).
pub(super) fn load(w: &mut Walker, top: &serde_yaml::Mapping, pools: &[PoolSpec]) -> Load {
    let Some(v) = get(top, "load") else {
        w.problem("load", "required");
        return Load::default();
    };
    let Some(l) = w.typed::<schema::Load>(v, "load") else {
        return Load::default();
    };
    let top_resources = match get(top, "user_resources") {
        Some(v) => w.typed::<schema::UserResources>(v, "user_resources"),
        None => None,
    };
    let (ur_path, resources) = match (&l.user_resources, &top_resources) {
        (Some(_), Some(_)) => {
            w.problem("user_resources", "given twice: here and in load");
            ("load.user_resources", l.user_resources.as_ref())
        }
        (None, Some(top)) => ("user_resources", Some(top)),
        (ours, None) => ("load.user_resources", ours.as_ref()),
    };
    let mut out = Load {
        arrival: l.arrival_rate.as_ref().and_then(|a| arrival_rate(w, a)),
        stages: l
            .stages
            .as_ref()
            .and_then(|s| user_stages(w, s, l.start_users)),
        phases: l
            .ramp_up
            .as_ref()
            .map(|r| phases(w, &r.phases, pools))
            .unwrap_or_default(),
        ..Load::default()
    };
    if let Some(m) = &l.user_lifetime {
        out.lifetime = lifetime(w, m, l.stages.is_some());
    }
    if let Some(b) = resources.and_then(|r| r.ip_binding.as_ref()) {
        out.ip_binding = ip_binding(w, b, &join(ur_path, "ip_binding"), &out.phases, pools);
    }
    if let Some(c) = &l.concurrency {
        out.concurrency = concurrency(w, c);
    }
    if let Some(c) = resources.and_then(|r| r.capacity_management.as_ref()) {
        let p = join(ur_path, "capacity_management");
        capacity(w, c, &p, &mut out.ip_binding, pools);
    }
    one_model(w, &mut out);
    out
}

/// `load.stages`: ramping users (k6's ramping-vus).
fn user_stages(w: &mut Walker, stages: &[schema::Stage], start: Option<u64>) -> Option<UserStages> {
    let mut out = Vec::new();
    for (i, st) in stages.iter().enumerate() {
        let sp = format!("load.stages[{i}]");
        let d = w.dur(Some(&st.duration), &join(&sp, "duration"));
        match d {
            Some(d) if st.target <= 100_000 => out.push((st.target as u32, d)),
            Some(_) => w.problem(&join(&sp, "target"), "at most 100000 users"),
            None => {}
        }
    }
    if stages.is_empty() {
        w.problem("load.stages", "at least one stage is required");
    }
    (!out.is_empty()).then(|| UserStages {
        start_users: start.unwrap_or(0).min(100_000) as u32,
        stages: out,
        tenant: None,
    })
}

/// `load.ramp_up.phases`: users spawned at a second of the run.
fn phases(w: &mut Walker, phases: &[schema::Phase], pools: &[PoolSpec]) -> Vec<Phase> {
    let mut out = Vec::new();
    for (i, m) in phases.iter().enumerate() {
        let path = format!("load.ramp_up.phases[{i}]");
        let at = match m.at_second {
            None => Duration::ZERO,
            Some(n) => seconds(n).unwrap_or_else(|| {
                w.problem(
                    &join(&path, "at_second"),
                    "expected a number of seconds from 0 to 31536000 (a year)",
                );
                Duration::ZERO
            }),
        };
        if m.spawn_users > 100_000 {
            w.problem(
                &join(&path, "spawn_users"),
                "at most 100000 users per phase",
            );
        }
        let pool = opt_text(&m.ip_pool_override);
        if let Some(p) = &pool
            && !pools.iter().any(|x| &x.id == p)
        {
            w.problem(
                &join(&path, "ip_pool_override"),
                format!("no ip pool {p:?}"),
            );
        }
        out.push(Phase {
            at,
            users: m.spawn_users.min(100_000) as u32,
            tenant: opt_text(&m.tenant_id),
            pool,
        });
    }
    out
}

/// `load.user_lifetime`: once or loop, how many passes, the pause between them, the deadline.
fn lifetime(w: &mut Walker, m: &schema::UserLifetime, stages: bool) -> Lifetime {
    let p = "load.user_lifetime";
    let mode = match opt_text(&m.mode).as_deref() {
        None | Some("once") => Mode::Once,
        Some("loop") => Mode::Loop,
        Some(other) => {
            w.problem(
                &join(p, "mode"),
                format!("unknown mode {other:?} (once, loop)"),
            );
            Mode::Once
        }
    };
    let think_time = match &m.think_time {
        Some(t) => super::think::think(w, t, &join(p, "think_time")),
        None => Think::None,
    };
    let duration = w.dur(m.duration.as_ref(), &join(p, "duration"));
    let iterations = m.iterations.map(|n| n.min(u32::MAX as u64) as u32);
    // Without a count, a loop with a duration loops until it ends.
    let iterations = match (iterations, duration) {
        _ if mode == Mode::Once => 1,
        (Some(n), _) => n,
        (None, Some(_)) => 0,
        (None, None) => {
            if !stages {
                w.warn(
                    p,
                    "mode loop with neither iterations nor duration: each user runs once \
                     (give iterations, or a duration)",
                );
            }
            1
        }
    };
    if m.max_concurrency.is_some_and(|n| n > 1) {
        w.warn(
            &join(p, "max_concurrency"),
            "each user runs one task at a time here",
        );
    }
    Lifetime {
        mode,
        iterations,
        think_time,
        duration,
        shared_iterations: None,
    }
}

/// `user_resources.ip_binding` at `p`: where each user's address comes from.
fn ip_binding(
    w: &mut Walker,
    m: &schema::IpBinding,
    p: &str,
    phases: &[Phase],
    pools: &[PoolSpec],
) -> IpBinding {
    let mut b = Load::default().ip_binding;
    b.enabled = m.enabled.unwrap_or(true);
    b.pool = opt_text(&m.pool_id);
    // The original looks the pool up only when the binding is enabled.
    if let Some(id) = b.pool.clone()
        && b.enabled
        && !pools.iter().any(|x| x.id == id)
    {
        if id == HOST_POOL {
            // The original's host resources pool: the host's own address.
            w.warn(
                &join(p, "pool_id"),
                format!(
                    "{HOST_POOL:?} is not declared: users send from the host's own address \
                     (the original's host resources pool)"
                ),
            );
            b.enabled = false;
            b.pool = None;
        } else {
            w.problem(&join(p, "pool_id"), format!("no ip pool {id:?}"));
        }
    }
    b.strategy = match opt_text(&m.strategy).as_deref() {
        None | Some("per_user") => BindStrategy::PerUser,
        Some("shared") => BindStrategy::Shared,
        Some("per_task") => BindStrategy::PerTask,
        Some(other) => {
            w.problem(
                &join(p, "strategy"),
                format!("unknown strategy {other:?} (per_user, shared, per_task)"),
            );
            BindStrategy::PerUser
        }
    };
    b.release_on = match opt_text(&m.release_on).as_deref() {
        None | Some("user_exit") => ReleaseOn::UserExit,
        Some("task_end") => ReleaseOn::TaskEnd,
        Some(other) => {
            w.problem(
                &join(p, "release_on"),
                format!("unknown value {other:?} (task_end, user_exit)"),
            );
            ReleaseOn::UserExit
        }
    };
    b.wait_on_exhaustion = m.wait_on_exhaustion.unwrap_or(false);
    if let Some(d) = w.dur(m.wait_timeout.as_ref(), &join(p, "wait_timeout")) {
        b.wait_timeout = d;
    }
    if b.enabled && b.pool.is_none() && phases.iter().any(|ph| ph.pool.is_none()) {
        w.problem(
            &join(p, "pool_id"),
            "required when ip_binding is enabled (or give every phase an ip_pool_override)",
        );
    }
    b
}

/// `load.concurrency`: users alive at once, users started and actions run per second.
fn concurrency(w: &mut Walker, m: &schema::Concurrency) -> Concurrency {
    let p = "load.concurrency";
    let mut c = Load::default().concurrency;
    if let Some(n) = m.max_concurrent_users {
        if n == 0 || n > 100_000 {
            w.problem(&join(p, "max_concurrent_users"), "between 1 and 100000");
        }
        c.max_users = Some(n.clamp(1, 100_000) as u32);
    }
    if let Some(s) = m.spawn_rate_limit.as_ref().map(schema::Rate::text) {
        let rate = s
            .trim_end_matches("/s")
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (MIN_RATE..=MAX_RATE).contains(r));
        if rate.is_none() {
            w.problem(
                &join(p, "spawn_rate_limit"),
                format!(
                    "bad rate {s:?} (use e.g. 100/s; from one a day, 0.0000116/s, to 1000000/s)"
                ),
            );
        }
        c.spawn_rate = rate;
    }
    if let Some(r) = &m.action_rate_limit {
        let p = &join(p, "action_rate_limit");
        c.action_rate = rate(w, r, p);
        if c.action_rate.is_some_and(|r| r < MIN_RATE) {
            w.problem(p, "at least one a day (0.0000116/s)");
        }
    }
    c
}

/// The original's `capacity_management` at `p`, beside ip_binding: the same waiting (it wins
/// where both say), and a fallback pool.
fn capacity(
    w: &mut Walker,
    m: &schema::CapacityManagement,
    p: &str,
    b: &mut IpBinding,
    pools: &[PoolSpec],
) {
    if let Some(wait) = m.wait_on_exhaustion {
        b.wait_on_exhaustion = wait;
    }
    if let Some(d) = w.dur(m.wait_timeout.as_ref(), &join(p, "wait_timeout")) {
        b.wait_timeout = d;
    }
    b.fallback_pool = opt_text(&m.fallback_pool);
    if let Some(id) = &b.fallback_pool
        && b.enabled
        && !pools.iter().any(|x| &x.id == id)
    {
        w.problem(&join(p, "fallback_pool"), format!("no ip pool {id:?}"));
    }
}

/// One load model (ramp_up phases, stages or an arrival rate), its users as phases, and no
/// more users in all than a run can have.
fn one_model(w: &mut Walker, l: &mut Load) {
    if let Some(st) = &l.stages {
        if !l.phases.is_empty() || l.arrival.is_some() {
            w.problem(
                "load.stages",
                "give one load model: ramp_up phases, stages or arrival_rate",
            );
        }
        l.phases.push(Phase {
            at: Duration::ZERO,
            users: st.max_users(),
            tenant: None,
            pool: None,
        });
    } else if let Some(a) = &l.arrival {
        if !l.phases.is_empty() {
            w.problem(
                "load.arrival_rate",
                "give ramp_up phases (closed model) or arrival_rate (open model), not both",
            );
        }
        // The users of the open model, as phases: one tenant, spawned as iterations need them.
        l.phases.push(Phase {
            at: Duration::ZERO,
            users: a.max_users,
            tenant: a.tenant.clone(),
            pool: None,
        });
    } else if l.phases.is_empty() {
        w.problem("load.ramp_up.phases", "at least one phase is required");
    }
    let total: u64 = l.phases.iter().map(|p| u64::from(p.users)).sum();
    if total > MAX_TOTAL_USERS {
        w.problem(
            "load.ramp_up.phases",
            format!("{total} users in all; at most {MAX_TOTAL_USERS}"),
        );
    }
}
