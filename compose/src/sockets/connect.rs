//! A connection started in the call that asks for it. On loopback the kernel has finished the
//! handshake by the time `connect(2)` returns (its answer is still `EINPROGRESS` for a
//! non-blocking socket), so a look at the socket without waiting finds the outcome, and
//! `finish-connect` has it at once: no wait through `wasi:io/poll`, no fiber switched out and
//! back, no turn of the event loop. Elsewhere the connection is waited for as tokio waits for
//! it (writable, then the socket's error).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::pin::Pin;

use rustix::io::Errno;
use tokio::net::TcpStream;

pub(crate) type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// Where a connection stands after `connect(2)`.
pub(crate) enum Started {
    Done(io::Result<TcpStream>),
    Waiting(Connecting),
}

/// Connect `socket` to `addr` (already checked against the policy).
pub(crate) fn start(socket: tokio::net::TcpSocket, addr: SocketAddr) -> Started {
    // SAFETY: the descriptor is the socket's own, given up by it.
    let fd = unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) };
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => Started::Done(register(fd)),
        Err(Errno::INPROGRESS) if writable_now(&fd) => Started::Done(outcome(fd)),
        Err(Errno::INPROGRESS) => match register(fd) {
            Ok(stream) => Started::Waiting(Box::pin(finish(stream))),
            Err(e) => Started::Done(Err(e)),
        },
        Err(e) => Started::Done(Err(e.into())),
    }
}

/// Whether the connection attempt is over (either way), without waiting.
fn writable_now(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

/// The finished attempt's result: the socket's pending error, or the connected stream.
fn outcome(fd: OwnedFd) -> io::Result<TcpStream> {
    match rustix::net::sockopt::socket_error(&fd)? {
        Ok(()) => register(fd),
        Err(e) => Err(e.into()),
    }
}

/// The connected socket on the calling thread's tokio (whose readiness its streams wait on).
fn register(fd: OwnedFd) -> io::Result<TcpStream> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("no tokio runtime to wait on the socket"));
    }
    TcpStream::from_std(std::net::TcpStream::from(fd))
}

/// Wait for the attempt as tokio's own connect does: writable, then the socket's error.
async fn finish(stream: TcpStream) -> io::Result<TcpStream> {
    stream.writable().await?;
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(stream),
    }
}
