//! The socket component: `scheduler:core-libs/socket` on top of `wasi:sockets`.
//!
//! Every blocking step polls the socket's (or stream's) pollable together with a
//! monotonic-clock pollable, so nothing waits longer than the socket's timeout. Streams and
//! pollables are always dropped before the socket that owns them (wasmtime traps otherwise):
//! pollables are locals of the call that made them, except the input stream's, which is declared
//! just before its stream; stream fields are declared before the socket field so they drop first.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

mod addr;
mod wait;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use guest_rt as _;

use wasip2::io::poll::Pollable;
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress};
use wasip2::sockets::tcp::{ShutdownType as WasiShutdown, TcpSocket};
use wasip2::sockets::udp::{
    IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket,
};
use wasip2::sockets::{ip_name_lookup, tcp_create_socket, udp_create_socket};

wit_bindgen::generate!({
    path: ["../../wit", "../../wit/tls-alpn", "../../wit/socket-impl"],
    world: "scheduler:socket-impl/socket-component-impl",
    features: ["tls"],
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:tls/types@0.2.0-draft": generate,
        "scheduler:tls-alpn/alpn@0.1.0": generate,
    },
});

use exports::scheduler::core_libs::socket::{
    AddressFamily, Exchange, Guest, GuestSocket, Protocol, ShutdownType, Socket, SocketAddress,
    SocketBorrow, SocketError, SocketState, StateError, TlsError, TlsReason,
};
use wasi::tls::types::{ClientConnection, ClientHandshake};

use addr::{format_address, parse_ip, to_socket_address, wasi_family};
use wait::wait_ready;

/// Largest read per call: wasmtime caps stream reads and `check-write` at 64 KiB.
const MAX_CHUNK: u64 = 64 * 1024;
/// Largest UDP payload over IPv4 (65535 - 8 byte UDP header - 20 byte IP header).
const MAX_DATAGRAM: usize = 65_507;

const DEFAULT_CONNECT_MS: u64 = 10_000;
const DEFAULT_READ_MS: u64 = 30_000;
const DEFAULT_WRITE_MS: u64 = 30_000;

struct Component;
export!(Component);

impl Guest for Component {
    type Socket = SocketResource;

    fn create_socket(family: AddressFamily, protocol: Protocol) -> Result<Socket, SocketError> {
        let io = match protocol {
            Protocol::Tcp => Io::Tcp(Tcp::new(family)?),
            Protocol::Udp => Io::Udp(Udp::new(family)?),
        };
        Ok(Socket::new(SocketResource::with(
            family,
            protocol,
            SocketState::Created,
            io,
        )))
    }

    fn resolve(host: String, timeout_ms: u64) -> Result<Vec<String>, SocketError> {
        Ok(resolve(&host, timeout_ms)?
            .iter()
            .map(|&ip| net_text::format_ip(ip))
            .collect())
    }

    fn wait_readable(
        sockets: Vec<SocketBorrow<'_>>,
        timeout_ms: u64,
    ) -> Result<Vec<u32>, SocketError> {
        let mut held = Vec::with_capacity(sockets.len());
        for s in &sockets {
            let r = s.get::<SocketResource>().0.try_borrow_mut().map_err(|_| {
                SocketError::InvalidInput("wait-readable: a socket is listed twice".to_string())
            })?;
            held.push(r);
        }
        // UDP sockets' pollables are made for this wait and dropped before it returns (before
        // any socket); TCP sockets keep theirs.
        let mut made = Vec::new();
        for s in held.iter() {
            made.push(s.udp_pollable()?);
        }
        let mut all: Vec<&Pollable> = Vec::with_capacity(held.len());
        for (s, m) in held.iter_mut().zip(&made) {
            all.push(match m {
                Some(p) => p,
                None => s.tcp_pollable()?,
            });
        }
        wait::wait_any_of(&all, timeout_ms)
    }
}

/// The resource behind a `socket` handle. `RefCell` because resource methods take `&self`.
pub struct SocketResource(RefCell<Inner>);

struct Inner {
    family: AddressFamily,
    protocol: Protocol,
    state: SocketState,
    read_ms: u64,
    write_ms: u64,
    connect_ms: u64,
    /// The address given to `bind`, kept so a failed connect can rebuild the socket.
    requested_local: Option<IpSocketAddress>,
    io: Io,
}

enum Io {
    Tcp(Tcp),
    Udp(Udp),
    /// After `close`: the OS socket is gone.
    Closed,
}

/// Field order is drop order: each stream's pollable before the stream, streams before their
/// socket.
struct Tcp {
    /// The input stream's pollable, made at the first wait to receive and kept with the stream.
    readable: Option<Pollable>,
    input: Option<InputStream>,
    /// Sent since the last receive: the peer has not answered yet, so a receive waits before
    /// it reads instead of reading nothing first.
    sent: bool,
    output: Option<OutputStream>,
    /// After `start-tls`: the TLS connection the streams above belong to (they are its
    /// children on the host, so they drop first).
    tls: Option<ClientConnection>,
    /// TLS is on and nothing has been sent over it yet: the host holds the handshake's last
    /// flight to send it with the first bytes, and the first send flushes.
    tls_fresh: bool,
    /// Sending was shut down after the peer answered before a request was all sent: the
    /// connection is for closing (an idle check says so).
    send_closed: bool,
    sock: TcpSocket,
}

struct Udp {
    incoming: Option<IncomingDatagramStream>,
    outgoing: Option<OutgoingDatagramStream>,
    sock: UdpSocket,
    remote: Option<IpSocketAddress>,
}

impl Tcp {
    fn new(family: AddressFamily) -> Result<Self, SocketError> {
        let sock = tcp_create_socket::create_tcp_socket(wasi_family(family)).map_err(net_error)?;
        Ok(Tcp {
            readable: None,
            input: None,
            sent: false,
            output: None,
            tls: None,
            tls_fresh: false,
            send_closed: false,
            sock,
        })
    }
}

impl Udp {
    fn new(family: AddressFamily) -> Result<Self, SocketError> {
        let sock = udp_create_socket::create_udp_socket(wasi_family(family)).map_err(net_error)?;
        Ok(Udp {
            incoming: None,
            outgoing: None,
            sock,
            remote: None,
        })
    }
}

fn state_error(operation: &str, state: SocketState) -> SocketError {
    SocketError::InvalidState(StateError {
        operation: operation.to_string(),
        state,
    })
}

fn not_supported(what: &str) -> SocketError {
    SocketError::NotSupported(what.to_string())
}

/// Map a `wasi:sockets` error code to ours.
fn net_error(code: ErrorCode) -> SocketError {
    match code {
        ErrorCode::ConnectionRefused => SocketError::ConnectionRefused,
        ErrorCode::ConnectionReset => SocketError::ConnectionReset,
        ErrorCode::ConnectionAborted => SocketError::ConnectionAborted,
        ErrorCode::RemoteUnreachable => SocketError::NetworkUnreachable,
        ErrorCode::AddressInUse => SocketError::AddressInUse,
        ErrorCode::AddressNotBindable => SocketError::AddressNotAvailable,
        ErrorCode::Timeout => SocketError::Timeout("operation".to_string()),
        ErrorCode::WouldBlock => SocketError::WouldBlock,
        ErrorCode::AccessDenied => SocketError::AccessDenied,
        ErrorCode::NotSupported => not_supported("the host does not support this operation"),
        ErrorCode::InvalidArgument => SocketError::InvalidInput("rejected by the host".to_string()),
        ErrorCode::NameUnresolvable => SocketError::NameUnresolvable("no such name".to_string()),
        ErrorCode::DatagramTooLarge => SocketError::InvalidInput("datagram too large".to_string()),
        other => SocketError::Other(format!("{}: {}", other.name(), other.message())),
    }
}

/// Map a stream failure. `wasi:io` reports it as an opaque error whose text is the OS error,
/// so the common connection errors are recognised by name.
fn stream_error(err: StreamError) -> SocketError {
    match err {
        StreamError::Closed => SocketError::ConnectionReset,
        StreamError::LastOperationFailed(e) => {
            let text = e.to_debug_string();
            if let Some(tls) = tls_error(&text) {
                return SocketError::Tls(tls);
            }
            let lower = text.to_ascii_lowercase();
            let says = |word: &str| find(&lower, word).is_some();
            if says("reset") {
                SocketError::ConnectionReset
            } else if says("broken pipe") || says("aborted") {
                SocketError::ConnectionAborted
            } else if says("refused") {
                SocketError::ConnectionRefused
            } else if says("timed out") {
                SocketError::Timeout(text)
            } else {
                SocketError::Other(text)
            }
        }
    }
}

/// Where `word` first occurs in `text`: a plain scan, for a few short texts, rather than `str`'s
/// two-way searcher (2 KB of the component).
fn find(text: &str, word: &str) -> Option<usize> {
    text.as_bytes()
        .windows(word.len())
        .position(|w| w == word.as_bytes())
}

/// The reasons the host's TLS provider names, as `[tls:REASON] detail` in its error text.
const TLS_REASONS: &[(&str, TlsReason)] = &[
    ("unknown-issuer", TlsReason::UnknownIssuer),
    ("name-mismatch", TlsReason::NameMismatch),
    ("expired", TlsReason::Expired),
    ("not-yet-valid", TlsReason::NotYetValid),
    ("bad-certificate", TlsReason::BadCertificate),
    ("handshake-failure", TlsReason::HandshakeFailure),
    ("protocol-version", TlsReason::ProtocolVersion),
    ("certificate-required", TlsReason::CertificateRequired),
    ("unsupported", TlsReason::Unsupported),
];

/// A TLS error from a `wasi:tls` or stream error's text: the host provider's `[tls:REASON]`
/// marker gives the reason; the detail is what follows it.
fn tls_error(text: &str) -> Option<TlsError> {
    let at = find(text, "[tls:")?;
    let rest = &text[at + 5..];
    let end = rest.find(']')?;
    let name = &rest[..end];
    let reason = TLS_REASONS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(TlsReason::Other, |(_, r)| *r);
    // The text is a Debug rendering: cut its closing quote and brackets.
    let detail = rest[end + 1..]
        .trim_start()
        .trim_end_matches(['"', ')', '}', ' ']);
    Some(TlsError {
        reason,
        message: detail.to_string(),
    })
}

/// Resolve a host (name or literal) with `wasi:sockets/ip-name-lookup`, bounded by `timeout_ms`.
fn resolve(host: &str, timeout_ms: u64) -> Result<Vec<core::net::IpAddr>, SocketError> {
    if host.is_empty() {
        return Err(SocketError::InvalidInput("empty host name".to_string()));
    }
    if let Ok(ip) = parse_ip(host) {
        return Ok(vec![ip]);
    }
    let net = instance_network();
    let stream = ip_name_lookup::resolve_addresses(&net, host).map_err(|e| match e {
        ErrorCode::InvalidArgument => {
            SocketError::InvalidInput(format!("not a valid host name: {}", net_text::Quoted(host)))
        }
        other => net_error(other),
    })?;
    let pollable = stream.subscribe();
    let mut deadline = wait::Deadline::after(timeout_ms);
    let mut out = Vec::new();
    let result = loop {
        match stream.resolve_next_address() {
            Ok(Some(ip)) => out.push(addr::from_wasi_ip(ip)),
            Ok(None) => break Ok(()),
            Err(ErrorCode::WouldBlock) => {
                if let Err(e) = deadline.wait(&pollable, "resolve") {
                    break Err(e);
                }
            }
            Err(ErrorCode::NameUnresolvable | ErrorCode::PermanentResolverFailure) => {
                break Err(SocketError::NameUnresolvable(host.to_string()));
            }
            Err(other) => break Err(net_error(other)),
        }
    };
    drop(pollable);
    drop(stream);
    result?;
    if out.is_empty() {
        return Err(SocketError::NameUnresolvable(host.to_string()));
    }
    Ok(out)
}

impl SocketResource {
    fn with(family: AddressFamily, protocol: Protocol, state: SocketState, io: Io) -> Self {
        SocketResource(RefCell::new(Inner {
            family,
            protocol,
            state,
            read_ms: DEFAULT_READ_MS,
            write_ms: DEFAULT_WRITE_MS,
            connect_ms: DEFAULT_CONNECT_MS,
            requested_local: None,
            io,
        }))
    }
}

impl Inner {
    /// A UDP socket's pollable for a datagram to read, made for one wait; `None` for TCP.
    fn udp_pollable(&self) -> Result<Option<Pollable>, SocketError> {
        match &self.io {
            Io::Udp(Udp {
                incoming: Some(inc),
                ..
            }) => Ok(Some(inc.subscribe())),
            Io::Udp(_) => Err(state_error("wait-readable", self.state)),
            _ => Ok(None),
        }
    }

    /// A TCP socket's pollable for something to read (or accept), made once and kept with
    /// what it belongs to (the input stream; a listener's socket), so waiting again costs no
    /// new one.
    fn tcp_pollable(&mut self) -> Result<&Pollable, SocketError> {
        let state = self.state;
        let Io::Tcp(Tcp {
            readable,
            input,
            sock,
            ..
        }) = &mut self.io
        else {
            return Err(state_error("wait-readable", state));
        };
        if readable.is_none() {
            *readable = match (state, input) {
                (SocketState::Listening, _) => Some(sock.subscribe()),
                (_, Some(input)) => Some(input.subscribe()),
                _ => return Err(state_error("wait-readable", state)),
            };
        }
        readable
            .as_ref()
            .ok_or_else(|| state_error("wait-readable", state))
    }

    fn expect_state(&self, operation: &str, allowed: &[SocketState]) -> Result<(), SocketError> {
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            Err(state_error(operation, self.state))
        }
    }

    fn not_closed(&self, operation: &str) -> Result<(), SocketError> {
        if self.state == SocketState::Closed {
            Err(state_error(operation, self.state))
        } else {
            Ok(())
        }
    }

    /// Parse an IP literal for this socket's family.
    fn ip_for(&self, address: &SocketAddress) -> Result<IpSocketAddress, SocketError> {
        let ip = parse_ip(&address.host)?;
        to_socket_address(ip, address.port, self.family)
    }

    fn bind_wasi(&mut self, local: IpSocketAddress) -> Result<(), SocketError> {
        let net = instance_network();
        let write_ms = self.write_ms;
        match &mut self.io {
            Io::Tcp(t) => {
                t.sock.start_bind(&net, local).map_err(net_error)?;
                let p = t.sock.subscribe();
                let r = wait_ready(&p, write_ms, "bind", || t.sock.finish_bind());
                drop(p);
                r
            }
            Io::Udp(u) => {
                u.sock.start_bind(&net, local).map_err(net_error)?;
                let p = u.sock.subscribe();
                let r = wait_ready(&p, write_ms, "bind", || u.sock.finish_bind());
                drop(p);
                r?;
                let (incoming, outgoing) = u.sock.stream(None).map_err(net_error)?;
                u.incoming = Some(incoming);
                u.outgoing = Some(outgoing);
                Ok(())
            }
            Io::Closed => Err(state_error("bind", SocketState::Closed)),
        }
    }

    /// UDP sockets bind implicitly (any address, ephemeral port) before their first send.
    fn implicit_bind(&mut self) -> Result<(), SocketError> {
        if self.state == SocketState::Created {
            let any = match self.family {
                AddressFamily::Ipv4 => core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
                AddressFamily::Ipv6 => core::net::IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
            };
            self.bind_wasi(to_socket_address(any, 0, self.family)?)?;
            self.state = SocketState::Bound;
        }
        Ok(())
    }

    fn tcp_connect_once(&mut self, remote: IpSocketAddress) -> Result<(), SocketError> {
        let net = instance_network();
        let ms = self.connect_ms;
        let Io::Tcp(t) = &mut self.io else {
            unreachable_io()
        };
        t.sock.start_connect(&net, remote).map_err(net_error)?;
        let p = t.sock.subscribe();
        let r = wait_ready(&p, ms, "connect", || t.sock.finish_connect());
        drop(p);
        let (input, output) = r?;
        t.input = Some(input);
        t.output = Some(output);
        Ok(())
    }

    /// After a failed connect a `wasi:sockets` TCP socket is unusable; replace it so the
    /// caller can try again, restoring an explicit bind.
    fn rebuild_tcp(&mut self) -> Result<(), SocketError> {
        self.io = Io::Tcp(Tcp::new(self.family)?);
        self.state = SocketState::Created;
        if let Some(local) = self.requested_local {
            self.bind_wasi(local)?;
            self.state = SocketState::Bound;
        }
        Ok(())
    }

    fn connect(&mut self, remote: &SocketAddress) -> Result<(), SocketError> {
        self.expect_state("connect", &[SocketState::Created, SocketState::Bound])?;
        if remote.port == 0 {
            return Err(SocketError::InvalidInput("remote port 0".to_string()));
        }
        let candidates: Vec<IpSocketAddress> = match parse_ip(&remote.host) {
            Ok(ip) => vec![to_socket_address(ip, remote.port, self.family)?],
            Err(_) if addr::looks_like_name(&remote.host) => {
                let ips = resolve(&remote.host, self.connect_ms)?;
                let family = self.family;
                let matching: Vec<_> = ips
                    .into_iter()
                    .filter_map(|ip| to_socket_address(ip, remote.port, family).ok())
                    .collect();
                if matching.is_empty() {
                    return Err(SocketError::NameUnresolvable(format!(
                        "{} has no {} address",
                        remote.host,
                        addr::family_name(family)
                    )));
                }
                matching
            }
            Err(e) => return Err(e),
        };
        match self.protocol {
            Protocol::Tcp => {
                let mut last = SocketError::Other("no address to connect to".to_string());
                for (i, candidate) in candidates.iter().enumerate() {
                    if i > 0 {
                        self.rebuild_tcp()?;
                    }
                    match self.tcp_connect_once(*candidate) {
                        Ok(()) => {
                            self.state = SocketState::Connected;
                            return Ok(());
                        }
                        Err(e) => last = e,
                    }
                }
                // Leave a usable socket behind; report the connect error, not a rebuild one.
                let _ = self.rebuild_tcp();
                Err(last)
            }
            Protocol::Udp => {
                self.implicit_bind()?;
                let Io::Udp(u) = &mut self.io else {
                    unreachable_io()
                };
                // The previous streams must go before new ones are made.
                u.incoming = None;
                u.outgoing = None;
                let (incoming, outgoing) = u.sock.stream(Some(candidates[0])).map_err(net_error)?;
                u.incoming = Some(incoming);
                u.outgoing = Some(outgoing);
                u.remote = Some(candidates[0]);
                self.state = SocketState::Connected;
                Ok(())
            }
        }
    }

    /// The TLS handshake over the connected TCP streams (bounded by the connect timeout). On
    /// failure the connection is gone (its streams went to the handshake): the socket closes.
    /// Offering `alpn` (none when empty); the protocol the server chose.
    fn start_tls_offering(
        &mut self,
        server_name: &str,
        alpn: &[String],
    ) -> Result<Option<String>, SocketError> {
        let ms = self.connect_ms;
        let Io::Tcp(t) = &mut self.io else {
            unreachable_io()
        };
        if t.tls.is_some() {
            return Err(state_error("start-tls (TLS is already on)", self.state));
        }
        // The input stream's pollable goes before the stream.
        t.readable = None;
        let (Some(input), Some(output)) = (t.input.take(), t.output.take()) else {
            return Err(state_error("start-tls", self.state));
        };
        let handshake = ClientHandshake::new(server_name, input, output);
        if !alpn.is_empty() {
            // A host without ALPN says so: the handshake goes on without an offer.
            let _ = scheduler::tls_alpn::alpn::offer(&handshake, alpn);
        }
        let future = ClientHandshake::finish(handshake);
        let p = future.subscribe();
        let mut deadline = wait::Deadline::after(ms);
        let r = loop {
            match future.get() {
                None => {
                    if let Err(e) = deadline.wait(&p, "tls") {
                        break Err(match e {
                            SocketError::WouldBlock => SocketError::Timeout("tls".to_string()),
                            e => e,
                        });
                    }
                }
                Some(Ok(Ok(streams))) => break Ok(streams),
                Some(Ok(Err(e))) => {
                    let text = e.to_debug_string();
                    break Err(SocketError::Tls(tls_error(&text).unwrap_or(TlsError {
                        reason: TlsReason::Other,
                        message: text,
                    })));
                }
                // Taken before it was ever given: the host refuses TLS (the portable
                // artifact's stand-in for wasi:tls does this).
                Some(Err(())) => {
                    break Err(SocketError::Tls(TlsError {
                        reason: TlsReason::Unsupported,
                        message: "this host has no TLS (wasi:tls refused the handshake)".into(),
                    }));
                }
            }
        };
        drop(p);
        drop(future);
        match r {
            Ok((conn, input, output)) => {
                let chosen = match alpn.is_empty() {
                    true => None,
                    false => scheduler::tls_alpn::alpn::chosen(&conn),
                };
                t.input = Some(input);
                t.output = Some(output);
                t.tls = Some(conn);
                t.tls_fresh = true;
                t.sent = false;
                Ok(chosen)
            }
            Err(e) => {
                self.io = Io::Closed;
                self.state = SocketState::Closed;
                Err(e)
            }
        }
    }

    /// TLS: end the sending side with `close_notify` (best effort, bounded by `ms`).
    fn tls_close_output(&mut self, ms: u64) {
        let Io::Tcp(Tcp {
            tls: Some(conn),
            output: Some(out),
            ..
        }) = &self.io
        else {
            return;
        };
        conn.close_output();
        let p = out.subscribe();
        let mut deadline = wait::Deadline::after(ms);
        while !p.ready() {
            if deadline.wait(&p, "close").is_err() {
                break;
            }
        }
    }

    fn is_tls(&self) -> bool {
        matches!(&self.io, Io::Tcp(Tcp { tls: Some(_), .. }))
    }

    fn tcp_send(&mut self, data: &[u8]) -> Result<u64, SocketError> {
        self.tcp_send_watching(data, 0).map(|_| data.len() as u64)
    }

    /// Send all of `data`. With `answer_max` > 0, while it waits for room it also watches for
    /// the peer's answer (RFC 9112 section 9.5: a server may answer a request before reading
    /// all of its body; and an interim `100 Continue` may come at any time): if up to
    /// `answer_max` bytes of one come, the rest is not sent and they are returned with the
    /// count of bytes left unsent. Sending stays open: whether to send the rest is the
    /// caller's to decide from what the answer says.
    fn tcp_send_watching(
        &mut self,
        data: &[u8],
        answer_max: u64,
    ) -> Result<Option<Exchange>, SocketError> {
        let ms = self.write_ms;
        let Io::Tcp(Tcp {
            readable,
            input: Some(input),
            output: Some(out),
            sent,
            ..
        }) = &mut self.io
        else {
            return Err(state_error("send", self.state));
        };
        let mut off = 0usize;
        let mut pollable = None;
        let mut watch = answer_max > 0;
        // One deadline for the whole send, however many times it waits for room.
        let mut deadline = wait::Deadline::after(ms);
        while off < data.len() {
            let room = out.check_write().map_err(stream_error)?;
            if room == 0 {
                let p = pollable.get_or_insert_with(|| out.subscribe());
                if !watch {
                    deadline.wait(p, "send")?;
                    continue;
                }
                let r = readable.get_or_insert_with(|| input.subscribe());
                if deadline.wait_any(&[p, r], "send")? == 1 {
                    match input.read(answer_max) {
                        Ok(answer) if !answer.is_empty() => {
                            drop(pollable);
                            *sent = false;
                            let unsent = (data.len() - off) as u64;
                            return Ok(Some(Exchange { answer, unsent }));
                        }
                        Ok(_) => {}
                        // The peer closed its side: the writes will tell.
                        Err(_) => watch = false,
                    }
                }
                continue;
            }
            let n = (room.min(MAX_CHUNK) as usize).min(data.len() - off);
            out.write(&data[off..off + n]).map_err(stream_error)?;
            *sent = true;
            off += n;
        }
        drop(pollable);
        if let Io::Tcp(t) = &mut self.io
            && core::mem::take(&mut t.tls_fresh)
        {
            self.tcp_flush()?;
        }
        Ok(None)
    }

    /// Wait until everything written has reached the OS (bounded by the write timeout).
    fn tcp_flush(&mut self) -> Result<(), SocketError> {
        let ms = self.write_ms;
        let Io::Tcp(Tcp {
            output: Some(out), ..
        }) = &self.io
        else {
            return Ok(());
        };
        match out.flush() {
            // Already shut down for sending: nothing left to flush.
            Err(StreamError::Closed) => return Ok(()),
            other => other.map_err(stream_error)?,
        }
        let p = out.subscribe();
        let mut deadline = wait::Deadline::after(ms);
        let r = loop {
            match out.check_write() {
                Ok(n) if n > 0 => break Ok(()),
                Ok(_) => {
                    if let Err(e) = deadline.wait(&p, "flush") {
                        break Err(e);
                    }
                }
                Err(StreamError::Closed) => break Ok(()),
                Err(e) => break Err(stream_error(e)),
            }
        };
        drop(p);
        r
    }

    fn tcp_receive(&mut self, max: u64) -> Result<Vec<u8>, SocketError> {
        self.tcp_receive_within(max, self.read_ms)
    }

    fn tcp_receive_within(&mut self, max: u64, ms: u64) -> Result<Vec<u8>, SocketError> {
        // A receive before any send over fresh TLS (a server that speaks first): the
        // handshake's last flight, which the host holds for the first send, goes now.
        if let Io::Tcp(t) = &mut self.io
            && core::mem::take(&mut t.tls_fresh)
        {
            self.tcp_flush()?;
        }
        let Io::Tcp(Tcp {
            readable,
            input: Some(input),
            sent,
            ..
        }) = &mut self.io
        else {
            return Err(state_error("receive", self.state));
        };
        let mut deadline = wait::Deadline::after(ms);
        // Right after a send the answer is not there yet: wait first, and save a read that
        // would find nothing.
        let mut wait_first = core::mem::take(sent) && ms > 0;
        loop {
            if wait_first {
                let p = readable.get_or_insert_with(|| input.subscribe());
                deadline.wait(p, "receive")?;
            }
            match input.read(max) {
                Ok(bytes) if !bytes.is_empty() => return Ok(bytes),
                // Non-blocking and nothing buffered: no need to ask the pollable.
                Ok(_) if ms == 0 => return Err(SocketError::WouldBlock),
                Ok(_) => wait_first = true,
                Err(StreamError::Closed) => return Ok(Vec::new()),
                Err(e) => return Err(stream_error(e)),
            }
        }
    }

    fn udp_send(
        &mut self,
        data: Vec<u8>,
        remote: Option<IpSocketAddress>,
    ) -> Result<u64, SocketError> {
        if data.len() > MAX_DATAGRAM {
            return Err(datagram_too_large(data.len()));
        }
        let ms = self.write_ms;
        let Io::Udp(Udp {
            outgoing: Some(out),
            ..
        }) = &self.io
        else {
            unreachable_io()
        };
        let len = data.len() as u64;
        let p = out.subscribe();
        let r = wait_ready(&p, ms, "send", || match out.check_send() {
            Ok(0) => Err(ErrorCode::WouldBlock),
            other => other.map(|_| ()),
        });
        drop(p);
        r?;
        let sent = out
            .send(&[OutgoingDatagram {
                data,
                remote_address: remote,
            }])
            .map_err(net_error)?;
        if sent == 1 {
            Ok(len)
        } else {
            Err(SocketError::WouldBlock)
        }
    }

    fn udp_receive(&mut self, max: u64) -> Result<(Vec<u8>, IpSocketAddress), SocketError> {
        self.udp_receive_within(max, self.read_ms)
    }

    fn udp_receive_within(
        &mut self,
        max: u64,
        ms: u64,
    ) -> Result<(Vec<u8>, IpSocketAddress), SocketError> {
        let Io::Udp(Udp {
            incoming: Some(inc),
            ..
        }) = &self.io
        else {
            unreachable_io()
        };
        let p = inc.subscribe();
        let r = wait_ready(&p, ms, "receive", || match inc.receive(1) {
            Ok(mut v) if !v.is_empty() => Ok(v.remove(0)),
            Ok(_) => Err(ErrorCode::WouldBlock),
            Err(e) => Err(e),
        });
        drop(p);
        let mut d = r?;
        d.data.truncate(max as usize);
        Ok((d.data, d.remote_address))
    }
}

/// The protocol was checked by the caller; reaching this is a bug in this file.
fn unreachable_io() -> ! {
    unreachable!("socket io does not match its protocol")
}

fn datagram_too_large(len: usize) -> SocketError {
    SocketError::InvalidInput(format!("datagram of {len} bytes exceeds {MAX_DATAGRAM}"))
}

fn check_max(max_bytes: u32) -> Result<u64, SocketError> {
    if max_bytes == 0 {
        return Err(SocketError::InvalidInput(
            "max-bytes must be at least 1".to_string(),
        ));
    }
    Ok(u64::from(max_bytes).min(MAX_CHUNK))
}

impl GuestSocket for SocketResource {
    fn family(&self) -> AddressFamily {
        self.0.borrow().family
    }

    fn protocol(&self) -> Protocol {
        self.0.borrow().protocol
    }

    fn state(&self) -> SocketState {
        self.0.borrow().state
    }

    fn bind(&self, local: SocketAddress) -> Result<(), SocketError> {
        let mut s = self.0.borrow_mut();
        s.expect_state("bind", &[SocketState::Created])?;
        let addr = s.ip_for(&local)?;
        s.bind_wasi(addr)?;
        s.requested_local = Some(addr);
        s.state = SocketState::Bound;
        Ok(())
    }

    fn connect(&self, remote: SocketAddress) -> Result<(), SocketError> {
        self.0.borrow_mut().connect(&remote)
    }

    fn listen(&self, backlog: u32) -> Result<(), SocketError> {
        let mut s = self.0.borrow_mut();
        if s.protocol == Protocol::Udp {
            return Err(not_supported("listen on a UDP socket"));
        }
        s.expect_state("listen", &[SocketState::Bound])?;
        if backlog == 0 {
            return Err(SocketError::InvalidInput(
                "backlog must be at least 1".to_string(),
            ));
        }
        let ms = s.write_ms;
        let Io::Tcp(t) = &mut s.io else {
            unreachable_io()
        };
        // Best effort: some hosts only accept the backlog before listening or not at all.
        let _ = t.sock.set_listen_backlog_size(u64::from(backlog));
        t.sock.start_listen().map_err(net_error)?;
        let p = t.sock.subscribe();
        let r = wait_ready(&p, ms, "listen", || t.sock.finish_listen());
        drop(p);
        r?;
        s.state = SocketState::Listening;
        Ok(())
    }

    fn accept(&self) -> Result<Socket, SocketError> {
        let s = self.0.borrow();
        if s.protocol == Protocol::Udp {
            return Err(not_supported("accept on a UDP socket"));
        }
        s.expect_state("accept", &[SocketState::Listening])?;
        let Io::Tcp(t) = &s.io else { unreachable_io() };
        let p = t.sock.subscribe();
        let r = wait_ready(&p, s.read_ms, "accept", || t.sock.accept());
        drop(p);
        let (sock, input, output) = r?;
        let tcp = Tcp {
            readable: None,
            input: Some(input),
            sent: false,
            output: Some(output),
            tls: None,
            tls_fresh: false,
            send_closed: false,
            sock,
        };
        let child = SocketResource::with(
            s.family,
            Protocol::Tcp,
            SocketState::Connected,
            Io::Tcp(tcp),
        );
        {
            let mut c = child.0.borrow_mut();
            c.read_ms = s.read_ms;
            c.write_ms = s.write_ms;
            c.connect_ms = s.connect_ms;
        }
        Ok(Socket::new(child))
    }

    fn send(&self, data: Vec<u8>) -> Result<u64, SocketError> {
        let mut s = self.0.borrow_mut();
        s.expect_state("send", &[SocketState::Connected])?;
        match s.protocol {
            Protocol::Tcp => s.tcp_send(&data),
            Protocol::Udp => s.udp_send(data, None),
        }
    }

    fn receive(&self, max_bytes: u32) -> Result<Vec<u8>, SocketError> {
        let mut s = self.0.borrow_mut();
        s.expect_state("receive", &[SocketState::Connected])?;
        let max = check_max(max_bytes)?;
        match s.protocol {
            Protocol::Tcp => s.tcp_receive(max),
            Protocol::Udp => s.udp_receive(max).map(|(d, _)| d),
        }
    }

    fn discard(&self, max_bytes: u32) -> Result<u32, SocketError> {
        // At most 65536 bytes: the count fits.
        self.receive(max_bytes).map(|bytes| bytes.len() as u32)
    }

    fn send_receive(
        &self,
        data: Vec<u8>,
        max_bytes: u32,
        idle_check: bool,
    ) -> Result<Exchange, SocketError> {
        let mut s = self.0.borrow_mut();
        s.expect_state("send-receive", &[SocketState::Connected])?;
        let max = check_max(max_bytes)?;
        match s.protocol {
            Protocol::Tcp => {
                if idle_check {
                    if matches!(
                        &s.io,
                        Io::Tcp(Tcp {
                            send_closed: true,
                            ..
                        })
                    ) {
                        return Err(SocketError::NotIdle("closed for sending".to_string()));
                    }
                    // One byte without waiting: would-block is the one answer that means idle.
                    let found = match s.tcp_receive_within(1, 0) {
                        Err(SocketError::WouldBlock) => None,
                        Ok(bytes) if bytes.is_empty() => Some("closed by the peer".to_string()),
                        Ok(_) => Some("bytes were waiting".to_string()),
                        Err(SocketError::ConnectionReset) => Some("reset by the peer".to_string()),
                        Err(SocketError::Other(m)) => Some(m),
                        Err(_) => Some("the check failed".to_string()),
                    };
                    if let Some(what) = found {
                        return Err(SocketError::NotIdle(what));
                    }
                }
                match s.tcp_send_watching(&data, max)? {
                    Some(early) => Ok(early),
                    None => s
                        .tcp_receive(max)
                        .map(|answer| Exchange { answer, unsent: 0 }),
                }
            }
            Protocol::Udp => {
                if idle_check {
                    return Err(not_supported("idle-check on a UDP socket"));
                }
                s.udp_send(data, None)?;
                s.udp_receive(max)
                    .map(|(answer, _)| Exchange { answer, unsent: 0 })
            }
        }
    }

    fn try_receive(&self, max_bytes: u32) -> Result<Vec<u8>, SocketError> {
        let mut s = self.0.borrow_mut();
        s.expect_state("try-receive", &[SocketState::Connected])?;
        let max = check_max(max_bytes)?;
        match s.protocol {
            Protocol::Tcp => s.tcp_receive_within(max, 0),
            Protocol::Udp => s.udp_receive_within(max, 0).map(|(d, _)| d),
        }
    }

    fn send_to(&self, data: Vec<u8>, remote: SocketAddress) -> Result<u64, SocketError> {
        let mut s = self.0.borrow_mut();
        if s.protocol == Protocol::Tcp {
            return Err(not_supported(
                "send-to on a TCP socket; use connect and send",
            ));
        }
        s.expect_state("send-to", &[SocketState::Created, SocketState::Bound])?;
        if remote.port == 0 {
            return Err(SocketError::InvalidInput("remote port 0".to_string()));
        }
        let to = s.ip_for(&remote)?;
        if data.len() > MAX_DATAGRAM {
            return Err(datagram_too_large(data.len()));
        }
        s.implicit_bind()?;
        s.udp_send(data, Some(to))
    }

    fn receive_from(&self, max_bytes: u32) -> Result<(Vec<u8>, SocketAddress), SocketError> {
        let mut s = self.0.borrow_mut();
        if s.protocol == Protocol::Tcp {
            return Err(not_supported("receive-from on a TCP socket; use receive"));
        }
        s.expect_state(
            "receive-from",
            &[SocketState::Bound, SocketState::Connected],
        )?;
        let max = check_max(max_bytes)?;
        let (data, from) = s.udp_receive(max)?;
        Ok((data, format_address(from)))
    }

    fn shutdown(&self, how: ShutdownType) -> Result<(), SocketError> {
        let mut s = self.0.borrow_mut();
        if s.protocol == Protocol::Udp {
            return Err(not_supported("shutdown on a UDP socket"));
        }
        s.expect_state("shutdown", &[SocketState::Connected])?;
        // What was written is flushed within the write timeout (0: not waited for); sending
        // is shut down either way, and a flush that did not finish is then told.
        let mut flushed = Ok(());
        if how != ShutdownType::Receive {
            flushed = match s.tcp_flush() {
                Err(SocketError::WouldBlock) => Ok(()),
                other => other,
            };
            if s.is_tls() {
                // close_notify, then the TCP shutdown below.
                let ms = s.write_ms;
                s.tls_close_output(ms);
            }
        }
        let Io::Tcp(t) = &mut s.io else {
            unreachable_io()
        };
        let wasi_how = match how {
            ShutdownType::Receive => WasiShutdown::Receive,
            ShutdownType::Send => WasiShutdown::Send,
            ShutdownType::Both => WasiShutdown::Both,
        };
        t.sock.shutdown(wasi_how).map_err(net_error)?;
        if how != ShutdownType::Receive {
            t.send_closed = true;
        }
        flushed
    }

    fn close(&self) -> Result<(), SocketError> {
        let mut s = self.0.borrow_mut();
        s.not_closed("close")?;
        let flushed = if s.protocol == Protocol::Tcp && s.state == SocketState::Connected {
            // Over TLS no close_notify: like most HTTP clients (and curl), the connection just
            // closes; `shutdown` sends one.
            s.tcp_flush()
        } else {
            Ok(())
        };
        s.io = Io::Closed;
        s.state = SocketState::Closed;
        flushed
    }

    fn start_tls(&self, server_name: String) -> Result<(), SocketError> {
        self.start_tls_alpn(server_name, Vec::new()).map(|_| ())
    }

    fn start_tls_alpn(
        &self,
        server_name: String,
        protocols: Vec<String>,
    ) -> Result<Option<String>, SocketError> {
        let mut s = self.0.borrow_mut();
        if s.protocol == Protocol::Udp {
            return Err(not_supported("TLS on a UDP socket"));
        }
        s.expect_state("start-tls", &[SocketState::Connected])?;
        if server_name.is_empty() {
            return Err(SocketError::InvalidInput(
                "empty TLS server name".to_string(),
            ));
        }
        s.start_tls_offering(&server_name, &protocols)
    }

    fn is_tls(&self) -> bool {
        self.0.borrow().is_tls()
    }

    fn set_read_timeout(&self, ms: u64) -> Result<(), SocketError> {
        let mut s = self.0.borrow_mut();
        s.not_closed("set-read-timeout")?;
        s.read_ms = ms;
        Ok(())
    }

    fn set_write_timeout(&self, ms: u64) -> Result<(), SocketError> {
        let mut s = self.0.borrow_mut();
        s.not_closed("set-write-timeout")?;
        s.write_ms = ms;
        Ok(())
    }

    fn set_connect_timeout(&self, ms: u64) -> Result<(), SocketError> {
        let mut s = self.0.borrow_mut();
        s.not_closed("set-connect-timeout")?;
        s.connect_ms = ms;
        Ok(())
    }

    fn set_reuse_address(&self, enabled: bool) -> Result<(), SocketError> {
        let s = self.0.borrow();
        s.not_closed("set-reuse-address")?;
        match (s.protocol, enabled) {
            // wasmtime always sets SO_REUSEADDR on TCP listeners: asking for it is a no-op.
            (Protocol::Tcp, true) => Ok(()),
            (Protocol::Tcp, false) => {
                Err(not_supported("wasi:sockets TCP always reuses addresses"))
            }
            (Protocol::Udp, _) => Err(not_supported(
                "wasi:sockets has no reuse-address option for UDP",
            )),
        }
    }

    fn set_keep_alive(&self, enabled: bool, idle_ms: Option<u64>) -> Result<(), SocketError> {
        let s = self.0.borrow();
        s.not_closed("set-keep-alive")?;
        let Io::Tcp(t) = &s.io else {
            return Err(not_supported("keep-alive on a UDP socket"));
        };
        t.sock.set_keep_alive_enabled(enabled).map_err(net_error)?;
        if let Some(ms) = idle_ms {
            if ms == 0 {
                return Err(SocketError::InvalidInput(
                    "keep-alive idle time must be at least 1 ms".to_string(),
                ));
            }
            t.sock
                .set_keep_alive_idle_time(ms * 1_000_000)
                .map_err(net_error)?;
        }
        Ok(())
    }

    fn set_receive_buffer_size(&self, bytes: u64) -> Result<(), SocketError> {
        let s = self.0.borrow();
        s.not_closed("set-receive-buffer-size")?;
        match &s.io {
            Io::Tcp(t) => t.sock.set_receive_buffer_size(bytes),
            Io::Udp(u) => u.sock.set_receive_buffer_size(bytes),
            Io::Closed => unreachable_io(),
        }
        .map_err(net_error)
    }

    fn set_send_buffer_size(&self, bytes: u64) -> Result<(), SocketError> {
        let s = self.0.borrow();
        s.not_closed("set-send-buffer-size")?;
        match &s.io {
            Io::Tcp(t) => t.sock.set_send_buffer_size(bytes),
            Io::Udp(u) => u.sock.set_send_buffer_size(bytes),
            Io::Closed => unreachable_io(),
        }
        .map_err(net_error)
    }

    fn set_hop_limit(&self, hops: u8) -> Result<(), SocketError> {
        let s = self.0.borrow();
        s.not_closed("set-hop-limit")?;
        if hops == 0 {
            return Err(SocketError::InvalidInput(
                "hop limit must be at least 1".to_string(),
            ));
        }
        match &s.io {
            Io::Tcp(t) => t.sock.set_hop_limit(hops),
            Io::Udp(u) => u.sock.set_unicast_hop_limit(hops),
            Io::Closed => unreachable_io(),
        }
        .map_err(net_error)
    }

    fn get_local_address(&self) -> Result<SocketAddress, SocketError> {
        let s = self.0.borrow();
        s.expect_state(
            "get-local-address",
            &[
                SocketState::Bound,
                SocketState::Listening,
                SocketState::Connected,
            ],
        )?;
        match &s.io {
            Io::Tcp(t) => t.sock.local_address(),
            Io::Udp(u) => u.sock.local_address(),
            Io::Closed => unreachable_io(),
        }
        .map(format_address)
        .map_err(net_error)
    }

    fn get_peer_address(&self) -> Result<SocketAddress, SocketError> {
        let s = self.0.borrow();
        s.expect_state("get-peer-address", &[SocketState::Connected])?;
        match &s.io {
            Io::Tcp(t) => t
                .sock
                .remote_address()
                .map(format_address)
                .map_err(net_error),
            Io::Udp(u) => u
                .remote
                .map(format_address)
                .ok_or_else(|| state_error("get-peer-address", s.state)),
            Io::Closed => unreachable_io(),
        }
    }
}

impl From<IpAddressFamily> for AddressFamily {
    fn from(f: IpAddressFamily) -> Self {
        match f {
            IpAddressFamily::Ipv4 => AddressFamily::Ipv4,
            IpAddressFamily::Ipv6 => AddressFamily::Ipv6,
        }
    }
}
