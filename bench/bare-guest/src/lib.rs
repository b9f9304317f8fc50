//! The floor under row 4: what one bounded keep-alive request costs on this runtime with
//! nothing of ours but the calls every client makes. It exports the executor interface (so the
//! scheduler runs it as it runs our artifact) straight on `wasi:sockets`: per action one write
//! of a fixed request, then waits (socket and clock pollables) and reads until the response
//! head and its Content-Length body are in. No URL parsing per request, no pool, no probe, no
//! cross-component calls.
//!
//! Built with the `via-socket` feature (and composed with the socket component), the same floor
//! sends each request and reads its answer through the socket component instead: one
//! `send-receive` per request (no idle check), and `receive` for any rest. Between the two
//! floors is what the socket layer adds to a request; between that one and our artifact, what
//! the HTTP client adds.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use guest_rt::Global;
use wasip2::clocks::monotonic_clock::{self, Instant};
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

wit_bindgen::generate!({
    path: ["../../wit", "../../wit/executor"],
    world: "scheduler:executor/http-actions",
    generate_all,
});

use exports::scheduler::executor::executor::{Action, ActionError, Guest, Outcome, Timings};
use scheduler::core_libs::socket::{self, AddressFamily, Protocol, SocketAddress};

/// A connection that sends a request and reads its whole answer. Both kinds are always compiled
/// and checked; the feature picks the one used, and only its imports end up in the component.
trait Link: Sized {
    fn open(ip: [u8; 4], host: String, port: u16) -> Result<Self, ActionError>;
    /// One request: the response's status and its length in bytes.
    fn request(&mut self, request: &[u8]) -> Result<(u16, usize), ActionError>;
}

#[cfg(not(feature = "via-socket"))]
type Used = Raw;
#[cfg(feature = "via-socket")]
type Used = ViaSocket;

const TIMEOUT_NS: u64 = 10_000_000_000;
/// Bytes asked for per read, as our client asks for a response head: wasmtime zeroes a buffer of
/// the size asked before each read, so 64 KiB would cost this floor more than our client.
const READ: u64 = 4096;

/// One kept-alive connection, and the request it sends.
struct Conn {
    link: Used,
    request: Vec<u8>,
}

/// A connection through the socket component.
#[cfg_attr(not(feature = "via-socket"), allow(dead_code))]
struct ViaSocket(socket::Socket);

/// A connection on wasi:sockets. Fields drop in order: pollables and streams before the socket.
#[cfg_attr(feature = "via-socket", allow(dead_code))]
struct Raw {
    readable: Pollable,
    timer: Option<(Pollable, Instant)>,
    input: InputStream,
    output: OutputStream,
    _sock: TcpSocket,
}

static CONN: Global<Option<Conn>> = Global::new(|| None);

fn io(m: &str) -> ActionError {
    ActionError::Io(m.to_string())
}

/// `http://a.b.c.d:port/...` from `{"url": "..."}`.
fn target(with: &str) -> Result<([u8; 4], u16, String), ActionError> {
    let rest = with
        .split("http://")
        .nth(1)
        .ok_or_else(|| io("no http:// url"))?;
    let end = rest.find(['"', '/']).unwrap_or(rest.len());
    let (host, port) = rest[..end].split_once(':').ok_or_else(|| io("no port"))?;
    let mut ip = [0u8; 4];
    let mut parts = host.split('.');
    for byte in &mut ip {
        let part = parts.next().ok_or_else(|| io("not IPv4"))?;
        *byte = part.parse().map_err(|_| io("bad ip"))?;
    }
    if parts.next().is_some() {
        return Err(io("not IPv4"));
    }
    Ok((
        ip,
        port.parse().map_err(|_| io("bad port"))?,
        host.to_string(),
    ))
}

#[cfg_attr(feature = "via-socket", allow(dead_code))]
fn wait(p: &Pollable, timer: &mut Option<(Pollable, Instant)>) -> Result<(), ActionError> {
    let now = monotonic_clock::now();
    let until = now + TIMEOUT_NS;
    let mut now = now;
    while now < until {
        let clock = match &mut *timer {
            Some((c, at)) if *at > now && *at <= until => c,
            slot => {
                &slot
                    .insert((monotonic_clock::subscribe_instant(until), until))
                    .0
            }
        };
        if poll(&[p, clock]).contains(&0) {
            return Ok(());
        }
        now = monotonic_clock::now();
    }
    Err(io("timeout"))
}

fn connect(with: &str) -> Result<Conn, ActionError> {
    let (ip, port, host) = target(with)?;
    let request = alloc::format!("GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").into_bytes();
    Ok(Conn {
        link: Used::open(ip, host, port)?,
        request,
    })
}

/// End of the head and the Content-Length, once the head is complete. A byte scan, as a
/// lean client makes it (no UTF-8 check, no string searchers): the floor measures the
/// runtime, not a slow parse.
fn head(buf: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0;
    let mut line = 0;
    while let Some(at) = buf[line..].iter().position(|&b| b == b'\n') {
        let lf = line + at;
        let text = &buf[line..lf];
        if text == b"\r" || text.is_empty() {
            return Some((lf + 1, len));
        }
        if let Some(n) = content_length(text) {
            len = n;
        }
        line = lf + 1;
    }
    None
}

/// The value of a `Content-Length` line (`name: digits`), any case of the name.
fn content_length(line: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"content-length:";
    let (name, value) = line.split_at_checked(NAME.len())?;
    if !name.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let digits = value.iter().skip_while(|b| **b == b' ' || **b == b'\t');
    let mut n: usize = 0;
    for &b in digits.take_while(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
    }
    Some(n)
}

/// Bytes from `read` (each call what came next; empty once the peer has closed) until they make
/// a whole response: its status and its length in bytes.
fn read_response(
    mut read: impl FnMut() -> Result<Vec<u8>, ActionError>,
) -> Result<(u16, usize), ActionError> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let more = read()?;
        if more.is_empty() {
            return Err(io("closed"));
        }
        if buf.is_empty() {
            buf = more;
        } else {
            buf.extend_from_slice(&more);
        }
        if let Some(status) = complete(&buf) {
            return Ok((status, buf.len()));
        }
        if buf.len() > MAX_RESPONSE {
            return Err(io("response too large"));
        }
    }
}

/// The response's status once `buf` holds its head and Content-Length body.
fn complete(buf: &[u8]) -> Option<u16> {
    let (end, len) = head(buf)?;
    (buf.len() >= end + len).then(|| {
        buf.get(9..12)
            .and_then(|s| core::str::from_utf8(s).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    })
}

impl Link for Raw {
    fn open(ip: [u8; 4], _host: String, port: u16) -> Result<Raw, ActionError> {
        let net = instance_network();
        let sock = create_tcp_socket(IpAddressFamily::Ipv4).map_err(|_| io("socket"))?;
        let addr = IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (ip[0], ip[1], ip[2], ip[3]),
        });
        sock.start_connect(&net, addr).map_err(|_| io("connect"))?;
        let p = sock.subscribe();
        let mut timer = None;
        let (input, output) = loop {
            match sock.finish_connect() {
                Ok(s) => break s,
                Err(wasip2::sockets::network::ErrorCode::WouldBlock) => wait(&p, &mut timer)?,
                Err(_) => return Err(io("connect failed")),
            }
        };
        drop(p);
        Ok(Raw {
            readable: input.subscribe(),
            timer,
            input,
            output,
            _sock: sock,
        })
    }

    fn request(&mut self, request: &[u8]) -> Result<(u16, usize), ActionError> {
        if (self.output.check_write().map_err(|_| io("check-write"))? as usize) < request.len() {
            return Err(io("no room"));
        }
        self.output.write(request).map_err(|_| io("write"))?;
        read_response(|| {
            loop {
                wait(&self.readable, &mut self.timer)?;
                match self.input.read(READ) {
                    // A wake-up with nothing to read (the readiness was stale): wait again.
                    Ok(b) if b.is_empty() => continue,
                    Ok(b) => return Ok(b),
                    Err(StreamError::Closed) => return Ok(Vec::new()),
                    Err(_) => return Err(io("read")),
                }
            }
        })
    }
}

impl Link for ViaSocket {
    fn open(_ip: [u8; 4], host: String, port: u16) -> Result<ViaSocket, ActionError> {
        let ms = TIMEOUT_NS / 1_000_000;
        let s =
            socket::create_socket(AddressFamily::Ipv4, Protocol::Tcp).map_err(|_| io("socket"))?;
        let set = |_| io("setting a timeout");
        s.set_connect_timeout(ms).map_err(set)?;
        s.set_read_timeout(ms).map_err(set)?;
        s.set_write_timeout(ms).map_err(set)?;
        s.connect(&SocketAddress { host, port })
            .map_err(|_| io("connect failed"))?;
        Ok(ViaSocket(s))
    }

    fn request(&mut self, request: &[u8]) -> Result<(u16, usize), ActionError> {
        let mut unsent = Some(request);
        read_response(|| match unsent.take() {
            Some(r) => self
                .0
                .send_receive(r, READ as u32, false)
                .map_err(|_| io("send-receive"))
                // A fixed GET is small: an answer before it is all sent is not expected.
                .and_then(|e| match e.unsent {
                    0 => Ok(e.answer),
                    _ => Err(io("answered before the request was sent")),
                }),
            None => self.0.receive(READ as u32).map_err(|_| io("receive")),
        })
    }
}

struct Component;
export!(Component);

/// Bytes a response may take at most (this floor serves small answers).
const MAX_RESPONSE: usize = 1 << 20;

impl Guest for Component {
    fn execute_action(action: Action) -> Result<Outcome, ActionError> {
        let mut slot = CONN.get();
        let c = match &mut *slot {
            Some(c) => c,
            None => slot.insert(connect(&action.with_params)?),
        };
        let (status, received) = match c.link.request(&c.request) {
            Ok(r) => r,
            Err(e) => {
                // A failed connection is not used again.
                *slot = None;
                return Err(e);
            }
        };
        let sent = c.request.len() as u64;
        Ok(Outcome {
            status,
            reason: String::new(),
            headers: Vec::new(),
            trailers: Vec::new(),
            body: Vec::new(),
            body_length: 0,
            timings: Timings {
                dns_us: 0,
                connect_us: 0,
                tls_us: 0,
                first_byte_us: 0,
                total_us: 0,
            },
            bytes_sent: sent,
            bytes_received: received as u64,
            source_address: None,
            attempts: 1,
            redirects: 0,
            final_url: String::new(),
            reused_connection: true,
            exports: Vec::new(),
        })
    }

    /// The floor's requests are fixed: it streams no bodies.
    fn execute_action_with_body(
        _: Action,
        _: wasi::io::streams::InputStream,
        _: u64,
    ) -> Result<Outcome, ActionError> {
        Err(ActionError::InvalidParams(
            exports::scheduler::executor::executor::ParamError {
                field: "body".to_string(),
                message: "the floor sends no streamed bodies".to_string(),
            },
        ))
    }

    fn close_idle() {
        CONN.get().take();
    }

    /// The floor keeps no cookies: its requests are fixed.
    fn cookies() -> Vec<exports::scheduler::executor::executor::Cookie> {
        Vec::new()
    }

    fn add_cookies(_: Vec<exports::scheduler::executor::executor::Cookie>) {}
}

#[cfg(test)]
mod tests {
    use super::{complete, head};

    #[test]
    fn head_scan_finds_the_end_and_the_length() {
        let r = b"HTTP/1.1 200 OK\r\nServer: x\r\nCONTENT-length:  12\r\n\r\nhello world\n";
        assert_eq!(head(r), Some((51, 12)));
        assert_eq!(complete(r), Some(200));
        assert_eq!(complete(&r[..60]), None, "body not all in");
        assert_eq!(head(b"HTTP/1.1 204 No Content\r\n\r\n"), Some((27, 0)));
        assert_eq!(head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"), None);
        assert_eq!(
            head(b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc"),
            Some((35, 3))
        );
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(head(huge).map(|h| h.1), Some(0), "an overflow is no length");
    }
}
