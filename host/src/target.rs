//! The demo's target: a small HTTP/1.1 server on 127.0.0.1 (random port) that answers every
//! request and counts requests per source address, so the report can show the target's own
//! counts beside the client's.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub struct Target {
    pub addr: SocketAddr,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Target {
    pub fn start() -> std::io::Result<Target> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let c = counts.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let c = c.clone();
                thread::spawn(move || serve(stream, c));
            }
        });
        Ok(Target { addr, counts })
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap().clone()
    }
}

fn serve(mut s: TcpStream, counts: Arc<Mutex<BTreeMap<String, u64>>>) {
    let Ok(peer) = s.peer_addr() else { return };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    loop {
        // One request: head, then Content-Length bytes of body.
        let (head_len, body_len, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let get = |name: &str| {
                        req.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).to_string())
                    };
                    let len = get("content-length")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                    break (n, len.min(64 << 20), close);
                }
                Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => {}
                _ => return,
            }
            let mut chunk = [0u8; 16 * 1024];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head_len + body_len {
            let mut chunk = [0u8; 64 * 1024];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_len + body_len);
        *counts
            .lock()
            .unwrap()
            .entry(peer.ip().to_string())
            .or_insert(0) += 1;
        let body = b"{\"ok\":true}";
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        if s.write_all(&out).is_err() || close {
            return;
        }
    }
}
