//! The live progress line on standard error.

use super::*;

/// The progress line: the current rate (over the last interval, `last`: when and how many
/// requests then), and the time left when the run has a duration.
pub(super) fn progress_line(shared: &Shared, last: &mut (f64, u64)) -> String {
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
pub(super) fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ writes one winsize into the struct given; nothing else is touched.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// At most `width` columns (the line is ASCII but for what the scenario names).
pub(super) fn fit(line: &str, width: usize) -> String {
    line.chars().take(width.saturating_sub(1)).collect()
}
