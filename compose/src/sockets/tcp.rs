//! A `wasi:sockets` TCP socket: its states from creation to connected or listening.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rustix::fd::{AsFd, BorrowedFd};
use tokio::net::{TcpListener, TcpStream};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;
use wasmtime_wasi::p2::{Pollable, SocketError, SocketResult};

use super::connect::{self, Connecting, Started};
use super::streams::{SharedSending, TcpInput, TcpOutput, shutdown_send};
use super::{AddrCheck, Family, SocketAddrUse, of_family, remote, unicast, unspecified};
use rustix::net::Shutdown;

/// The listen queue when the guest sets none (wasmtime-wasi's).
const DEFAULT_BACKLOG: u32 = 128;

enum State {
    /// Created, maybe bound.
    Default(tokio::net::TcpSocket),
    Connecting(Connecting),
    /// Connected; `streams` once the guest has them.
    Connected {
        stream: Arc<TcpStream>,
        sending: SharedSending,
        streams_taken: bool,
    },
    /// Listening; `accepted` is a connection taken while the guest waited for one.
    Listening {
        listener: TcpListener,
        accepted: Option<io::Result<(TcpStream, SocketAddr)>>,
    },
    Closed(ErrorCode),
}

impl State {
    /// Connected, its streams not yet taken.
    fn connected(stream: TcpStream) -> State {
        State::Connected {
            stream: Arc::new(stream),
            sending: SharedSending::default(),
            streams_taken: false,
        }
    }
}

/// The operation a `start-*` began and its `finish-*` has not yet seen.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Bind,
    Connect,
    Listen,
}

pub struct TcpSocket {
    state: State,
    pub(crate) family: Family,
    pub(crate) operation: Option<Operation>,
    bound: bool,
    backlog: u32,
}

/// The `wasi:sockets` code of an I/O error, as wasmtime-wasi maps it.
pub(crate) fn code(e: io::Error) -> ErrorCode {
    ErrorCode::from(e)
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

impl TcpSocket {
    /// A new socket of `family` (IPv6 sockets IPv6 only, as WASI has them).
    pub(crate) fn new(family: Family) -> io::Result<TcpSocket> {
        let socket = match family {
            Family::V4 => tokio::net::TcpSocket::new_v4()?,
            Family::V6 => {
                let s = tokio::net::TcpSocket::new_v6()?;
                rustix::net::sockopt::set_ipv6_v6only(&s, true)?;
                s
            }
        };
        Ok(Self::in_state(State::Default(socket), family, false))
    }

    fn in_state(state: State, family: Family, bound: bool) -> TcpSocket {
        TcpSocket {
            state,
            family,
            operation: None,
            bound,
            backlog: DEFAULT_BACKLOG,
        }
    }

    /// The socket's descriptor, in the states that have one.
    pub(crate) fn fd(&self) -> SocketResult<BorrowedFd<'_>> {
        match &self.state {
            State::Default(s) => Ok(s.as_fd()),
            State::Connected { stream, .. } => Ok(stream.as_fd()),
            State::Listening { listener, .. } => Ok(listener.as_fd()),
            State::Connecting(_) => Err(ErrorCode::InvalidState.into()),
            State::Closed(e) => Err((*e).into()),
        }
    }

    /// A socket in the default state is bound once its `bind` succeeded (it is made unbound);
    /// in any other state it is bound (by `bind`, by `connect`, or as an accepted socket).
    fn is_bound(&self) -> bool {
        self.bound || !matches!(self.state, State::Default(_))
    }

    pub(crate) fn bind(&mut self, addr: SocketAddr, check: &dyn AddrCheck) -> SocketResult<()> {
        if self.is_bound() {
            return Err(ErrorCode::InvalidState.into());
        }
        let State::Default(socket) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        if !unicast(addr.ip()) || !of_family(addr.ip(), self.family) {
            return Err(ErrorCode::InvalidArgument.into());
        }
        if !check.allows(addr, SocketAddrUse::TcpBind) {
            return Err(ErrorCode::AccessDenied.into());
        }
        let _ = rustix::net::sockopt::set_socket_reuseaddr(socket, true);
        let afnosupport = rustix::io::Errno::AFNOSUPPORT.raw_os_error();
        socket.bind(addr).map_err(|e| match e.raw_os_error() {
            Some(n) if n == afnosupport => ErrorCode::InvalidArgument.into(),
            _ => SocketError::from(e),
        })?;
        self.bound = true;
        Ok(())
    }

    pub(crate) fn start_connect(
        &mut self,
        addr: SocketAddr,
        check: &dyn AddrCheck,
    ) -> SocketResult<()> {
        if !matches!(self.state, State::Default(_)) {
            return Err(ErrorCode::InvalidState.into());
        }
        if !unicast(addr.ip()) || !remote(addr) || !of_family(addr.ip(), self.family) {
            return Err(ErrorCode::InvalidArgument.into());
        }
        // Unbound, the kernel binds on connect: that bind must be allowed too.
        if !self.is_bound() && !check.allows(unspecified(self.family), SocketAddrUse::TcpBind) {
            return Err(ErrorCode::AccessDenied.into());
        }
        if !check.allows(addr, SocketAddrUse::TcpConnect) {
            return Err(ErrorCode::AccessDenied.into());
        }
        let State::Default(socket) =
            std::mem::replace(&mut self.state, State::Closed(ErrorCode::Unknown))
        else {
            unreachable!("checked above");
        };
        self.state = match connect::start(socket, addr) {
            Started::Done(Ok(stream)) => State::connected(stream),
            Started::Done(Err(e)) => State::Closed(code(e)),
            Started::Waiting(connecting) => State::Connecting(connecting),
        };
        Ok(())
    }

    /// Drive the connection on; ready with its outcome (the state then connected or closed).
    fn poll_connect(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ErrorCode>> {
        let result = match &mut self.state {
            State::Connecting(connect) => match connect.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r,
            },
            State::Connected { .. } => return Poll::Ready(Ok(())),
            State::Closed(e) => return Poll::Ready(Err(*e)),
            _ => return Poll::Ready(Err(ErrorCode::InvalidState)),
        };
        match result {
            Ok(stream) => {
                self.state = State::connected(stream);
                Poll::Ready(Ok(()))
            }
            Err(e) => {
                let e = code(e);
                self.state = State::Closed(e);
                Poll::Ready(Err(e))
            }
        }
    }

    /// The connection's outcome if it has one (`would-block` if not yet), and its streams.
    pub(crate) fn finish_connect(&mut self) -> SocketResult<(TcpInput, TcpOutput)> {
        match self.poll_connect(&mut noop_cx()) {
            Poll::Pending => Err(ErrorCode::WouldBlock.into()),
            Poll::Ready(Err(e)) => {
                self.operation = None;
                Err(e.into())
            }
            Poll::Ready(Ok(())) => {
                self.operation = None;
                self.take_streams()
            }
        }
    }

    fn take_streams(&mut self) -> SocketResult<(TcpInput, TcpOutput)> {
        let State::Connected {
            stream,
            sending,
            streams_taken,
        } = &mut self.state
        else {
            return Err(ErrorCode::InvalidState.into());
        };
        if std::mem::replace(streams_taken, true) {
            return Err(ErrorCode::InvalidState.into());
        }
        let output = TcpOutput::new(stream.clone(), sending.clone());
        Ok((TcpInput::new(stream.clone()), output))
    }

    pub(crate) fn listen(&mut self, check: &dyn AddrCheck) -> SocketResult<()> {
        if !self.is_bound() {
            // WASI 0.2: a socket is bound before it listens.
            return Err(ErrorCode::InvalidState.into());
        }
        let State::Default(socket) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        if !check.allows(socket.local_addr()?, SocketAddrUse::TcpListen) {
            return Err(ErrorCode::AccessDenied.into());
        }
        let State::Default(socket) =
            std::mem::replace(&mut self.state, State::Closed(ErrorCode::Unknown))
        else {
            unreachable!("checked above");
        };
        match socket.listen(self.backlog) {
            Ok(listener) => {
                self.state = State::Listening {
                    listener,
                    accepted: None,
                };
                Ok(())
            }
            Err(e) => {
                let e = code(e);
                self.state = State::Closed(e);
                Err(e.into())
            }
        }
    }

    /// A connection the policy accepts (others are reset), with its streams; `would-block`
    /// if none is waiting.
    pub(crate) fn accept(
        &mut self,
        check: &dyn AddrCheck,
    ) -> SocketResult<(TcpSocket, TcpInput, TcpOutput)> {
        let State::Listening { listener, accepted } = &mut self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        loop {
            let next = match accepted.take() {
                Some(a) => a,
                None => match listener.poll_accept(&mut noop_cx()) {
                    Poll::Pending => return Err(ErrorCode::WouldBlock.into()),
                    Poll::Ready(a) => a,
                },
            };
            let (stream, peer) = next.map_err(accept_error)?;
            if !check.allows(peer, SocketAddrUse::TcpAccept) {
                let _ = stream.set_zero_linger();
                continue;
            }
            let state = State::connected(stream);
            let mut socket = Self::in_state(state, self.family, true);
            let (input, output) = socket.take_streams()?;
            return Ok((socket, input, output));
        }
    }

    pub(crate) fn set_backlog(&mut self, value: u64) -> SocketResult<()> {
        if value == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        let value = u32::try_from(value)
            .unwrap_or(u32::MAX)
            .clamp(1, i32::MAX as u32);
        match &self.state {
            State::Default(_) => {}
            State::Listening { listener, .. } => {
                rustix::net::listen(listener, value as i32)
                    .map_err(|_| SocketError::from(ErrorCode::NotSupported))?;
            }
            State::Closed(e) => return Err((*e).into()),
            _ => return Err(ErrorCode::InvalidState.into()),
        }
        self.backlog = value;
        Ok(())
    }

    pub(crate) fn local_address(&mut self) -> SocketResult<SocketAddr> {
        if !self.is_bound() {
            return Err(ErrorCode::InvalidState.into());
        }
        match &self.state {
            State::Default(s) => Ok(s.local_addr()?),
            State::Connected { stream, .. } => Ok(stream.local_addr()?),
            State::Listening { listener, .. } => Ok(listener.local_addr()?),
            State::Connecting(_) => Err(ErrorCode::InvalidState.into()),
            State::Closed(e) => Err((*e).into()),
        }
    }

    pub(crate) fn remote_address(&self) -> SocketResult<SocketAddr> {
        match &self.state {
            State::Connected { stream, .. } => Ok(stream.peer_addr()?),
            State::Closed(e) => Err((*e).into()),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    pub(crate) fn is_listening(&self) -> bool {
        matches!(self.state, State::Listening { .. })
    }

    /// Shut the connection down in `how` (its streams then see the end).
    pub(crate) fn shutdown(&self, how: Shutdown) -> SocketResult<()> {
        let State::Connected {
            stream,
            sending,
            streams_taken: true,
        } = &self.state
        else {
            return Err(ErrorCode::InvalidState.into());
        };
        if let Shutdown::Read | Shutdown::Both = how {
            rustix::net::shutdown(&**stream, Shutdown::Read)?;
        }
        if let Shutdown::Write | Shutdown::Both = how {
            shutdown_send(stream, sending)?;
        }
        Ok(())
    }
}

/// Accept's errors as wasmtime-wasi reports them on Linux: a connection that went away before
/// it was taken is `connection-aborted`.
fn accept_error(e: io::Error) -> SocketError {
    use rustix::io::Errno;
    let aborted = [
        Errno::CONNRESET,
        Errno::NETRESET,
        Errno::HOSTUNREACH,
        Errno::HOSTDOWN,
        Errno::NETDOWN,
        Errno::NETUNREACH,
        Errno::PROTO,
        Errno::NOPROTOOPT,
        Errno::NONET,
        Errno::OPNOTSUPP,
    ];
    match e.raw_os_error() {
        Some(n) if aborted.iter().any(|a| a.raw_os_error() == n) => {
            ErrorCode::ConnectionAborted.into()
        }
        _ => e.into(),
    }
}

#[async_trait]
impl Pollable for TcpSocket {
    /// Ready when a connection started has its outcome, or a listener has a connection.
    async fn ready(&mut self) {
        match &mut self.state {
            State::Connecting(_) => {
                let _ = poll_fn(|cx| self.poll_connect(cx)).await;
            }
            State::Listening { listener, accepted } if accepted.is_none() => {
                *accepted = Some(poll_fn(|cx| listener.poll_accept(cx)).await);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::SocketAddr;

    use wasmtime_wasi::p2::{OutputStream, Pollable};

    use super::*;

    /// A connected socket and its streams, on the current runtime.
    async fn connected(to: SocketAddr) -> (TcpSocket, TcpInput, TcpOutput) {
        let allow = |_: SocketAddr, _: SocketAddrUse| true;
        let mut s = TcpSocket::new(Family::V4).unwrap();
        s.set_send_buffer_size(16 << 10).unwrap();
        s.start_connect(to, &allow).unwrap();
        for _ in 0..100 {
            if let Ok((input, output)) = s.finish_connect() {
                return (s, input, output);
            }
            s.ready().await;
        }
        panic!("no connection");
    }

    #[test]
    fn a_shutdown_for_sending_follows_the_writes_under_way() {
        const SIZE: usize = 16 << 20;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        // The peer reads late, so that writes are left under way, then to the end (the FIN).
        let peer = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut all = Vec::new();
            c.read_to_end(&mut all).unwrap();
            all.len()
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Writes until one is left under way (the peer's buffers full while it sleeps), then
        // shuts down at once: whatever the machine's speed, the shutdown meets a write under
        // way, and the peer must still get every byte before the FIN.
        let sent = rt.block_on(async {
            let (s, _input, mut output) = connected(to).await;
            let chunk = bytes::Bytes::from(vec![7u8; 64 << 10]);
            let mut sent = 0;
            while output.check_write().unwrap() > 0 {
                assert!(sent < SIZE, "16 MiB written and none left under way");
                output.write(chunk.clone()).unwrap();
                sent += chunk.len();
            }
            s.shutdown(Shutdown::Write).unwrap();
            output.ready().await;
            assert!(output.check_write().is_ok());
            sent
        });
        assert_eq!(peer.join().unwrap(), sent);
    }
}
