//! The run's small HTTP servers (`--metrics-listen`, `--dashboard`), for any number of
//! clients. Each connection has its own thread and a deadline for its whole request head, so
//! a slow client (a byte every second, a head that never ends) costs only itself; past
//! `MAX_CLIENTS` at once, a new connection is closed at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Time a client has to send its whole request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// The longest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once.
const MAX_CLIENTS: usize = 64;

/// What a server does with a request (its method and path) on its connection.
pub type Handler = Arc<dyn Fn(TcpStream, &str, &str) + Send + Sync>;

/// Serve `listener` until `done`, one thread a connection.
pub fn serve(listener: std::net::TcpListener, done: Arc<AtomicBool>, handler: Handler) {
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
        let (h, b) = (handler.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("web-client".into())
            .spawn(move || {
                answer(conn, &h);
                b.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Read the request head within its deadline, then hand it to the handler.
fn answer(mut conn: TcpStream, handler: &Handler) {
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
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {
            let method = req.method.unwrap_or("GET").to_string();
            let path = req.path.unwrap_or("/").to_string();
            handler(conn, &method, &path);
        }
        _ => respond(&mut conn, "400 Bad Request", "text/plain", b"bad request\n"),
    }
}

/// A whole answer, the connection closed after it.
pub fn respond(conn: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}
