//! The demo's target: a small HTTP/1.1 server on 127.0.0.1 (random port) that answers every
//! request and counts requests per source address, so the report can show the target's own
//! counts beside the client's. A second listener speaks HTTPS with a certificate made for
//! the run by a CA of its own (whose certificate the demo trusts).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub struct Target {
    pub addr: SocketAddr,
    /// The HTTPS listener, and the PEM certificate of the CA that signed its certificate.
    pub tls_addr: SocketAddr,
    pub ca_pem: String,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Target {
    pub fn start() -> Result<Target, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let c = counts.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let c = c.clone();
                thread::spawn(move || {
                    if let Ok(peer) = stream.peer_addr() {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                        serve(stream, peer, c)
                    }
                });
            }
        });
        let ca = compose::tls::pki::Ca::new("scheduler demo CA")?;
        let leaf = ca.server(
            &["localhost", "127.0.0.1"],
            compose::tls::pki::Validity::Now,
        )?;
        let config = leaf.server_config()?;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let tls_addr = listener.local_addr().map_err(|e| e.to_string())?;
        let c = counts.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (c, config) = (c.clone(), config.clone());
                thread::spawn(move || {
                    let Ok(peer) = stream.peer_addr() else { return };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    serve(rustls::StreamOwned::new(conn, stream), peer, c)
                });
            }
        });
        Ok(Target {
            addr,
            tls_addr,
            ca_pem: ca.cert_pem,
            counts,
        })
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap().clone()
    }
}

fn serve(mut s: impl Read + Write, peer: SocketAddr, counts: Arc<Mutex<BTreeMap<String, u64>>>) {
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
        if s.write_all(&out).and_then(|()| s.flush()).is_err() || close {
            return;
        }
    }
}
