//! A connection started in the call that asks for it. On loopback the kernel has finished the
//! handshake by the time `connect(2)` returns (its answer is still `EINPROGRESS` for a
//! non-blocking socket), so a look at the socket without waiting finds the outcome, and
//! `finish-connect` has it at once: no wait through `wasi:io/poll`, no fiber switched out and
//! back, no turn of the event loop. The look is `connect(2)` asked again, which answers in one
//! system call that the attempt is still going (`EALREADY`), that it succeeded, or why it failed
//! (where a `poll` and a read of the socket's error took two). Elsewhere the connection is waited
//! for as tokio waits for it (writable, then the socket's error).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
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
        Err(Errno::INPROGRESS) => match settled(&fd, &addr) {
            Some(Ok(())) => Started::Done(register(fd)),
            Some(Err(e)) => Started::Done(Err(e)),
            None => match register(fd) {
                Ok(stream) => Started::Waiting(Box::pin(finish(stream))),
                Err(e) => Started::Done(Err(e)),
            },
        },
        Err(e) => Started::Done(Err(e.into())),
    }
}

/// The attempt's outcome if it is over, without waiting (`None`: still going). Linux answers
/// a second `connect(2)` with success once the handshake is done (`EISCONN` when asked again,
/// as the BSDs answer at once) and with the attempt's error once it failed, which it then
/// clears; a system that answers a failed attempt otherwise still holds the error in
/// `SO_ERROR`, which is read then.
fn settled(fd: &OwnedFd, addr: &SocketAddr) -> Option<io::Result<()>> {
    match rustix::net::connect(fd, addr) {
        Ok(()) | Err(Errno::ISCONN) => Some(Ok(())),
        Err(Errno::ALREADY | Errno::INPROGRESS) => None,
        Err(e) => Some(Err(match rustix::net::sockopt::socket_error(fd) {
            Ok(Err(pending)) => pending.into(),
            _ => e.into(),
        })),
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

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn socket() -> tokio::net::TcpSocket {
        tokio::net::TcpSocket::new_v4().unwrap()
    }

    #[test]
    fn a_loopback_connection_is_done_in_the_call() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let rt = runtime();
        let _in = rt.enter();
        let stream = match start(socket(), to) {
            Started::Done(r) => r.unwrap(),
            Started::Waiting(_) => panic!("not connected in the call"),
        };
        assert_eq!(stream.peer_addr().unwrap(), to);
        let (_, from) = listener.accept().unwrap();
        assert_eq!(stream.local_addr().unwrap(), from);
    }

    #[test]
    fn a_refused_connection_is_refused_in_the_call() {
        let to = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let rt = runtime();
        let _in = rt.enter();
        let Started::Done(Err(e)) = start(socket(), to) else {
            panic!("not refused in the call");
        };
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    }

    /// A listener whose queue is full drops the handshake's SYN: the attempt stays under way,
    /// is waited for, and connects once the queue has room (the SYN is sent again after 1 s).
    #[test]
    fn an_attempt_under_way_is_waited_for() {
        let rt = runtime();
        let _in = rt.enter();
        let listener = socket();
        listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listener.listen(0).unwrap();
        let to = listener.local_addr().unwrap();
        // Fill the accept queue until an attempt is left waiting (bounded).
        let mut held = Vec::new();
        let waiting = (0..64).find_map(|_| match start(socket(), to) {
            Started::Done(r) => {
                held.push(r.unwrap());
                None
            }
            Started::Waiting(w) => Some(w),
        });
        let waiting = waiting.expect("the queue never filled");
        let accepting = rt.spawn(async move {
            loop {
                let _ = listener.accept().await.unwrap();
            }
        });
        let stream = rt.block_on(tokio::time::timeout(Duration::from_secs(10), waiting));
        accepting.abort();
        let stream = stream.expect("no connection in 10 s").unwrap();
        assert_eq!(stream.peer_addr().unwrap(), to);
    }
}
