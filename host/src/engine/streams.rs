//! The run as it goes: one interval a second kept for the report and streamed to `--out`
//! files, and the live metrics.

use super::*;

/// The metrics of the run so far (what the report's metrics say at the end).
pub(super) fn live_metrics(shared: &Shared) -> String {
    live_report(shared).metrics()
}

/// The run so far as a report (its series aside).
pub(super) fn live_report(shared: &Shared) -> Report {
    let mut c = Collected {
        rec: shared.collected().rec.clone(),
        ..Collected::default()
    };
    c.users_spawned = shared.live.spawned.load(Ordering::Relaxed);
    c.users_finished = c
        .users_spawned
        .saturating_sub(shared.live.active.load(Ordering::Relaxed));
    let elapsed = shared.started.elapsed().as_secs_f64();
    let pools = shared
        .live_pools
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let checks = check_results(&shared.scenario, &c.rec.checks);
    let mut r = Report::new(&shared.scenario.name, elapsed, c, pools, false);
    r.iterations = shared.live.iterations.load(Ordering::Relaxed);
    r.dropped_iterations = shared.live.dropped.load(Ordering::Relaxed);
    r.checks = checks;
    r.declare(declared_actions(&shared.scenario));
    r.started_at = Some(shared.started_wall);
    r
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
pub(super) struct Streams {
    pub(super) files: Vec<(
        bool,
        std::io::BufWriter<crate::results::output::Sink>,
        PathBuf,
    )>,
    /// The run's start on the wall clock: each line says when it was (`time`).
    started: std::time::SystemTime,
}

impl Out {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Out::Json(p) | Out::Csv(p) => p,
        }
    }
}

impl Streams {
    pub(super) fn open(outs: &[Out], started: std::time::SystemTime) -> Result<Streams, String> {
        use std::io::Write;
        let mut files = Vec::new();
        for o in outs {
            let json = matches!(o, Out::Json(_));
            let path = o.path();
            let f = crate::results::output::Sink::open(path)
                .map_err(|e| format!("--out {}: {e}", path.display()))?;
            let mut w = std::io::BufWriter::new(f);
            if !json {
                let _ = writeln!(w, "{CSV_HEADER}");
            }
            files.push((json, w, path.to_path_buf()));
        }
        Ok(Streams { files, started })
    }

    /// Each stream's file, whole, at its path.
    pub(super) fn finish(self) -> Result<(), String> {
        for (_, w, path) in self.files {
            let f = w
                .into_inner()
                .map_err(|e| format!("--out {}: {}", path.display(), e.error()))?;
            f.finish()
                .map_err(|e| format!("--out {}: {e}", path.display()))?;
        }
        Ok(())
    }

    pub(super) fn write(&mut self, i: &Interval, secs: f64, errors: &[ErrorEvent], dropped: u64) {
        use std::io::Write;
        let time =
            crate::results::report::rfc3339(self.started + Duration::from_secs_f64(i.t.max(0.0)));
        for (json, w, _) in &mut self.files {
            let text = if *json {
                json_lines(i, secs, &time, errors, dropped)
            } else {
                csv_rows(i, secs)
            };
            let _ = w.write_all(text.as_bytes());
            let _ = w.flush();
        }
    }
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// An interval's JSON lines: the interval (its tags' figures in `tags`), its errors.
fn json_lines(i: &Interval, secs: f64, time: &str, errors: &[ErrorEvent], dropped: u64) -> String {
    let tags: serde_json::Map<String, serde_json::Value> = i
        .by_tag
        .iter()
        .map(|r| {
            let v = serde_json::json!({
                "requests": r.requests, "failed": r.failed, "rps": per_s(r.requests, secs),
                "p50_ms": r.ms[0], "p90_ms": r.ms[1], "p95_ms": r.ms[2], "p99_ms": r.ms[3], "max_ms": r.ms[4],
            });
            (r.tag.clone(), v)
        })
        .collect();
    let mut line = serde_json::json!({
        "type": "interval", "time": time, "t_s": i.t, "requests": i.requests, "failed": i.failed,
        "rps": per_s(i.requests, secs), "p50_ms": i.p50_ms, "p90_ms": i.p90_ms, "p95_ms": i.p95_ms,
        "p99_ms": i.p99_ms, "max_ms": i.max_ms, "users_active": i.users_active,
    });
    if !tags.is_empty() {
        line["tags"] = tags.into();
    }
    let mut out = format!("{line}\n");
    for e in errors {
        let line = serde_json::json!({
            "type": "error", "time": time, "t_s": i.t, "action": &*e.action, "tenant": &*e.tenant,
            "user": e.user, "source": &*e.source, "error": e.error,
        });
        out.push_str(&format!("{line}\n"));
    }
    if dropped > 0 {
        let line = serde_json::json!({ "type": "errors_not_listed", "time": time, "t_s": i.t, "count": dropped });
        out.push_str(&format!("{line}\n"));
    }
    out
}

/// The CSV header: an interval's row has an empty `tag`; each tag's row names it.
pub(super) const CSV_HEADER: &str =
    "t_s,requests,failed,rps,p50_ms,p90_ms,p95_ms,p99_ms,max_ms,users_active,tag";

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// An interval's CSV rows: the whole, then a row per tag (`users_active` empty).
fn csv_rows(i: &Interval, secs: f64) -> String {
    let mut out = format!(
        "{:.3},{},{},{:.1},{:.3},{:.3},{:.3},{:.3},{:.3},{},\n",
        i.t,
        i.requests,
        i.failed,
        per_s(i.requests, secs),
        i.p50_ms,
        i.p90_ms,
        i.p95_ms,
        i.p99_ms,
        i.max_ms,
        i.users_active
    );
    for r in &i.by_tag {
        out.push_str(&format!(
            "{:.3},{},{},{:.1},{:.3},{:.3},{:.3},{:.3},{:.3},,{}\n",
            i.t,
            r.requests,
            r.failed,
            per_s(r.requests, secs),
            r.ms[0],
            r.ms[1],
            r.ms[2],
            r.ms[3],
            r.ms[4],
            csv_field(&r.tag)
        ));
    }
    out
}

/// Each tag of the scenario's actions and the actions that carry it.
fn tag_index(sc: &crate::format::scenario::Scenario) -> crate::results::record::TagIndex {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for a in &sc.actions {
        for (k, v) in &a.tags {
            m.entry(format!("{k}:{v}")).or_default().push(a.id.clone());
        }
    }
    m.into_iter().collect()
}

/// Take an interval from the collection, keep it for the report and stream it.
pub(super) fn tick(shared: &Shared, streams: &mut Streams, last: &mut f64) {
    let t = shared.started.elapsed().as_secs_f64();
    let active = shared.live.active.load(Ordering::Relaxed);
    let tags = tag_index(&shared.scenario);
    let (interval, errors, dropped) = shared.collected().rec.take_interval(t, active, &tags);
    streams.write(&interval, t - *last, &errors, dropped);
    if let Some(board) = &shared.board {
        let points = crate::results::charts::points(std::slice::from_ref(&interval), *last);
        let sources = shared.collected().rec.by_source.len();
        let totals = board
            .totals_due(sources)
            .then(|| crate::results::charts::data(&live_report(shared)));
        board.push(points, totals);
    }
    *last = t;
    shared
        .series
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(interval);
}
