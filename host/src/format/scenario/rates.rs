//! Rates (`50/s`) and the open model's `arrival_rate:`.

use super::*;

/// A rate: `50/s`, `600/m`, `1/h`, or a number per second.
pub(super) fn rate(w: &mut Walker, r: &schema::Rate, path: &str) -> Option<f64> {
    let text = r.text();
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
pub(super) fn arrival_rate(w: &mut Walker, m: &schema::ArrivalRate) -> Option<ArrivalRate> {
    let p = "load.arrival_rate";
    let (start_rate, stages) = match &m.stages {
        Some(stages) => rate_stages(w, m, stages)?,
        None => {
            let Some(r) = &m.rate else {
                w.problem(&join(p, "rate"), "required");
                return None;
            };
            let r = rate(w, r, &join(p, "rate"))?;
            let Some(d) = w.dur(m.duration.as_ref(), &join(p, "duration")) else {
                if m.duration.is_none() {
                    w.problem(&join(p, "duration"), "required");
                }
                return None;
            };
            (r, vec![(r, d)])
        }
    };
    let pre = m.pre_allocated_users.unwrap_or(10);
    let max = m.max_users.unwrap_or(pre);
    if pre == 0 || max < pre || max > 100_000 {
        w.problem(
            p,
            "pre_allocated_users from 1, max_users from pre_allocated_users to 100000",
        );
        return None;
    }
    Some(ArrivalRate {
        stages,
        start_rate,
        pre_allocated_users: pre as u32,
        max_users: max as u32,
        tenant: opt_text(&m.tenant_id),
        stride: (0, 1),
    })
}

/// The ramping arrival rate's start and stages.
fn rate_stages(
    w: &mut Walker,
    m: &schema::ArrivalRate,
    stages: &[schema::RateStage],
) -> Option<(f64, Vec<(f64, Duration)>)> {
    let p = "load.arrival_rate";
    let start = match &m.start_rate {
        Some(r) => rate(w, r, &join(p, "start_rate"))?,
        None => 0.0,
    };
    let mut out = Vec::new();
    for (i, st) in stages.iter().enumerate() {
        let sp = format!("{p}.stages[{i}]");
        let target = rate(w, &st.target, &join(&sp, "target"));
        let d = w.dur(Some(&st.duration), &join(&sp, "duration"));
        if let (Some(t), Some(d)) = (target, d) {
            out.push((t, d));
        }
    }
    if stages.is_empty() {
        w.problem(&join(p, "stages"), "at least one stage is required");
        return None;
    }
    Some((start, out))
}
