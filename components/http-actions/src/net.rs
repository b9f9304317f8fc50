//! `http_core::Net` over the socket component (through `socket-api`).

use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use http_core::{Conn, ExchangeError, Exchanged, Net, NetError};
use socket_api::{ShutdownType, Socket, SocketError};

fn net_error(e: SocketError) -> NetError {
    match e {
        SocketError::Timeout(_) => NetError::Timeout,
        SocketError::WouldBlock => NetError::WouldBlock,
        SocketError::ConnectionRefused => NetError::Refused,
        SocketError::ConnectionReset | SocketError::ConnectionAborted => NetError::Reset,
        SocketError::NetworkUnreachable => NetError::Unreachable,
        SocketError::AccessDenied => NetError::AccessDenied,
        SocketError::NameUnresolvable(m) => NetError::NameUnresolvable(m),
        SocketError::AddressInUse => NetError::AddressUnavailable("address in use".into()),
        SocketError::AddressNotAvailable => {
            NetError::AddressUnavailable("address not available".into())
        }
        SocketError::InvalidInput(m) => NetError::InvalidInput(m),
        SocketError::Tls(t) => NetError::Tls(tls_reason(t.reason), t.message),
        other => NetError::Other(socket_api::describe(&other)),
    }
}

fn tls_reason(r: socket_api::TlsReason) -> http_core::TlsReason {
    use http_core::TlsReason as H;
    use socket_api::TlsReason as S;
    match r {
        S::UnknownIssuer => H::UnknownIssuer,
        S::NameMismatch => H::NameMismatch,
        S::Expired => H::Expired,
        S::NotYetValid => H::NotYetValid,
        S::BadCertificate => H::BadCertificate,
        S::HandshakeFailure => H::HandshakeFailure,
        S::ProtocolVersion => H::ProtocolVersion,
        S::CertificateRequired => H::CertificateRequired,
        S::Unsupported => H::Unsupported,
        S::Other => H::Other,
    }
}

pub struct SocketNet;

pub struct SocketConn {
    sock: Socket,
    /// Timeouts last set on the socket, so unchanged ones are not set again.
    read_ms: u64,
    write_ms: u64,
    /// The address the connection is bound to: fixed once connected, so asked for once.
    local: Option<SocketAddr>,
}

impl SocketConn {
    /// Set the socket's timeouts that differ from those last set.
    fn timeouts(&mut self, read_ms: Option<u64>, write_ms: Option<u64>) -> Result<(), NetError> {
        if let Some(ms) = read_ms.filter(|ms| *ms != self.read_ms) {
            self.sock.set_read_timeout_ms(ms).map_err(net_error)?;
            self.read_ms = ms;
        }
        if let Some(ms) = write_ms.filter(|ms| *ms != self.write_ms) {
            self.sock.set_write_timeout_ms(ms).map_err(net_error)?;
            self.write_ms = ms;
        }
        Ok(())
    }
}

impl Conn for SocketConn {
    fn exchange(
        &mut self,
        data: &[u8],
        max: usize,
        write_ms: u64,
        read_ms: u64,
        idle_check: bool,
    ) -> Result<Exchanged, ExchangeError> {
        self.timeouts(Some(read_ms), Some(write_ms))
            .map_err(ExchangeError::Send)?;
        // One call to the socket component: its error names a timeout's operation; any
        // other failure cannot be placed, and counts as no answer.
        match self
            .sock
            .send_receive(data, max.min(u32::MAX as usize) as u32, idle_check)
        {
            Ok(ex) => Ok(Exchanged {
                answer: ex.answer,
                unsent: (ex.unsent as usize).min(data.len()),
            }),
            Err(SocketError::NotIdle(_)) => Err(ExchangeError::NotIdle),
            Err(SocketError::Timeout(op)) if op == "send" => {
                Err(ExchangeError::Send(NetError::Timeout))
            }
            Err(e) => Err(ExchangeError::Receive(net_error(e))),
        }
    }

    fn read(&mut self, max: usize, timeout_ms: u64) -> Result<Vec<u8>, NetError> {
        self.timeouts(Some(timeout_ms), None)?;
        self.sock
            .recv_vec(max.min(u32::MAX as usize) as u32)
            .map_err(net_error)
    }

    /// Dropped in the socket component: the bytes never cross into this one.
    fn skip(&mut self, max: usize, timeout_ms: u64) -> Result<usize, NetError> {
        self.timeouts(Some(timeout_ms), None)?;
        self.sock
            .recv_discard(max.min(u32::MAX as usize) as u32)
            .map(|n| n as usize)
            .map_err(net_error)
    }

    fn write(&mut self, data: &[u8], timeout_ms: u64) -> Result<(), NetError> {
        self.timeouts(None, Some(timeout_ms))?;
        self.sock.send(data).map(|_| ()).map_err(net_error)
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    fn shutdown_send(&mut self) {
        // A write timeout of 0: what the peer has not taken is not waited for.
        if self.timeouts(None, Some(0)).is_ok() {
            let _ = self.sock.shutdown(ShutdownType::Send);
        }
    }
}

impl Net for SocketNet {
    type Conn = SocketConn;

    fn resolve(&mut self, host: &str, timeout_ms: u64) -> Result<Vec<IpAddr>, NetError> {
        socket_api::resolve(host, timeout_ms).map_err(net_error)
    }

    fn connect(
        &mut self,
        remote: SocketAddr,
        local: Option<IpAddr>,
        local_port: u16,
        timeout_ms: u64,
    ) -> Result<SocketConn, NetError> {
        let sock = Socket::tcp_for(remote.ip()).map_err(net_error)?;
        let any = |ip: IpAddr| match ip {
            IpAddr::V4(_) => IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
        };
        if local.is_some() || local_port != 0 {
            let ip = local.unwrap_or_else(|| any(remote.ip()));
            sock.bind_to_ip(ip, local_port).map_err(net_error)?;
        }
        sock.set_connect_timeout_ms(timeout_ms).map_err(net_error)?;
        sock.connect(remote).map_err(net_error)?;
        let local = sock.local_addr().ok();
        Ok(SocketConn {
            sock,
            read_ms: u64::MAX,
            write_ms: u64::MAX,
            local,
        })
    }

    fn start_tls(
        &mut self,
        conn: &mut SocketConn,
        server_name: &str,
        timeout_ms: u64,
        alpn: &[String],
    ) -> Result<Option<String>, NetError> {
        conn.sock
            .set_connect_timeout_ms(timeout_ms)
            .map_err(net_error)?;
        match alpn.is_empty() {
            true => conn.sock.start_tls(server_name).map(|()| None),
            false => conn.sock.start_tls_alpn(server_name, alpn),
        }
        .map_err(net_error)
    }

    fn now_us(&self) -> u64 {
        wasip2::clocks::monotonic_clock::now() / 1000
    }

    fn wall_ms(&self) -> u64 {
        let t = wasip2::clocks::wall_clock::now();
        t.seconds * 1000 + u64::from(t.nanoseconds / 1_000_000)
    }

    fn seed(&self) -> u64 {
        wasip2::random::random::get_random_u64()
    }

    fn sleep_ms(&self, ms: u64) {
        wasip2::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
    }
}
