//! The report as text, for standard output: the run's summary, tables by action, tenant and
//! source address, what servers answered, WebSocket figures, what went wrong, checks and
//! thresholds, and the pools at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::report::{Group, Report, SHOWN_SOURCES, rfc3339};

impl Report {
    pub fn text(&self) -> String {
        let mut s = String::new();
        self.head(&mut s);
        self.tables(&mut s);
        self.servers_text(&mut s);
        s.push_str(&self.rec.ws.text());
        self.problems(&mut s);
        self.verdicts(&mut s);
        self.pools_text(&mut s);
        s
    }

    /// The dates, the scenario, the totals and TLS.
    fn head(&self, s: &mut String) {
        if let (Some(a), Some(b)) = (self.started_at, self.ended_at) {
            let _ = write!(s, "\n{} to {}", rfc3339(a), rfc3339(b));
        }
        let _ = writeln!(
            s,
            "\nscenario {}{}",
            self.scenario,
            if self.interrupted {
                " (interrupted)"
            } else if self.empty_segment {
                " (nothing to run in this segment)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "{:.1}s, users {} spawned / {} finished, requests {} ({} ok, {} failed, {:.1}% success), {:.1} req/s",
            self.elapsed_s,
            self.users_spawned,
            self.users_finished,
            self.totals.count,
            self.totals.ok,
            self.totals.failed,
            self.success_rate() * 100.0,
            if self.elapsed_s > 0.0 {
                self.totals.count as f64 / self.elapsed_s
            } else {
                0.0
            }
        );
        let _ = writeln!(
            s,
            "bytes sent {}, received {}; iterations {}{}",
            self.totals.bytes_sent,
            self.totals.bytes_received,
            self.iterations,
            if self.dropped_iterations > 0 {
                format!(", {} dropped (no free user)", self.dropped_iterations)
            } else {
                String::new()
            }
        );
        if let Some(line) = self.tls_text() {
            let _ = writeln!(s, "{line}");
        }
    }

    /// Tables by action, tenant and source address (the busiest and slowest when many).
    fn tables(&self, s: &mut String) {
        table(s, "action", self.by_action.iter().collect(), None);
        table(s, "tenant", self.by_tenant.iter().collect(), None);
        let (sources, left_out) = self.sources_shown();
        table(s, "source address", sources, self.target_counts.as_ref());
        if left_out > 0 {
            let _ = writeln!(
                s,
                "({SHOWN_SOURCES} busiest and {SHOWN_SOURCES} slowest by p99 shown, in address order; {left_out} more in the JSON report)"
            );
        }
    }

    /// What each server instance answered.
    fn servers_text(&self, s: &mut String) {
        if !self.servers.is_empty() {
            let _ = writeln!(s, "\nservers (what each instance answered):");
            for x in &self.servers {
                let statuses: Vec<String> = x
                    .statuses
                    .iter()
                    .map(|(c, n)| format!("{c}: {n}"))
                    .collect();
                let _ = match &x.error {
                    Some(e) => writeln!(s, "  {} {}: failed: {e}", x.name, x.url),
                    None => writeln!(
                        s,
                        "  {} {}: {} requests on {} connections ({}){}",
                        x.name,
                        x.url,
                        x.requests,
                        x.connections,
                        statuses.join(", "),
                        if x.resets > 0 {
                            format!(", {} reset", x.resets)
                        } else {
                            String::new()
                        }
                    ),
                };
            }
        }
    }

    /// Errors by kind, skipped actions, actions that never ran, users that failed.
    fn problems(&self, s: &mut String) {
        if !self.errors.is_empty() {
            let _ = writeln!(s, "\nerrors:");
            for (k, n) in &self.errors {
                let _ = writeln!(s, "  {k}: {n}");
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(
                s,
                "\nskipped, not sent (the URL keeps a template nothing declares, the original's dry run):"
            );
            for (k, n) in &self.skipped {
                match self.skip_reason(k) {
                    Some(why) => {
                        let _ = writeln!(s, "  {k}: {n} ({why})");
                    }
                    None => {
                        let _ = writeln!(s, "  {k}: {n}");
                    }
                }
            }
        }
        let never = self.never_ran();
        if !never.is_empty() {
            let _ = writeln!(s, "\nactions that never ran: {}", never.join(", "));
        }
        if !self.user_errors.is_empty() {
            let _ = writeln!(s, "\nusers that could not run or failed:");
            for e in self.user_errors.iter().take(20) {
                let _ = writeln!(s, "  user {} ({}): {}", e.user, e.tenant, e.error);
            }
            if self.user_errors.len() > 20 {
                let _ = writeln!(s, "  ... and {} more", self.user_errors.len() - 20);
            }
        }
    }

    /// Checks, thresholds, an abort, data that ran out, the run's own failure.
    fn verdicts(&self, s: &mut String) {
        if !self.checks.is_empty() {
            let _ = writeln!(s, "\nchecks:");
            for c in &self.checks {
                let n = c.pass + c.fail;
                let _ = writeln!(
                    s,
                    "  {} {}: {:.1}% ({} of {})",
                    c.action,
                    c.name,
                    if n == 0 {
                        0.0
                    } else {
                        100.0 * c.pass as f64 / n as f64
                    },
                    c.pass,
                    n
                );
            }
        }
        if !self.thresholds.is_empty() {
            let heading = match self.identity.segment {
                Some((i, n)) => format!(
                    "\nthresholds (segment {i}/{n}'s share, not a verdict: `scheduler merge` judges the whole run):"
                ),
                None => "\nthresholds:".to_string(),
            };
            let _ = writeln!(s, "{heading}");
            for v in &self.thresholds {
                let _ = writeln!(s, "  {v}");
            }
        }
        if let Some(t) = &self.aborted_by {
            let _ = writeln!(s, "\naborted: threshold {t} failed (abort_on_fail)");
        }
        for d in &self.data_exhausted {
            let _ = writeln!(
                s,
                "\ndata {d:?}: every row used (mode unique); the users stopped"
            );
        }
        if !self.run_errors.is_empty() {
            let _ = writeln!(s, "\nthe run failed:");
            for e in &self.run_errors {
                let _ = writeln!(s, "  {e}");
            }
        }
    }

    /// The pools as the run left them.
    fn pools_text(&self, s: &mut String) {
        let _ = writeln!(s, "\nip pools at the end:");
        for p in &self.pools {
            let _ = writeln!(
                s,
                "  {} ({}): {} allocated, {} available of {}",
                p.id, p.name, p.allocated, p.available, p.total
            );
        }
    }
}

/// One table: a row a group, its latencies, and what the target saw when given.
fn table(
    s: &mut String,
    title: &str,
    rows: Vec<(&String, &Group)>,
    extra: Option<&BTreeMap<String, u64>>,
) {
    let _ = writeln!(
        s,
        "\n{:<22} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}{}",
        title,
        "requests",
        "ok",
        "failed",
        "mean ms",
        "p50 ms",
        "p90 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        if extra.is_some() { "  target saw" } else { "" }
    );
    for (k, g) in rows {
        let _ = write!(s, "{:<22} {:>8} {:>8} {:>8}", k, g.count, g.ok, g.failed);
        for v in g.latencies() {
            let _ = write!(s, " {v:>9.2}");
        }
        if let Some(e) = extra {
            let _ = write!(s, "  {:>10}", e.get(k).copied().unwrap_or(0));
        }
        s.push('\n');
    }
}
