//! The run's Prometheus metrics (`--metrics FILE`, `--metrics-listen`): the text exposition
//! format, every family with HELP and TYPE.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::report::Report;

impl Report {
    /// Prometheus text exposition format (0.0.4): every family with HELP and TYPE, label
    /// values escaped (a tenant or action named with a quote stays valid).
    pub fn metrics(&self) -> String {
        let mut s = String::new();
        self.run_families(&mut s);
        self.request_families(&mut s);
        self.rec.ws.metrics(&mut s);
        s
    }

    /// Users, pools, iterations and checks.
    fn run_families(&self, s: &mut String) {
        family(
            s,
            "scheduler_users_spawned_total",
            "counter",
            "Users started by the run.",
        );
        let _ = writeln!(s, "scheduler_users_spawned_total {}", self.users_spawned);
        family(
            s,
            "scheduler_users_active",
            "gauge",
            "Users running when the metrics were written.",
        );
        let _ = writeln!(
            s,
            "scheduler_users_active {}",
            self.users_spawned.saturating_sub(self.users_finished)
        );
        family(
            s,
            "scheduler_ip_pool_available",
            "gauge",
            "Addresses free in each pool.",
        );
        for p in &self.pools {
            let _ = writeln!(
                s,
                "scheduler_ip_pool_available{{pool=\"{}\"}} {}",
                label(&p.id),
                p.available
            );
        }
        family(
            s,
            "scheduler_ip_pool_allocated",
            "gauge",
            "Addresses held in each pool.",
        );
        for p in &self.pools {
            let _ = writeln!(
                s,
                "scheduler_ip_pool_allocated{{pool=\"{}\"}} {}",
                label(&p.id),
                p.allocated
            );
        }
        family(
            s,
            "scheduler_iterations_total",
            "counter",
            "Workflow passes completed.",
        );
        let _ = writeln!(s, "scheduler_iterations_total {}", self.iterations);
        family(
            s,
            "scheduler_dropped_iterations_total",
            "counter",
            "Arrival-rate iterations not started (no user free).",
        );
        let _ = writeln!(
            s,
            "scheduler_dropped_iterations_total {}",
            self.dropped_iterations
        );
        family(
            s,
            "scheduler_checks_total",
            "counter",
            "Check results by action, check and result.",
        );
        for c in &self.checks {
            for (result, n) in [("pass", c.pass), ("fail", c.fail)] {
                let _ = writeln!(
                    s,
                    "scheduler_checks_total{{action=\"{}\",check=\"{}\",result=\"{result}\"}} {n}",
                    label(&c.action),
                    label(&c.name)
                );
            }
        }
    }

    /// Requests: counts by action, tenant and status (with the actions' tags as labels), and
    /// latency histograms.
    fn request_families(&self, s: &mut String) {
        family(
            s,
            "executor_tasks_executed_total",
            "counter",
            "Requests sent.",
        );
        let _ = writeln!(s, "executor_tasks_executed_total {}", self.totals.count);
        family(
            s,
            "executor_tasks_success_total",
            "counter",
            "Requests answered below 400.",
        );
        let _ = writeln!(s, "executor_tasks_success_total {}", self.totals.ok);
        family(
            s,
            "http_requests_total",
            "counter",
            "Requests by action, tenant and status (error: no answer).",
        );
        // An action's tags go on its series as labels of their own.
        let tags: BTreeMap<&str, String> = self
            .actions
            .iter()
            .map(|a| {
                let extra: String = a
                    .tags
                    .iter()
                    .map(|(k, v)| format!(",{k}=\"{}\"", label(v)))
                    .collect();
                (a.id.as_str(), extra)
            })
            .collect();
        let tags_of = |a: &str| tags.get(a).map_or("", String::as_str);
        for ((a, t, st), n) in &self.rec.by_status {
            let _ = writeln!(
                s,
                "http_requests_total{{action=\"{}\",tenant=\"{}\",status=\"{}\"{}}} {n}",
                label(a),
                label(t),
                label(&crate::results::record::status_text(*st)),
                tags_of(a)
            );
        }
        family(
            s,
            "http_requests_duration_seconds",
            "histogram",
            "Request latency by action and tenant.",
        );
        let bounds = [
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        for ((action, tenant), g) in &self.rec.by_action_tenant {
            let labels = format!(
                "action=\"{}\",tenant=\"{}\"{}",
                label(action),
                label(tenant),
                tags_of(action)
            );
            let h = &g.latency;
            for b in bounds {
                let n = h.count_between(0, (b * 1e6) as u64);
                let _ = writeln!(
                    s,
                    "http_requests_duration_seconds_bucket{{{labels},le=\"{b}\"}} {n}"
                );
            }
            let _ = writeln!(
                s,
                "http_requests_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.len()
            );
            let _ = writeln!(
                s,
                "http_requests_duration_seconds_sum{{{labels}}} {}",
                h.mean() * h.len() as f64 / 1e6
            );
            let _ = writeln!(
                s,
                "http_requests_duration_seconds_count{{{labels}}} {}",
                h.len()
            );
        }
    }
}

/// A family's HELP and TYPE lines.
fn family(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the exposition format writes it: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
