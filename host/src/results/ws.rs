//! What WebSocket actions recorded beside their requests: sessions opened and the time it
//! took (k6's `ws_connecting`, `ws_sessions`), messages each way (`ws_msgs_sent`,
//! `ws_msgs_received`), ping round trips (`ws_ping`), and each step's latency.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::record::Stats;

/// One WebSocket action's figures.
#[derive(Debug, Clone, Default)]
pub struct WsRecord {
    /// The opening's time (µs) and whether the server took the upgrade, when this action
    /// opened its session (none: it continued an open one, or never reached the server).
    pub connecting: Option<(u64, bool)>,
    /// Each step run: its place in the action, its kind, its latency (µs), whether it held.
    pub steps: Vec<(usize, &'static str, u64, bool)>,
    pub msgs_sent: u64,
    pub msgs_received: u64,
}

/// A run's WebSocket figures.
#[derive(Clone)]
pub struct WsStats {
    /// Openings that reached the server: their time; ok = upgraded.
    pub connecting: Stats,
    pub msgs_sent: u64,
    pub msgs_received: u64,
    /// Ping steps' round trips.
    pub ping: Stats,
    /// Per step, as `ACTION #N kind` (N from 1): latency and outcome.
    pub steps: BTreeMap<String, Stats>,
}

impl Default for WsStats {
    fn default() -> Self {
        WsStats {
            connecting: Stats::new(3),
            msgs_sent: 0,
            msgs_received: 0,
            ping: Stats::new(3),
            steps: BTreeMap::new(),
        }
    }
}

/// A step's name in the report: `chat #2 receive`.
pub fn step_name(action: &str, index: usize, kind: &str) -> String {
    format!("{action} #{} {kind}", index + 1)
}

impl WsStats {
    pub fn add(&mut self, action: &str, r: &WsRecord) {
        if let Some((us, ok)) = r.connecting {
            self.connecting.add_one(us, ok);
        }
        self.msgs_sent += r.msgs_sent;
        self.msgs_received += r.msgs_received;
        for (i, kind, us, ok) in &r.steps {
            if *kind == "ping" && *ok {
                self.ping.add_one(*us, true);
            }
            self.steps
                .entry(step_name(action, *i, kind))
                .or_insert_with(|| Stats::new(3))
                .add_one(*us, *ok);
        }
    }

    /// Whether any WebSocket action ran.
    pub fn is_empty(&self) -> bool {
        self.connecting.count == 0 && self.steps.is_empty()
    }

    /// Sessions the servers upgraded.
    pub fn sessions(&self) -> u64 {
        self.connecting.ok
    }

    /// Another process's figures added in (`scheduler merge`).
    pub fn merge(&mut self, other: &WsStats) {
        let sum = |a: &Stats, b: &Stats| Stats::sum(&[a, b]).unwrap_or_else(|| Stats::new(3));
        self.connecting = sum(&self.connecting, &other.connecting);
        self.ping = sum(&self.ping, &other.ping);
        self.msgs_sent += other.msgs_sent;
        self.msgs_received += other.msgs_received;
        for (k, s) in &other.steps {
            let merged = match self.steps.get(k) {
                Some(mine) => sum(mine, s),
                None => s.clone(),
            };
            self.steps.insert(k.clone(), merged);
        }
    }

    /// The report's section (empty without WebSocket actions).
    pub fn text(&self) -> String {
        let mut s = String::new();
        if self.is_empty() {
            return s;
        }
        let c = &self.connecting;
        let _ = writeln!(
            s,
            "\nwebsocket: {} sessions ({} openings failed at the server), connecting p50 {:.1} ms p95 {:.1} ms; messages sent {}, received {}",
            self.sessions(),
            c.failed,
            c.quantile_ms(0.5),
            c.quantile_ms(0.95),
            self.msgs_sent,
            self.msgs_received,
        );
        if self.ping.count > 0 {
            let _ = writeln!(
                s,
                "  ping round trip p50 {:.2} ms p95 {:.2} ms ({})",
                self.ping.quantile_ms(0.5),
                self.ping.quantile_ms(0.95),
                self.ping.count
            );
        }
        let _ = writeln!(
            s,
            "  {:<32} {:>8} {:>7} {:>9} {:>9} {:>9}",
            "step", "count", "failed", "p50 ms", "p95 ms", "p99 ms"
        );
        for (name, st) in &self.steps {
            let _ = writeln!(
                s,
                "  {:<32} {:>8} {:>7} {:>9.2} {:>9.2} {:>9.2}",
                name,
                st.count,
                st.failed,
                st.quantile_ms(0.5),
                st.quantile_ms(0.95),
                st.quantile_ms(0.99)
            );
        }
        s
    }

    /// The Prometheus families (none without WebSocket actions): sessions, messages each way,
    /// and the openings' time as a histogram.
    pub fn metrics(&self, s: &mut String) {
        if self.is_empty() {
            return;
        }
        for (name, help, n) in [
            (
                "scheduler_ws_sessions_total",
                "WebSocket sessions the servers upgraded.",
                self.sessions(),
            ),
            (
                "scheduler_ws_messages_sent_total",
                "WebSocket data messages sent.",
                self.msgs_sent,
            ),
            (
                "scheduler_ws_messages_received_total",
                "WebSocket data messages received.",
                self.msgs_received,
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}");
        }
        let name = "scheduler_ws_connecting_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Time to open a WebSocket session.\n# TYPE {name} histogram"
        );
        let h = &self.connecting.latency;
        for b in [
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ] {
            let _ = writeln!(
                s,
                "{name}_bucket{{le=\"{b}\"}} {}",
                h.count_between(0, (b * 1e6) as u64)
            );
        }
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {}", h.len());
        let _ = writeln!(s, "{name}_sum {}", h.mean() * h.len() as f64 / 1e6);
        let _ = writeln!(s, "{name}_count {}", h.len());
    }

    /// The report's JSON (`websocket`).
    pub fn json(&self) -> serde_json::Value {
        let lat = |st: &Stats| {
            serde_json::json!({
                "count": st.count, "ok": st.ok, "failed": st.failed,
                "p50_ms": st.quantile_ms(0.5), "p90_ms": st.quantile_ms(0.9),
                "p95_ms": st.quantile_ms(0.95), "p99_ms": st.quantile_ms(0.99),
                "max_ms": st.max_ms(),
            })
        };
        serde_json::json!({
            "sessions": self.sessions(),
            "connecting": lat(&self.connecting),
            "msgs_sent": self.msgs_sent,
            "msgs_received": self.msgs_received,
            "ping": lat(&self.ping),
            "steps": self.steps.iter().map(|(k, v)| (k.clone(), lat(v))).collect::<serde_json::Map<_, _>>(),
        })
    }
}
