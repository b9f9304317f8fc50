//! `load:`: phases, stages or an arrival rate, the users' lifetime, their addresses and the
//! concurrency limits.

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

/// `load:` (and the top-level `user_resources:` of the original's UDP files).
pub(super) fn load(w: &mut Walker, top: &serde_yaml::Mapping, pools: &[PoolSpec]) -> Load {
    let mut phases = Vec::new();
    let mut lifetime = Lifetime {
        mode: Mode::Once,
        iterations: 1,
        think_time: Think::None,
        duration: None,
        shared_iterations: None,
    };
    let mut ip_binding = IpBinding {
        enabled: false,
        pool: None,
        strategy: BindStrategy::PerUser,
        release_on: ReleaseOn::UserExit,
        wait_on_exhaustion: false,
        wait_timeout: Duration::from_secs(30),
        fallback_pool: None,
    };
    let mut concurrency = Concurrency {
        max_users: None,
        spawn_rate: None,
        action_rate: None,
    };
    let mut arrival = None;
    let mut user_stages = None;
    match get(top, "load").and_then(|v| w.map(v, "load", schema::fields::<schema::Load>())) {
        None => w.problem("load", "required"),
        Some(load) => {
            if let Some(a) = get(load, "arrival_rate") {
                arrival = arrival_rate(w, a);
            }
            if get(load, "stages").is_some() {
                let mut stages = Vec::new();
                for (i, st) in w
                    .list(get(load, "stages"), "load.stages")
                    .iter()
                    .enumerate()
                {
                    let sp = format!("load.stages[{i}]");
                    let Some(sm) = w.map(st, &sp, schema::fields::<schema::Stage>()) else {
                        continue;
                    };
                    let target = w.uint(get(sm, "target"), &join(&sp, "target"));
                    let d = w.duration(get(sm, "duration"), &join(&sp, "duration"));
                    match (target, d) {
                        (Some(t), Some(d)) if t <= 100_000 => stages.push((t as u32, d)),
                        (Some(_), Some(_)) => {
                            w.problem(&join(&sp, "target"), "at most 100000 users")
                        }
                        _ => w.problem(&sp, "target (users) and duration are required"),
                    }
                }
                let start = w
                    .uint(get(load, "start_users"), "load.start_users")
                    .unwrap_or(0)
                    .min(100_000) as u32;
                if stages.is_empty() {
                    w.problem("load.stages", "at least one stage is required");
                } else {
                    user_stages = Some(UserStages {
                        start_users: start,
                        stages,
                        tenant: None,
                    });
                }
            }
            if let Some(ru) = get(load, "ramp_up")
                .and_then(|v| w.map(v, "load.ramp_up", schema::fields::<schema::RampUp>()))
            {
                for (i, p) in w
                    .list(get(ru, "phases"), "load.ramp_up.phases")
                    .iter()
                    .enumerate()
                {
                    let path = format!("load.ramp_up.phases[{i}]");
                    let Some(m) = w.map(p, &path, schema::fields::<schema::Phase>()) else {
                        continue;
                    };
                    let at = match get(m, "at_second") {
                        None => Duration::ZERO,
                        Some(Value::Number(n)) if n.as_f64().and_then(seconds).is_some() => {
                            n.as_f64().and_then(seconds).unwrap_or_default()
                        }
                        Some(_) => {
                            w.problem(
                                &join(&path, "at_second"),
                                "expected a number of seconds from 0 to 31536000 (a year)",
                            );
                            Duration::ZERO
                        }
                    };
                    let users = w
                        .uint(get(m, "spawn_users"), &join(&path, "spawn_users"))
                        .unwrap_or(0);
                    if users > 100_000 {
                        w.problem(
                            &join(&path, "spawn_users"),
                            "at most 100000 users per phase",
                        );
                    }
                    let tenant = w.string(get(m, "tenant_id"), &join(&path, "tenant_id"), false);
                    let pool = w.string(
                        get(m, "ip_pool_override"),
                        &join(&path, "ip_pool_override"),
                        false,
                    );
                    if let Some(p) = &pool
                        && !pools.iter().any(|x| &x.id == p)
                    {
                        w.problem(
                            &join(&path, "ip_pool_override"),
                            format!("no ip pool {p:?}"),
                        );
                    }
                    phases.push(Phase {
                        at,
                        users: users as u32,
                        tenant,
                        pool,
                    });
                }
            }
            if let Some(m) = get(load, "user_lifetime").and_then(|v| {
                w.map(
                    v,
                    "load.user_lifetime",
                    schema::fields::<schema::UserLifetime>(),
                )
            }) {
                lifetime.mode = match w
                    .string(get(m, "mode"), "load.user_lifetime.mode", false)
                    .as_deref()
                {
                    None | Some("once") => Mode::Once,
                    Some("loop") => Mode::Loop,
                    Some(other) => {
                        w.problem(
                            "load.user_lifetime.mode",
                            format!("unknown mode {other:?} (once, loop)"),
                        );
                        Mode::Once
                    }
                };
                let iterations = w
                    .uint(get(m, "iterations"), "load.user_lifetime.iterations")
                    .map(|n| n.min(u32::MAX as u64) as u32);
                lifetime.think_time =
                    super::think::think(w, get(m, "think_time"), "load.user_lifetime.think_time");
                lifetime.duration = w.duration(get(m, "duration"), "load.user_lifetime.duration");
                // Without a count, a loop with a duration loops until it ends.
                lifetime.iterations = match (iterations, lifetime.duration) {
                    (Some(n), _) => n,
                    (None, Some(_)) => 0,
                    (None, None) => {
                        if lifetime.mode == Mode::Loop && get(load, "stages").is_none() {
                            w.warnings.push(Problem {
                                path: "load.user_lifetime".into(),
                                message: "mode loop with neither iterations nor duration: each \
                                          user runs once (give iterations, or a duration)"
                                    .into(),
                                line: None,
                            });
                        }
                        1
                    }
                };
                if w.uint(
                    get(m, "max_concurrency"),
                    "load.user_lifetime.max_concurrency",
                )
                .is_some_and(|n| n > 1)
                {
                    w.warnings.push(Problem {
                        path: "load.user_lifetime.max_concurrency".into(),
                        message: "each user runs one task at a time here".into(),
                        line: None,
                    });
                }
                if lifetime.mode == Mode::Once {
                    lifetime.iterations = 1;
                }
            }
            // The original's UDP scenarios put user_resources at the top.
            let (ur_path, ur_value) =
                match (get(load, "user_resources"), get(top, "user_resources")) {
                    (Some(v), None) => ("load.user_resources", Some(v)),
                    (None, Some(v)) => ("user_resources", Some(v)),
                    (None, None) => ("load.user_resources", None),
                    (Some(v), Some(_)) => {
                        w.problem("user_resources", "given twice: here and in load");
                        ("load.user_resources", Some(v))
                    }
                };
            if let Some(ur) =
                ur_value.and_then(|v| w.map(v, ur_path, schema::fields::<schema::UserResources>()))
                && let Some(m) = get(ur, "ip_binding").and_then(|v| {
                    w.map(
                        v,
                        &join(ur_path, "ip_binding"),
                        schema::fields::<schema::IpBinding>(),
                    )
                })
            {
                let p = &join(ur_path, "ip_binding");
                ip_binding.enabled = w
                    .boolean(get(m, "enabled"), &join(p, "enabled"))
                    .unwrap_or(true);
                ip_binding.pool = w.string(get(m, "pool_id"), &join(p, "pool_id"), false);
                // The original looks the pool up only when the binding is enabled.
                if let Some(id) = ip_binding.pool.clone()
                    && ip_binding.enabled
                    && !pools.iter().any(|x| x.id == id)
                {
                    if id == HOST_POOL {
                        // The original's host resources pool: the host's own address.
                        w.warnings.push(Problem {
                            path: join(p, "pool_id"),
                            message: format!(
                                "{HOST_POOL:?} is not declared: users send from the host's own \
                                 address (the original's host resources pool)"
                            ),
                            line: None,
                        });
                        ip_binding.enabled = false;
                        ip_binding.pool = None;
                    } else {
                        w.problem(&join(p, "pool_id"), format!("no ip pool {id:?}"));
                    }
                }
                ip_binding.strategy = match w
                    .string(get(m, "strategy"), &join(p, "strategy"), false)
                    .as_deref()
                {
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
                ip_binding.release_on = match w
                    .string(get(m, "release_on"), &join(p, "release_on"), false)
                    .as_deref()
                {
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
                ip_binding.wait_on_exhaustion = w
                    .boolean(get(m, "wait_on_exhaustion"), &join(p, "wait_on_exhaustion"))
                    .unwrap_or(false);
                if let Some(d) = w.duration(get(m, "wait_timeout"), &join(p, "wait_timeout")) {
                    ip_binding.wait_timeout = d;
                }
                if ip_binding.enabled
                    && ip_binding.pool.is_none()
                    && phases.iter().any(|ph| ph.pool.is_none())
                {
                    w.problem(&join(p, "pool_id"), "required when ip_binding is enabled (or give every phase an ip_pool_override)");
                }
            }
            if let Some(m) = get(load, "concurrency").and_then(|v| {
                w.map(
                    v,
                    "load.concurrency",
                    schema::fields::<schema::Concurrency>(),
                )
            }) {
                if let Some(n) = w.uint(
                    get(m, "max_concurrent_users"),
                    "load.concurrency.max_concurrent_users",
                ) {
                    if n == 0 || n > 100_000 {
                        w.problem(
                            "load.concurrency.max_concurrent_users",
                            "between 1 and 100000",
                        );
                    }
                    concurrency.max_users = Some(n.clamp(1, 100_000) as u32);
                }
                if let Some(s) = w.string(
                    get(m, "spawn_rate_limit"),
                    "load.concurrency.spawn_rate_limit",
                    false,
                ) {
                    let rate = s
                        .trim_end_matches("/s")
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (MIN_RATE..=MAX_RATE).contains(r));
                    if rate.is_none() {
                        w.problem(
                            "load.concurrency.spawn_rate_limit",
                            format!(
                                "bad rate {s:?} (use e.g. 100/s; from one a day, 0.0000116/s, to 1000000/s)"
                            ),
                        );
                    }
                    concurrency.spawn_rate = rate;
                }
                if get(m, "action_rate_limit").is_some_and(|v| !v.is_null()) {
                    let p = "load.concurrency.action_rate_limit";
                    concurrency.action_rate = rate(w, get(m, "action_rate_limit"), p);
                    if concurrency.action_rate.is_some_and(|r| r < MIN_RATE) {
                        w.problem(p, "at least one a day (0.0000116/s)");
                    }
                }
            }
            // The original's `capacity_management`, beside ip_binding: the same waiting (it
            // wins where both say), and a fallback pool.
            if let Some(m) = ur_value
                .and_then(Value::as_mapping)
                .and_then(|ur| get(ur, "capacity_management"))
                .and_then(|v| {
                    w.map(
                        v,
                        &join(ur_path, "capacity_management"),
                        schema::fields::<schema::CapacityManagement>(),
                    )
                })
            {
                let p = &join(ur_path, "capacity_management");
                if let Some(b) =
                    w.boolean(get(m, "wait_on_exhaustion"), &join(p, "wait_on_exhaustion"))
                {
                    ip_binding.wait_on_exhaustion = b;
                }
                if let Some(d) = w.duration(get(m, "wait_timeout"), &join(p, "wait_timeout")) {
                    ip_binding.wait_timeout = d;
                }
                ip_binding.fallback_pool =
                    w.string(get(m, "fallback_pool"), &join(p, "fallback_pool"), false);
                if let Some(id) = &ip_binding.fallback_pool
                    && ip_binding.enabled
                    && !pools.iter().any(|x| &x.id == id)
                {
                    w.problem(&join(p, "fallback_pool"), format!("no ip pool {id:?}"));
                }
            }
        }
    }
    if let Some(st) = &user_stages {
        if !phases.is_empty() || arrival.is_some() {
            w.problem(
                "load.stages",
                "give one load model: ramp_up phases, stages or arrival_rate",
            );
        }
        phases.push(Phase {
            at: Duration::ZERO,
            users: st.max_users(),
            tenant: None,
            pool: None,
        });
    } else if let Some(a) = &arrival {
        if !phases.is_empty() {
            w.problem(
                "load.arrival_rate",
                "give ramp_up phases (closed model) or arrival_rate (open model), not both",
            );
        }
        // The users of the open model, as phases: one tenant, spawned as iterations need them.
        phases.push(Phase {
            at: Duration::ZERO,
            users: a.max_users,
            tenant: a.tenant.clone(),
            pool: None,
        });
    } else if phases.is_empty() {
        w.problem("load.ramp_up.phases", "at least one phase is required");
    }
    let total: u64 = phases.iter().map(|p| u64::from(p.users)).sum();
    if total > MAX_TOTAL_USERS {
        w.problem(
            "load.ramp_up.phases",
            format!("{total} users in all; at most {MAX_TOTAL_USERS}"),
        );
    }
    Load {
        phases,
        lifetime,
        ip_binding,
        concurrency,
        arrival,
        stages: user_stages,
    }
}
