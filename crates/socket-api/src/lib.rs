//! A high-level socket API for component authors, over the imported
//! `scheduler:core-libs/socket` interface.
//!
//! ```ignore
//! let s = Socket::tcp_v4()?;
//! s.bind_to_ip("127.0.10.7".parse()?, 0)?;
//! s.connect("127.0.0.1:8080".parse()?)?;
//! s.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
//! ```
//!
//! The socket component enforces the state machine (Created, Bound, Listening, Connected,
//! Closed); this crate adds Rust types (`IpAddr`, `SocketAddr`, and with the `std` feature
//! `std::io::Read`/`Write`) and close on drop. A component that uses it imports the socket interface and nothing else.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

use net_text::Quoted;

wit_bindgen::generate!({ path: "../../wit", world: "socket-client" });

pub use raw::{
    AddressFamily, Exchange, Protocol, ShutdownType, SocketError, SocketState, TlsError, TlsReason,
};
/// The imported ip-pool interface (its `binding` is what `bind_with_binding` takes).
pub use scheduler::core_libs::ip_pool;
/// The raw imported interface, for what this crate does not wrap.
pub use scheduler::core_libs::socket as raw;

pub type Result<T> = core::result::Result<T, SocketError>;

/// A socket error as a message, for errors passed on as text.
pub fn describe(e: &SocketError) -> String {
    let (what, detail) = match e {
        SocketError::ConnectionRefused => ("connection refused", ""),
        SocketError::ConnectionReset => ("connection reset", ""),
        SocketError::ConnectionAborted => ("connection aborted", ""),
        SocketError::NetworkUnreachable => ("network unreachable", ""),
        SocketError::AddressInUse => ("address in use", ""),
        SocketError::AddressNotAvailable => ("address not available", ""),
        SocketError::Timeout(op) => ("timeout in", op.as_str()),
        SocketError::WouldBlock => ("would block", ""),
        SocketError::InvalidInput(m) => ("invalid input:", m.as_str()),
        SocketError::InvalidState(s) => {
            return format!(
                "{} not allowed in state {}",
                s.operation,
                state_name(s.state)
            );
        }
        SocketError::AccessDenied => ("access denied", ""),
        SocketError::NameUnresolvable(m) => ("name unresolvable:", m.as_str()),
        SocketError::NotSupported(m) => ("not supported:", m.as_str()),
        SocketError::NotIdle(m) => ("not idle:", m.as_str()),
        SocketError::Tls(t) => {
            return format!("TLS {}: {}", tls_reason_name(t.reason), t.message);
        }
        SocketError::Other(m) => return m.clone(),
    };
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what} {detail}")
    }
}

/// The interface's name of a TLS failure's reason (`unknown-issuer`).
pub fn tls_reason_name(r: TlsReason) -> &'static str {
    match r {
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

pub fn state_name(s: SocketState) -> &'static str {
    match s {
        SocketState::Created => "created",
        SocketState::Bound => "bound",
        SocketState::Listening => "listening",
        SocketState::Connected => "connected",
        SocketState::Closed => "closed",
    }
}

fn to_wire(addr: SocketAddr) -> raw::SocketAddress {
    raw::SocketAddress {
        host: net_text::format_ip(addr.ip()),
        port: addr.port(),
    }
}

fn from_wire(addr: raw::SocketAddress) -> Result<SocketAddr> {
    let ip = net_text::parse_ip(&addr.host).ok_or_else(|| {
        SocketError::Other(format!(
            "component returned a bad address {}",
            Quoted(&addr.host)
        ))
    })?;
    Ok(SocketAddr::new(ip, addr.port))
}

/// A socket. Dropping it closes it.
pub struct Socket {
    inner: raw::Socket,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("protocol", &self.protocol())
            .field("family", &self.family())
            .field("state", &self.state())
            .finish()
    }
}

impl Socket {
    pub fn new_tcp(family: AddressFamily) -> Result<Self> {
        Ok(Socket {
            inner: raw::create_socket(family, Protocol::Tcp)?,
        })
    }

    pub fn new_udp(family: AddressFamily) -> Result<Self> {
        Ok(Socket {
            inner: raw::create_socket(family, Protocol::Udp)?,
        })
    }

    pub fn tcp_v4() -> Result<Self> {
        Self::new_tcp(AddressFamily::Ipv4)
    }

    pub fn tcp_v6() -> Result<Self> {
        Self::new_tcp(AddressFamily::Ipv6)
    }

    pub fn udp_v4() -> Result<Self> {
        Self::new_udp(AddressFamily::Ipv4)
    }

    pub fn udp_v6() -> Result<Self> {
        Self::new_udp(AddressFamily::Ipv6)
    }

    /// A TCP socket of the family of `ip` (for connecting to or binding at `ip`).
    pub fn tcp_for(ip: IpAddr) -> Result<Self> {
        Self::new_tcp(family_of(ip))
    }

    /// The underlying resource handle.
    pub fn handle(&self) -> &raw::Socket {
        &self.inner
    }

    pub fn bind(&self, addr: SocketAddr) -> Result<()> {
        self.inner.bind(&to_wire(addr))
    }

    pub fn bind_to_ip(&self, ip: IpAddr, port: u16) -> Result<()> {
        self.bind(SocketAddr::new(ip, port))
    }

    /// Bind to the address of a binding from the ip pool.
    pub fn bind_with_binding(&self, binding: &ip_pool::Binding, port: u16) -> Result<()> {
        let ip = net_text::parse_ip(&binding.ip).ok_or_else(|| {
            SocketError::InvalidInput(format!("binding has a bad address {}", Quoted(&binding.ip)))
        })?;
        self.bind_to_ip(ip, port)
    }

    pub fn listen(&self, backlog: u32) -> Result<()> {
        self.inner.listen(backlog)
    }

    pub fn connect(&self, addr: SocketAddr) -> Result<()> {
        self.inner.connect(&to_wire(addr))
    }

    /// Connect to a host name (resolved by the socket component) or an IP literal.
    pub fn connect_host(&self, host: &str, port: u16) -> Result<()> {
        self.inner.connect(&raw::SocketAddress {
            host: host.to_string(),
            port,
        })
    }

    pub fn accept(&self) -> Result<(Socket, SocketAddr)> {
        let inner = self.inner.accept()?;
        let peer = from_wire(inner.get_peer_address()?)?;
        Ok((Socket { inner }, peer))
    }

    /// Send all of `data`; returns its length.
    pub fn send(&self, data: &[u8]) -> Result<usize> {
        self.inner.send(data).map(|n| n as usize)
    }

    /// Receive into `buf`; 0 means the peer closed (TCP).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let data = self
            .inner
            .receive(buf.len().min(u32::MAX as usize) as u32)?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    /// Receive up to `max` bytes as a new vector (empty: the peer closed).
    pub fn recv_vec(&self, max: u32) -> Result<Vec<u8>> {
        self.inner.receive(max)
    }

    /// Receive up to `max` bytes and drop them where they were read (in the socket component,
    /// not copied to the caller): how many there were, 0 when the peer closed.
    pub fn recv_discard(&self, max: u32) -> Result<u32> {
        self.inner.discard(max)
    }

    /// Up to `max` bytes without waiting: `would-block` when nothing is buffered, empty when
    /// the peer closed.
    pub fn try_recv_vec(&self, max: u32) -> Result<Vec<u8>> {
        self.inner.try_receive(max)
    }

    /// Send `data`, then receive up to `max` bytes of the answer, in one call. With
    /// `idle_check`, nothing is sent (`not-idle`) unless the connection is idle: nothing
    /// waiting to be read, not closed by the peer. An answer that comes before `data` is all
    /// sent ends the send early: `unsent` counts the bytes left, and sending stays open.
    pub fn send_receive(&self, data: &[u8], max: u32, idle_check: bool) -> Result<Exchange> {
        self.inner.send_receive(data, max, idle_check)
    }

    pub fn send_to(&self, data: &[u8], addr: SocketAddr) -> Result<usize> {
        self.inner.send_to(data, &to_wire(addr)).map(|n| n as usize)
    }

    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr)> {
        if buf.is_empty() {
            return Err(SocketError::InvalidInput("empty buffer".to_string()));
        }
        let (data, from) = self
            .inner
            .receive_from(buf.len().min(u32::MAX as usize) as u32)?;
        buf[..data.len()].copy_from_slice(&data);
        Ok((data.len(), from_wire(from)?))
    }

    pub fn shutdown(&self, how: ShutdownType) -> Result<()> {
        self.inner.shutdown(how)
    }

    /// TLS over this connected TCP socket (the handshake is bounded by the connect timeout).
    pub fn start_tls(&self, server_name: &str) -> Result<()> {
        self.inner.start_tls(server_name)
    }

    /// `start_tls` offering `protocols` by ALPN; the one the server chose.
    pub fn start_tls_alpn(
        &self,
        server_name: &str,
        protocols: &[String],
    ) -> Result<Option<String>> {
        self.inner.start_tls_alpn(server_name, protocols)
    }

    pub fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }

    /// Close now (flushing pending output); dropping the socket also closes it.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    pub fn set_read_timeout_ms(&self, ms: u64) -> Result<()> {
        self.inner.set_read_timeout(ms)
    }

    pub fn set_write_timeout_ms(&self, ms: u64) -> Result<()> {
        self.inner.set_write_timeout(ms)
    }

    pub fn set_connect_timeout_ms(&self, ms: u64) -> Result<()> {
        self.inner.set_connect_timeout(ms)
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        from_wire(self.inner.get_local_address()?)
    }

    pub fn local_ip(&self) -> Result<IpAddr> {
        Ok(self.local_addr()?.ip())
    }

    pub fn local_port(&self) -> Result<u16> {
        Ok(self.local_addr()?.port())
    }

    pub fn remote_addr(&self) -> Result<SocketAddr> {
        from_wire(self.inner.get_peer_address()?)
    }

    pub fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }

    pub fn family(&self) -> AddressFamily {
        self.inner.family()
    }

    pub fn state(&self) -> SocketState {
        self.inner.state()
    }

    /// Has a local address: bound, listening or connected.
    pub fn is_bound(&self) -> bool {
        matches!(
            self.state(),
            SocketState::Bound | SocketState::Listening | SocketState::Connected
        )
    }

    pub fn is_connected(&self) -> bool {
        self.state() == SocketState::Connected
    }

    pub fn is_listening(&self) -> bool {
        self.state() == SocketState::Listening
    }
}

/// Resolve a host name or IP literal through the socket component.
pub fn resolve(host: &str, timeout_ms: u64) -> Result<Vec<IpAddr>> {
    raw::resolve(host, timeout_ms)?
        .into_iter()
        .map(|s| {
            net_text::parse_ip(&s).ok_or_else(|| {
                SocketError::Other(format!("component returned a bad address {}", Quoted(&s)))
            })
        })
        .collect()
}

pub fn family_of(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Ipv4,
        IpAddr::V6(_) => AddressFamily::Ipv6,
    }
}

#[cfg(feature = "std")]
mod io_impls {
    extern crate std;

    use std::io;

    use super::{Socket, SocketError};

    impl From<SocketError> for io::Error {
        fn from(e: SocketError) -> Self {
            let kind = match &e {
                SocketError::ConnectionRefused => io::ErrorKind::ConnectionRefused,
                SocketError::ConnectionReset => io::ErrorKind::ConnectionReset,
                SocketError::ConnectionAborted => io::ErrorKind::ConnectionAborted,
                SocketError::NetworkUnreachable => io::ErrorKind::NetworkUnreachable,
                SocketError::AddressInUse => io::ErrorKind::AddrInUse,
                SocketError::AddressNotAvailable => io::ErrorKind::AddrNotAvailable,
                SocketError::Timeout(_) => io::ErrorKind::TimedOut,
                SocketError::WouldBlock => io::ErrorKind::WouldBlock,
                SocketError::InvalidInput(_) => io::ErrorKind::InvalidInput,
                SocketError::AccessDenied => io::ErrorKind::PermissionDenied,
                SocketError::NotSupported(_) => io::ErrorKind::Unsupported,
                SocketError::InvalidState(_) => io::ErrorKind::NotConnected,
                SocketError::NameUnresolvable(_)
                | SocketError::NotIdle(_)
                | SocketError::Tls(_)
                | SocketError::Other(_) => io::ErrorKind::Other,
            };
            io::Error::new(kind, e)
        }
    }

    impl io::Read for Socket {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            Ok(self.recv(buf)?)
        }
    }

    impl io::Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(self.send(buf)?)
        }

        fn flush(&mut self) -> io::Result<()> {
            // `send` hands every byte to the host before returning.
            Ok(())
        }
    }

    impl io::Read for &Socket {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            Ok(self.recv(buf)?)
        }
    }

    impl io::Write for &Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(self.send(buf)?)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
