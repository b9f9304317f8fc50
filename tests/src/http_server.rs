//! A small in-process HTTP/1.1 server on loopback for the tests: a handler closure per request,
//! and counts of connections, requests per connection and peer addresses, as seen by the
//! server. Replies can be well-formed, raw bytes, or slow, to exercise the client's edges.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
    /// Which connection (0-based, in accept order) and which request on it (0-based).
    pub conn: usize,
    pub nth: usize,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub enum Reply {
    /// Status, headers, body; Content-Length is added.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Bytes as they are; the connection stays open.
    Raw(Vec<u8>),
    /// Bytes as they are, then close.
    RawClose(Vec<u8>),
    /// Pieces with a pause before each one; then the connection stays open.
    Trickle(Vec<Vec<u8>>, Duration),
    /// Close without answering.
    Close,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full(200, vec![], body.into())
    }

    pub fn status(code: u16, headers: &[(&str, &str)]) -> Reply {
        Reply::Full(
            code,
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            Vec::new(),
        )
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

#[derive(Default)]
pub struct Stats {
    pub connections: AtomicUsize,
    pub requests: AtomicUsize,
    /// Requests served on each connection, by connection index.
    pub per_connection: Mutex<Vec<usize>>,
    pub peers: Mutex<Vec<IpAddr>>,
}

impl Stats {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        match self.addr {
            SocketAddr::V4(a) => format!("http://{a}{path}"),
            SocketAddr::V6(a) => format!("http://[{}]:{}{path}", a.ip(), a.port()),
        }
    }
}

/// Start a server on `bind` (e.g. "127.0.0.1:0"). `idle_close`: close a connection that has
/// been idle that long between requests.
pub fn serve(
    bind: &str,
    idle_close: Option<Duration>,
    handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
) -> TestServer {
    let listener = TcpListener::bind(bind).expect("bind test server");
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let handler: Handler = Arc::new(handler);
    let s = stats.clone();
    thread::spawn(move || {
        for (conn, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            s.connections.fetch_add(1, Ordering::SeqCst);
            s.per_connection.lock().unwrap().push(0);
            let (s, h) = (s.clone(), handler.clone());
            thread::spawn(move || serve_conn(stream, conn, idle_close, s, h));
        }
    });
    TestServer { addr, stats }
}

/// Method, path, headers, body.
type Parsed = (String, String, Vec<(String, String)>, Vec<u8>);

fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Parsed> {
    loop {
        let mut headers = [httparse_header(); 64];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            let method = req.method?.to_string();
            let path = req.path?.to_string();
            let hs: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let len: usize = hs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < n + len {
                let mut chunk = vec![0u8; 256 * 1024];
                let got = stream.read(&mut chunk).ok()?;
                if got == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..got]);
            }
            let body = buf[n..n + len].to_vec();
            buf.drain(..n + len);
            return Some((method, path, hs, body));
        }
        let mut chunk = [0u8; 16 * 1024];
        let got = stream.read(&mut chunk).ok()?;
        if got == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..got]);
    }
}

fn httparse_header() -> httparse::Header<'static> {
    httparse::EMPTY_HEADER
}

fn serve_conn(
    mut stream: TcpStream,
    conn: usize,
    idle_close: Option<Duration>,
    stats: Arc<Stats>,
    handler: Handler,
) {
    let peer = stream.peer_addr().unwrap();
    stats.peers.lock().unwrap().push(peer.ip());
    // Bounded: a silent client is dropped after a while.
    let _ = stream.set_read_timeout(Some(idle_close.unwrap_or(Duration::from_secs(30))));
    let mut buf = Vec::new();
    let mut nth = 0;
    while let Some((method, path, headers, body)) = read_request(&mut stream, &mut buf) {
        stats.requests.fetch_add(1, Ordering::SeqCst);
        stats.per_connection.lock().unwrap()[conn] += 1;
        let req = Req {
            method,
            path,
            headers,
            body,
            peer,
            conn,
            nth,
        };
        nth += 1;
        let close_after = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let ok = match handler(&req) {
            Reply::Full(code, headers, body) => {
                let mut out = format!("HTTP/1.1 {code} X\r\n").into_bytes();
                for (k, v) in &headers {
                    out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
                }
                let no_body = req.method == "HEAD" || code == 204 || code == 304;
                if !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    && code != 204
                    && code != 304
                {
                    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                if !no_body {
                    out.extend_from_slice(&body);
                }
                stream.write_all(&out).is_ok()
            }
            Reply::Raw(bytes) => stream.write_all(&bytes).is_ok(),
            Reply::RawClose(bytes) => {
                let _ = stream.write_all(&bytes);
                false
            }
            Reply::Trickle(pieces, pause) => pieces.iter().all(|p| {
                thread::sleep(pause);
                stream.write_all(p).is_ok()
            }),
            Reply::Close => false,
        };
        if !ok || close_after {
            break;
        }
    }
}
