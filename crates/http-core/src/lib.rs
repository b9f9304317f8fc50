//! HTTP/1.1 client logic that knows nothing of WIT or of any socket API: it runs over the
//! [`Net`] and [`Conn`] traits. The http-actions component implements them with the socket
//! component; tests can implement them with anything.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

/// What `std`'s prelude would bring, for the `no_std` build.
mod prelude {
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

pub mod client;
pub mod codec;
pub mod cookies;
pub mod date;
pub mod encoding;
pub mod fields;
pub mod h2;
mod inbox;
pub mod json;
pub mod params;
pub mod pool;
pub mod proxy;
pub mod sink;
pub mod upload;
pub mod url;
pub mod ws;

use core::fmt;
use core::net::{IpAddr, SocketAddr};

#[allow(unused_imports)]
use crate::prelude::*;

pub use client::{Client, Prepared};
pub use codec::Headers;
pub use fields::Fields;
pub use proxy::Proxy;
pub use upload::BodySource;
pub use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// RFC 9110 idempotent methods: safe to send twice.
    pub fn idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Patch)
    }

    pub fn parse(s: &str) -> Option<Method> {
        Some(match s.to_ascii_lowercase().as_str() {
            "get" => Method::Get,
            "head" => Method::Head,
            "post" => Method::Post,
            "put" => Method::Put,
            "patch" => Method::Patch,
            "delete" => Method::Delete,
            "options" => Method::Options,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Dns,
    Connect,
    /// The TLS handshake.
    Tls,
    FirstByte,
    BetweenBytes,
    Total,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    InvalidUrl(String),
    UnsupportedScheme(String),
    InvalidHeader(String),
    Dns(String),
    Connect(String),
    AccessDenied(String),
    Timeout(Phase),
    Protocol(String),
    TooLarge(String),
    RedirectLoop(String),
    TooManyRedirects(u32),
    Io(String),
    /// TLS failed: why, and the detail.
    Tls(TlsReason, String),
    /// A redirect's `Location` that cannot be followed (scheme, authority): it and why.
    BadRedirect(String),
    /// The proxy refused the tunnel or the request (its answer), or could not be reached.
    Proxy(String),
}

/// Why TLS failed (the socket interface's reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsReason {
    UnknownIssuer,
    NameMismatch,
    Expired,
    NotYetValid,
    BadCertificate,
    HandshakeFailure,
    ProtocolVersion,
    CertificateRequired,
    Unsupported,
    Other,
}

impl TlsReason {
    pub fn name(self) -> &'static str {
        match self {
            TlsReason::UnknownIssuer => "unknown-issuer",
            TlsReason::NameMismatch => "name-mismatch",
            TlsReason::Expired => "expired",
            TlsReason::NotYetValid => "not-yet-valid",
            TlsReason::BadCertificate => "bad-certificate",
            TlsReason::HandshakeFailure => "handshake-failure",
            TlsReason::ProtocolVersion => "protocol-version",
            TlsReason::CertificateRequired => "certificate-required",
            TlsReason::Unsupported => "unsupported",
            TlsReason::Other => "other",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Dns => "name resolution",
            Phase::Connect => "connect",
            Phase::Tls => "TLS handshake",
            Phase::FirstByte => "first byte",
            Phase::BetweenBytes => "between bytes",
            Phase::Total => "total",
        })
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, detail) = match self {
            HttpError::InvalidUrl(m) => ("invalid URL", m.as_str()),
            HttpError::UnsupportedScheme(m) => ("unsupported scheme", m.as_str()),
            HttpError::InvalidHeader(m) => ("invalid header", m.as_str()),
            HttpError::Dns(m) => ("name resolution failed", m.as_str()),
            HttpError::Connect(m) => ("connect failed", m.as_str()),
            HttpError::AccessDenied(m) => ("access denied", m.as_str()),
            HttpError::Timeout(p) => return write!(f, "timeout ({p})"),
            HttpError::Protocol(m) => ("protocol error", m.as_str()),
            HttpError::TooLarge(m) => ("too large", m.as_str()),
            HttpError::RedirectLoop(m) => ("redirect loop", m.as_str()),
            HttpError::TooManyRedirects(n) => return write!(f, "more than {n} redirects"),
            HttpError::Io(m) => ("I/O error", m.as_str()),
            HttpError::Tls(r, m) => return write!(f, "TLS {}: {m}", r.name()),
            HttpError::BadRedirect(m) => ("redirect cannot be followed", m.as_str()),
            HttpError::Proxy(m) => ("proxy", m.as_str()),
        };
        write!(f, "{what}: {detail}")
    }
}

impl core::error::Error for HttpError {}

/// What a transport reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    Timeout,
    WouldBlock,
    Refused,
    Reset,
    Unreachable,
    AccessDenied,
    NameUnresolvable(String),
    AddressUnavailable(String),
    InvalidInput(String),
    Tls(TlsReason, String),
    Other(String),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, detail) = match self {
            NetError::Timeout => ("timed out", ""),
            NetError::WouldBlock => ("would block", ""),
            NetError::Refused => ("connection refused", ""),
            NetError::Reset => ("connection reset", ""),
            NetError::Unreachable => ("unreachable", ""),
            NetError::AccessDenied => ("access denied", ""),
            NetError::NameUnresolvable(m) => ("name unresolvable", m.as_str()),
            NetError::AddressUnavailable(m) => ("address unavailable", m.as_str()),
            NetError::InvalidInput(m) => ("invalid input", m.as_str()),
            NetError::Tls(r, m) => return write!(f, "TLS {}: {m}", r.name()),
            NetError::Other(m) => return f.write_str(m),
        };
        f.write_str(what)?;
        if !detail.is_empty() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

/// A connected byte stream.
pub trait Conn {
    /// A request's I/O up to the first of its answer: write all of `data` (waiting at most
    /// `write_ms` for progress), then read up to `max` bytes (waiting at most `read_ms`;
    /// empty means the peer closed). With `idle_check`, first check without waiting that the
    /// connection is idle (nothing to read, not closed), as a kept-alive connection must be
    /// before it carries a new request; if it is not, nothing is sent. An answer that comes
    /// while the write waits for room ends the write early (`Exchanged::unsent` > 0), with
    /// sending still open.
    fn exchange(
        &mut self,
        data: &[u8],
        max: usize,
        write_ms: u64,
        read_ms: u64,
        idle_check: bool,
    ) -> Result<Exchanged, ExchangeError>;
    /// Up to `max` bytes; empty means the peer closed. Waits at most `timeout_ms`.
    fn read(&mut self, max: usize, timeout_ms: u64) -> Result<Vec<u8>, NetError>;
    /// `read`, for bytes nobody keeps: up to `max` of them read and dropped, how many there
    /// were (0: the peer closed). A connection that can drop them where they arrive says so;
    /// this one reads them and lets them go.
    fn skip(&mut self, max: usize, timeout_ms: u64) -> Result<usize, NetError> {
        self.read(max, timeout_ms).map(|bytes| bytes.len())
    }
    /// Write all of `data`, waiting at most `timeout_ms` for room.
    fn write(&mut self, data: &[u8], timeout_ms: u64) -> Result<(), NetError>;
    /// Shut down sending at once, dropping what the peer has not taken (it answered already
    /// and will not read the rest).
    fn shutdown_send(&mut self);
    fn local_addr(&self) -> Option<SocketAddr>;
}

/// What [`Conn::exchange`] did: the first bytes of the answer, and how many bytes at the end
/// of the data were left unsent because the answer came first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exchanged {
    pub answer: Vec<u8>,
    pub unsent: usize,
}

/// How [`Conn::exchange`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeError {
    /// The idle check found bytes waiting, or the connection closed: nothing was sent.
    NotIdle,
    /// The request was not (all) sent.
    Send(NetError),
    /// The request was sent; no answer came.
    Receive(NetError),
}

/// Name resolution and connection set-up.
pub trait Net {
    type Conn: Conn;
    fn resolve(&mut self, host: &str, timeout_ms: u64) -> Result<Vec<IpAddr>, NetError>;
    /// A connection to `remote`, bound to `local` and `local_port` when given (port 0: any).
    fn connect(
        &mut self,
        remote: SocketAddr,
        local: Option<IpAddr>,
        local_port: u16,
        timeout_ms: u64,
    ) -> Result<Self::Conn, NetError>;
    /// TLS over a connection just made, checked against `server_name` (bounded by
    /// `timeout_ms`), offering `alpn` (none when empty); the protocol the server chose.
    fn start_tls(
        &mut self,
        conn: &mut Self::Conn,
        server_name: &str,
        timeout_ms: u64,
        alpn: &[String],
    ) -> Result<Option<String>, NetError>;
    /// Monotonic time in microseconds, from any origin.
    fn now_us(&self) -> u64;
    /// Wall-clock milliseconds since the Unix epoch (for `Retry-After` dates).
    fn wall_ms(&self) -> u64;
    /// Wait `ms` milliseconds (a retry's backoff).
    fn sleep_ms(&self, ms: u64);
    /// A seed for the client's random numbers (backoff jitter, WebSocket keys and masks):
    /// from the platform's random source where there is one.
    fn seed(&self) -> u64 {
        self.wall_ms() ^ self.now_us().rotate_left(32)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub dns_ms: u64,
    pub connect_ms: u64,
    pub first_byte_ms: u64,
    pub between_bytes_ms: u64,
    pub total_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            dns_ms: 5_000,
            connect_ms: 10_000,
            first_byte_ms: 30_000,
            between_bytes_ms: 30_000,
            total_ms: 120_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base_ms: u64,
    pub max_backoff_ms: u64,
    /// Retry POST and PATCH too.
    pub non_idempotent: bool,
    /// Wait this long between tries instead of the backoff (curl's `--retry-delay`).
    pub delay_ms: Option<u64>,
    /// The answers tried again (429 and 503 unless set).
    pub statuses: StatusSet,
    /// Whether a connection that could not be made is tried again (curl asks for it with
    /// `--retry-connrefused`); a timeout always is.
    pub connect: bool,
    /// Every failure is tried again (curl's `--retry-all-errors`).
    pub all_errors: bool,
    /// No new try starts this long after the first (curl's `--retry-max-time`).
    pub max_time_ms: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 0,
            base_ms: 100,
            max_backoff_ms: 5_000,
            non_idempotent: false,
            delay_ms: None,
            statuses: StatusSet::of(&[429, 503]),
            connect: true,
            all_errors: false,
            max_time_ms: None,
        }
    }
}

/// A set of status codes from 400 to 527, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusSet(u128);

impl StatusSet {
    /// The codes a set can hold: one bit each.
    pub const CODES: core::ops::RangeInclusive<u16> = 400..=527;

    /// The codes of `codes` that are in [`StatusSet::CODES`] (the others cannot be held).
    pub fn of(codes: &[u16]) -> StatusSet {
        StatusSet(
            codes
                .iter()
                .filter(|c| Self::CODES.contains(*c))
                .fold(0, |bits, c| bits | 1u128 << (c - 400)),
        )
    }

    pub fn contains(self, code: u16) -> bool {
        Self::CODES.contains(&code) && self.0 & 1u128 << (code - 400) != 0
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    /// Bytes of body streamed after `body` (`Client::execute_with_body`); 0 for none.
    pub streamed_len: u64,
    pub bind_ip: Option<IpAddr>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub follow_redirects: bool,
    pub max_redirects: u32,
    pub max_body: u64,
    pub max_header_bytes: usize,
    pub keep_alive: bool,
    /// The name an `https` server's certificate is checked against (and the SNI sent), in
    /// place of the URL's host.
    pub tls_server_name: Option<String>,
    /// Decode a `gzip` or `deflate` body (`Content-Encoding`); bounded by `max_body` decoded.
    pub decompress: bool,
    /// Keep the response body; when false it is read and counted, not kept (a body to be
    /// decoded is kept until decoded).
    pub keep_body: bool,
    /// An HTTP proxy to go through; the connection to it leaves from `bind_ip`.
    pub proxy: Option<Proxy>,
    /// Addresses for `host:port` in place of resolving the host (curl's `--resolve`).
    pub resolve: Vec<(String, u16, Vec<IpAddr>)>,
    /// Connect over IPv4 only (4) or IPv6 only (6).
    pub ip_version: Option<u8>,
    /// The first and last local port to bind (curl's `--local-port`), tried in order.
    pub local_ports: Option<(u16, u16)>,
    /// Bytes per second the body is read at most (0: no limit; curl's `--limit-rate`).
    pub limit_rate: u64,
    /// Send the client's cookies that match, and keep those the answers set (redirects
    /// included).
    pub cookies: bool,
    /// Which HTTP version to speak.
    pub h2: H2Mode,
}

/// When HTTP/2 is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum H2Mode {
    /// HTTP/1.1.
    #[default]
    Off,
    /// Over TLS, HTTP/2 when the server chooses it by ALPN (else HTTP/1.1); over plain TCP,
    /// HTTP/1.1.
    Auto,
    /// HTTP/2 only: over TLS by ALPN (a server that does not choose it is an error), over
    /// plain TCP with prior knowledge (h2c).
    On,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            streamed_len: 0,
            bind_ip: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            follow_redirects: true,
            max_redirects: 10,
            max_body: 64 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            keep_alive: true,
            tls_server_name: None,
            decompress: false,
            keep_body: true,
            proxy: None,
            resolve: Vec::new(),
            ip_version: None,
            local_ports: None,
            limit_rate: 0,
            cookies: false,
            h2: H2Mode::Off,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub dns_us: u64,
    pub connect_us: u64,
    pub tls_us: u64,
    pub first_byte_us: u64,
    pub total_us: u64,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Fields,
    pub trailers: Fields,
    pub body: Vec<u8>,
    /// The body's length (decoded): `body.len()`, or the bytes counted when it was not kept.
    pub body_len: u64,
    pub timings: Timings,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The local address the last request went out from.
    pub source: Option<SocketAddr>,
    pub attempts: u32,
    pub redirects: u32,
    pub final_url: String,
    /// Whether the last exchange used a pooled connection.
    pub reused: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}
