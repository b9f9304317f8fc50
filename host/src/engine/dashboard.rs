//! `run --dashboard ADDR`: a page served while the run goes (k6's web dashboard, Locust's
//! UI), drawn by the HTML report's own script and uPlot, both served by the binary (nothing
//! fetched from elsewhere). `/` is the page, `/events` server-sent events (the run so far,
//! then the new second and the latest totals each second, `end` when the run ends), `/data`
//! the same as one JSON object for polling.

use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::web::respond;
use crate::results::html;

/// Between events on an idle run, a comment keeps proxies from closing the stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The run as the dashboard shows it: its points so far, and the latest totals.
#[derive(Default)]
pub struct Board {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    points: Vec<Value>,
    latest: Value,
    ended: bool,
    /// When the totals were last made.
    made: Option<std::time::Instant>,
    /// Pushes so far: a stream sends what it has not seen.
    version: u64,
}

impl Board {
    /// Whether the totals are to be made again now: each second, or for a run of many source
    /// addresses (whose tables cost more to make) every `sources / 2,000` seconds, at most 30.
    pub fn totals_due(&self, sources: usize) -> bool {
        let every = Duration::from_secs((sources as u64 / 2_000).clamp(1, 30));
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.made
            .is_none_or(|m| m.elapsed() + Duration::from_millis(100) >= every)
    }

    /// A second more: its points (usually one) and, when made again, the totals.
    pub fn push(&self, points: Vec<Value>, latest: Option<Value>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.points.extend(points);
        if let Some(l) = latest {
            s.latest = l;
            s.made = Some(std::time::Instant::now());
        }
        s.version += 1;
        self.changed.notify_all();
    }

    /// The run has ended: streams say so and close.
    pub fn end(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).ended = true;
        self.changed.notify_all();
    }

    /// The totals with the points from `from` on; how many points there are, the version,
    /// and whether the run ended. Waits up to `wait` for a push after `version`.
    fn since(&self, from: usize, version: u64, wait: Duration) -> (Value, usize, u64, bool) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (s, _) = self
            .changed
            .wait_timeout_while(s, wait, |s| s.version <= version && !s.ended)
            .unwrap_or_else(|e| e.into_inner());
        // Null until the first second: nothing to show yet.
        let mut msg = s.latest.clone();
        if let Some(o) = msg.as_object_mut() {
            o.insert("points".into(), s.points[from.min(s.points.len())..].into());
        }
        (msg, s.points.len(), s.version, s.ended)
    }

    /// Answer one request.
    pub fn handle(&self, mut conn: TcpStream, method: &str, path: &str) {
        if method != "GET" && method != "HEAD" {
            return respond(
                &mut conn,
                "405 Method Not Allowed",
                "text/plain",
                b"GET only\n",
            );
        }
        match path.split('?').next().unwrap_or("/") {
            "/" | "/index.html" => respond(
                &mut conn,
                "200 OK",
                "text/html; charset=utf-8",
                page().as_bytes(),
            ),
            "/data" => {
                let (msg, ..) = self.since(0, 0, Duration::ZERO);
                respond(
                    &mut conn,
                    "200 OK",
                    "application/json",
                    msg.to_string().as_bytes(),
                )
            }
            "/events" => self.stream(conn),
            _ => respond(&mut conn, "404 Not Found", "text/plain", b"not found\n"),
        }
    }

    /// Server-sent events until the run ends or the client goes: the run so far once there
    /// is a first second, then what each second adds.
    fn stream(&self, mut conn: TcpStream) {
        use std::io::Write;
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
        let _ = conn.set_write_timeout(Some(KEEPALIVE));
        if conn.write_all(head.as_bytes()).is_err() {
            return;
        }
        // Points and pushes sent so far; the first message has the run so far (once it has a
        // second), each later one what a push added.
        let (mut have, mut seen) = (0, 0);
        loop {
            let (msg, n, version, ended) = self.since(have, seen, KEEPALIVE);
            let sent = if msg.is_object() && version > seen {
                (have, seen) = (n, version);
                writeln!(conn, "data: {msg}\n")
            } else {
                writeln!(conn, ": still running\n")
            };
            if sent.and_then(|_| conn.flush()).is_err() {
                return;
            }
            if ended {
                let _ = write!(conn, "event: end\ndata: {{}}\n\n");
                return;
            }
        }
    }
}

/// The page: the report's head and scripts, filled from `/events`.
fn page() -> String {
    format!(
        "{}<body><p id=\"status\">connecting</p><div id=\"app\"><h1>scheduler</h1></div>{}<script>showLive();</script></body></html>\n",
        html::head("live"),
        html::scripts()
    )
}

/// Serve the dashboard at `addr` on a thread of its own until `done`.
pub fn serve(
    board: Arc<Board>,
    addr: std::net::SocketAddr,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Result<std::net::SocketAddr, String> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("--dashboard {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--dashboard {addr}: {e}"))?;
    let handler: super::web::Handler = Arc::new(move |c, m, p| board.handle(c, m, p));
    std::thread::Builder::new()
        .name("dashboard".into())
        .spawn(move || super::web::serve(listener, done, handler))
        .map_err(|e| format!("starting the dashboard: {e}"))?;
    Ok(bound)
}
