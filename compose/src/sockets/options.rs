//! A TCP socket's options, with WASI's argument checks and wasmtime-wasi's clamps.

use std::time::Duration;

use rustix::io::Errno;
use rustix::net::sockopt;
use wasmtime_wasi::p2::SocketResult;
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;

use super::Family;
use super::tcp::TcpSocket;

const NANOS_PER_SEC: u64 = 1_000_000_000;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Zero is refused (WIT: `invalid-argument`).
fn nonzero<T: Default + PartialEq>(value: T) -> SocketResult<T> {
    if value == T::default() {
        return Err(ErrorCode::InvalidArgument.into());
    }
    Ok(value)
}

/// Keep-alive times as Linux takes them: whole seconds, 1 to 32,767.
fn keep_alive_time(value: u64) -> SocketResult<Duration> {
    let value = nonzero(value)?.clamp(NANOS_PER_SEC, i16::MAX as u64 * NANOS_PER_SEC);
    Ok(Duration::from_nanos(value))
}

/// A buffer size as the kernel takes it; its refusal for lack of memory is not an error.
fn buffer_size(value: u64) -> SocketResult<usize> {
    let value = usize::try_from(nonzero(value)?).unwrap_or(usize::MAX);
    Ok(value.clamp(1, i32::MAX as usize))
}

fn set_buffer(result: rustix::io::Result<()>) -> SocketResult<()> {
    match result {
        Ok(()) | Err(Errno::NOBUFS) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Linux reports twice what was set (its bookkeeping included): WASI wants what was set.
fn buffer_got(value: usize) -> u64 {
    u64::try_from(value / 2).unwrap_or(u64::MAX)
}

impl TcpSocket {
    pub(crate) fn keep_alive_enabled(&self) -> SocketResult<bool> {
        Ok(sockopt::socket_keepalive(self.fd()?)?)
    }

    pub(crate) fn set_keep_alive_enabled(&self, value: bool) -> SocketResult<()> {
        Ok(sockopt::set_socket_keepalive(self.fd()?, value)?)
    }

    pub(crate) fn keep_alive_idle_time(&self) -> SocketResult<u64> {
        Ok(nanos(sockopt::tcp_keepidle(self.fd()?)?))
    }

    pub(crate) fn set_keep_alive_idle_time(&self, value: u64) -> SocketResult<()> {
        let value = keep_alive_time(value)?;
        Ok(sockopt::set_tcp_keepidle(self.fd()?, value)?)
    }

    pub(crate) fn keep_alive_interval(&self) -> SocketResult<u64> {
        Ok(nanos(sockopt::tcp_keepintvl(self.fd()?)?))
    }

    pub(crate) fn set_keep_alive_interval(&self, value: u64) -> SocketResult<()> {
        let value = keep_alive_time(value)?;
        Ok(sockopt::set_tcp_keepintvl(self.fd()?, value)?)
    }

    pub(crate) fn keep_alive_count(&self) -> SocketResult<u32> {
        Ok(sockopt::tcp_keepcnt(self.fd()?)?)
    }

    pub(crate) fn set_keep_alive_count(&self, value: u32) -> SocketResult<()> {
        let value = nonzero(value)?.clamp(1, i8::MAX as u32);
        Ok(sockopt::set_tcp_keepcnt(self.fd()?, value)?)
    }

    pub(crate) fn hop_limit(&self) -> SocketResult<u8> {
        let fd = self.fd()?;
        match self.family {
            Family::V4 => {
                u8::try_from(sockopt::ip_ttl(fd)?).map_err(|_| ErrorCode::NotSupported.into())
            }
            Family::V6 => Ok(sockopt::ipv6_unicast_hops(fd)?),
        }
    }

    pub(crate) fn set_hop_limit(&self, value: u8) -> SocketResult<()> {
        let value = nonzero(value)?;
        let fd = self.fd()?;
        match self.family {
            Family::V4 => sockopt::set_ip_ttl(fd, value.into())?,
            Family::V6 => sockopt::set_ipv6_unicast_hops(fd, Some(value))?,
        }
        Ok(())
    }

    pub(crate) fn receive_buffer_size(&self) -> SocketResult<u64> {
        Ok(buffer_got(sockopt::socket_recv_buffer_size(self.fd()?)?))
    }

    pub(crate) fn set_receive_buffer_size(&self, value: u64) -> SocketResult<()> {
        let value = buffer_size(value)?;
        set_buffer(sockopt::set_socket_recv_buffer_size(self.fd()?, value))
    }

    pub(crate) fn send_buffer_size(&self) -> SocketResult<u64> {
        Ok(buffer_got(sockopt::socket_send_buffer_size(self.fd()?)?))
    }

    pub(crate) fn set_send_buffer_size(&self, value: u64) -> SocketResult<()> {
        let value = buffer_size(value)?;
        set_buffer(sockopt::set_socket_send_buffer_size(self.fd()?, value))
    }
}
