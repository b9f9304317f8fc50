//! Rates (`50/s`) and the open model's `arrival_rate:`.

use super::*;

/// A rate: `50/s`, `600/m`, `1/h`, or a number per second.
pub(super) fn rate(w: &mut Walker, v: Option<&Value>, path: &str) -> Option<f64> {
    let text = w.string(v, path, true)?;
    let t = text.trim();
    let (n, per) = match t.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some((n, "h")) => (n, 3600.0),
        Some(_) => ("x", 1.0),
        None => (t, 1.0),
    };
    let r = n
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n / per)
        .filter(|r| (0.0..=MAX_RATE).contains(r));
    if r.is_none() {
        w.problem(
            path,
            format!("bad rate {text:?} (e.g. 50/s, 600/m; at most 1000000/s)"),
        );
    }
    r
}

/// `load.arrival_rate`: `{rate, duration}` or `{stages: [{target, duration}], start_rate}`,
/// with `pre_allocated_users`, `max_users` and `tenant_id`.
pub(super) fn arrival_rate(w: &mut Walker, v: &Value) -> Option<ArrivalRate> {
    let p = "load.arrival_rate";
    let m = w.map(v, p, schema::fields::<schema::ArrivalRate>())?;
    let (start_rate, stages) = if get(m, "stages").is_some() {
        let start = if get(m, "start_rate").is_some() {
            rate(w, get(m, "start_rate"), &join(p, "start_rate"))?
        } else {
            0.0
        };
        let mut stages = Vec::new();
        for (i, st) in w
            .list(get(m, "stages"), &join(p, "stages"))
            .iter()
            .enumerate()
        {
            let sp = format!("{p}.stages[{i}]");
            let Some(sm) = w.map(st, &sp, schema::fields::<schema::RateStage>()) else {
                continue;
            };
            let target = rate(w, get(sm, "target"), &join(&sp, "target"));
            let d = w.duration(get(sm, "duration"), &join(&sp, "duration"));
            if d.is_none() && get(sm, "duration").is_none() {
                w.problem(&join(&sp, "duration"), "required");
            }
            if let (Some(t), Some(d)) = (target, d) {
                stages.push((t, d));
            }
        }
        if stages.is_empty() {
            w.problem(&join(p, "stages"), "at least one stage is required");
            return None;
        }
        (start, stages)
    } else {
        let r = rate(w, get(m, "rate"), &join(p, "rate"))?;
        let Some(d) = w.duration(get(m, "duration"), &join(p, "duration")) else {
            w.problem(&join(p, "duration"), "required");
            return None;
        };
        (r, vec![(r, d)])
    };
    let pre = w
        .uint(
            get(m, "pre_allocated_users"),
            &join(p, "pre_allocated_users"),
        )
        .unwrap_or(10);
    let max = w
        .uint(get(m, "max_users"), &join(p, "max_users"))
        .unwrap_or(pre);
    if pre == 0 || max < pre || max > 100_000 {
        w.problem(
            p,
            "pre_allocated_users from 1, max_users from pre_allocated_users to 100000",
        );
        return None;
    }
    let tenant = w.string(get(m, "tenant_id"), &join(p, "tenant_id"), false);
    Some(ArrivalRate {
        stages,
        start_rate,
        pre_allocated_users: pre as u32,
        max_users: max as u32,
        tenant,
        stride: (0, 1),
    })
}
