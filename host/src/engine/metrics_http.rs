//! `--metrics-listen`: the live metrics for any number of scrapers. Each connection has its own
//! thread and a deadline for its whole request head, so a slow client (a byte every second, a
//! head that never ends) costs only itself; past `MAX_CLIENTS` at once, a new connection is
//! closed at once.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Shared, live_metrics};

/// Time a client has to send its whole request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// The longest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once.
const MAX_CLIENTS: usize = 64;

pub fn serve(listener: std::net::TcpListener, shared: Arc<Shared>, done: Arc<AtomicBool>) {
    let _ = listener.set_nonblocking(true);
    let busy = Arc::new(AtomicUsize::new(0));
    while !done.load(Ordering::SeqCst) {
        let Ok((conn, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (s, b) = (shared.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("metrics-client".into())
            .spawn(move || {
                answer(conn, &s);
                b.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Read the request head within its deadline, then answer with the metrics.
fn answer(mut conn: std::net::TcpStream, shared: &Shared) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_write_timeout(Some(HEAD_DEADLINE));
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || head.len() >= MAX_HEAD {
            return;
        }
        let _ = conn.set_read_timeout(Some(left));
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = live_metrics(shared);
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
