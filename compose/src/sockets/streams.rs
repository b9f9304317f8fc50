//! A connected socket's `wasi:io` streams: reads and writes in the call that asks.

use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::task::{AbortHandle, JoinHandle};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Most a read returns, and most a write may hand over at once (wasmtime-wasi's figure).
pub(crate) const CHUNK: usize = 64 * 1024;

/// A stream's failure as the guest sees it: the peer gone is `closed`; anything else is the
/// operation's error (its `wasi:sockets` code readable from it), once, and `closed` after.
fn failure(e: std::io::Error) -> StreamError {
    match e.kind() {
        ErrorKind::BrokenPipe => StreamError::Closed,
        _ => StreamError::LastOperationFailed(e.into()),
    }
}

/// A read this large or larger says the stream is receiving in bulk.
const BULK: usize = 16 * 1024;

/// The reading half.
pub struct TcpInput {
    /// Held by this stream alone (see [`crate::registry`]).
    pub(crate) alive: Arc<()>,
    stream: Arc<TcpStream>,
    closed: bool,
    /// The last read was large: the next is worth making straight into the guest's memory.
    bulk: bool,
}

impl TcpInput {
    pub fn new(stream: Arc<TcpStream>) -> Self {
        TcpInput {
            alive: Arc::new(()),
            stream,
            closed: false,
            bulk: false,
        }
    }

    /// What the socket has now, up to `dst`'s length, read into `dst`: how many bytes (none if
    /// it has none yet). [`InputStream::read`] into a buffer of the caller's.
    pub(crate) fn read_into(&mut self, dst: &mut [u8]) -> StreamResult<usize> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        if dst.is_empty() {
            return Ok(0);
        }
        match self.stream.try_read(dst) {
            Ok(0) => {
                self.closed = true;
                Err(StreamError::Closed)
            }
            Ok(n) => {
                self.bulk = n >= BULK;
                Ok(n)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
            Err(e) => {
                self.closed = true;
                Err(failure(e))
            }
        }
    }

    /// The bytes waiting in the socket (up to `size`) and the socket to read them from, when
    /// they are worth reading straight into the guest's memory: while the stream receives in
    /// bulk, one call more (`FIONREAD`, to size the guest's list) costs less than the copy it
    /// saves. `None`: read as [`InputStream::read`] does (nothing waiting, the end, an error,
    /// small answers).
    pub(crate) fn waiting(&mut self, size: usize) -> Option<(Arc<TcpStream>, usize)> {
        if self.closed || size == 0 || !self.bulk {
            return None;
        }
        let n = rustix::io::ioctl_fionread(&*self.stream).ok()?;
        let n = usize::try_from(n).ok()?.min(size).min(CHUNK);
        // Nothing yet says nothing of the stream's answers: it stays in bulk.
        if n == 0 {
            return None;
        }
        self.bulk = n >= BULK;
        Some((self.stream.clone(), n))
    }
}

/// Read into `dst` what `stream` has, up to its length: how many bytes (fewer only if the
/// socket failed or ended meanwhile; the next read says which).
pub(crate) fn recv_into(stream: &TcpStream, dst: &mut [u8]) -> usize {
    let mut got = 0;
    while got < dst.len() {
        match rustix::net::recv(stream, &mut dst[got..], rustix::net::RecvFlags::empty()) {
            Ok((0, _)) => break,
            Ok((n, _)) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    got
}

#[async_trait]
impl InputStream for TcpInput {
    /// What the socket has now, up to `size` bytes (none if it has none yet).
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        if size == 0 {
            return Ok(Bytes::new());
        }
        // Uninitialised: the kernel writes what it has, and no more is touched.
        let mut buf = BytesMut::with_capacity(size.min(CHUNK));
        match self.stream.try_read_buf(&mut buf) {
            Ok(0) => {
                self.closed = true;
                Err(StreamError::Closed)
            }
            Ok(n) => {
                self.bulk = n >= BULK;
                Ok(buf.freeze())
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(Bytes::new()),
            Err(e) => {
                self.closed = true;
                Err(failure(e))
            }
        }
    }
}

#[async_trait]
impl Pollable for TcpInput {
    async fn ready(&mut self) {
        if !self.closed {
            let _ = self.stream.readable().await;
        }
    }
}

impl Drop for TcpInput {
    fn drop(&mut self) {
        let _ = rustix::net::shutdown(&*self.stream, rustix::net::Shutdown::Read);
    }
}

/// The writing half. A write goes to the socket in the call (straight to the kernel, not
/// gated on the event loop's idea of readiness, which a socket just connected does not have
/// yet); what the socket would not take is written by a task of the calling thread's runtime
/// as room comes, as wasmtime-wasi writes everything, so that bytes a guest has handed over
/// leave whether or not it calls again. Until that task is done the stream grants no room.
pub struct TcpOutput {
    /// Held by this stream alone: while it has a strong count the stream is alive
    /// ([`crate::registry`] finds it again from its resource by it).
    pub(crate) alive: Arc<()>,
    stream: Arc<TcpStream>,
    sending: SharedSending,
    /// The rest of the last write, being written.
    flight: Option<JoinHandle<std::io::Result<()>>>,
    /// Every task a write under way is made of (ended with the stream).
    tasks: Vec<AbortHandle>,
    /// What `check-write` last allowed, less what was written since.
    permit: usize,
    /// Set when a write failed: the error is returned once, `closed` after.
    failed: Option<StreamError>,
    closed: bool,
}

/// What a connected socket and its output stream share: how many writes are under way, and
/// whether the socket was shut down for sending meanwhile (the shutdown then follows the
/// writes, as wasmtime-wasi's does: what the guest handed over is not cut off).
#[derive(Default)]
pub struct Sending {
    under_way: usize,
    shut_after: bool,
}

pub type SharedSending = Arc<Mutex<Sending>>;

fn lock(s: &SharedSending) -> std::sync::MutexGuard<'_, Sending> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Shut `stream` down for sending, now or after the writes under way.
pub fn shutdown_send(stream: &TcpStream, sending: &SharedSending) -> std::io::Result<()> {
    let mut s = lock(sending);
    if s.under_way > 0 {
        s.shut_after = true;
        return Ok(());
    }
    rustix::net::shutdown(stream, rustix::net::Shutdown::Write)?;
    Ok(())
}

/// A write under way has ended: the last one does a shutdown asked for meanwhile.
fn write_ended(stream: &TcpStream, sending: &SharedSending) {
    let mut s = lock(sending);
    s.under_way = s.under_way.saturating_sub(1);
    if s.under_way == 0 && std::mem::take(&mut s.shut_after) {
        let _ = rustix::net::shutdown(stream, rustix::net::Shutdown::Write);
    }
}

/// Write all of `rest` as the socket takes it.
async fn write_rest(stream: &TcpStream, mut rest: Bytes) -> std::io::Result<()> {
    while !rest.is_empty() {
        stream.writable().await?;
        match stream.try_write(&rest) {
            Ok(n) => rest.advance(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl TcpOutput {
    pub fn new(stream: Arc<TcpStream>, sending: SharedSending) -> Self {
        TcpOutput {
            alive: Arc::new(()),
            stream,
            sending,
            flight: None,
            tasks: Vec::new(),
            permit: 0,
            failed: None,
            closed: false,
        }
    }

    /// The failure to report, if the stream has one.
    fn status(&mut self) -> StreamResult<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.closed {
            return Err(StreamError::Closed);
        }
        Ok(())
    }

    fn fail(&mut self, e: std::io::Error) {
        self.closed = true;
        self.failed = Some(failure(e));
    }

    /// Take the task's outcome if it has finished.
    fn settle(&mut self) {
        let Some(task) = &mut self.flight else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(r) = Pin::new(task).poll(&mut cx) {
            self.flight = None;
            self.tasks.clear();
            self.landed(r);
        }
    }

    fn landed(&mut self, r: Result<std::io::Result<()>, tokio::task::JoinError>) {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.fail(e),
            Err(e) => self.fail(std::io::Error::other(e)),
        }
    }

    /// Have the calling thread's runtime write `rest`, after the write under way if any.
    fn write_later(&mut self, rest: Bytes) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.fail(std::io::Error::other("no tokio runtime to write on"));
            return;
        };
        let (stream, sending) = (self.stream.clone(), self.sending.clone());
        let before = self.flight.take();
        lock(&sending).under_way += 1;
        let task = rt.spawn(async move {
            let r = match before {
                Some(before) => match before.await {
                    Ok(Ok(())) => write_rest(&stream, rest).await,
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(std::io::Error::other(e)),
                },
                None => write_rest(&stream, rest).await,
            };
            write_ended(&stream, &sending);
            r
        });
        self.tasks.push(task.abort_handle());
        self.flight = Some(task);
    }

    /// The start of a write of `len` bytes made from where they lie (the guest's memory): the
    /// checks of [`OutputStream::write`], then the socket to send them on now, or `None`
    /// when they must follow a write still under way (handed to [`TcpOutput::end_direct`]).
    pub(crate) fn begin_direct(&mut self, len: usize) -> StreamResult<Option<Arc<TcpStream>>> {
        self.settle();
        self.status()?;
        if len > self.permit {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "not permitted to write {len} bytes"
            )));
        }
        self.permit -= len;
        Ok(self.flight.is_none().then(|| self.stream.clone()))
    }

    /// The end of a direct write: its failure if sending failed, and what is left to write
    /// after it (as room comes).
    pub(crate) fn end_direct(
        &mut self,
        failed: Option<std::io::Error>,
        rest: Option<Bytes>,
    ) -> StreamResult<()> {
        if let Some(e) = failed {
            self.fail(e);
        }
        self.status()?;
        if let Some(rest) = rest {
            self.write_later(rest);
        }
        self.status()
    }
}

/// A write's bytes sent on `socket` now (`None`: behind a write under way, so none now): the
/// error that stopped the sending, or what is left to write later (`rest_from(sent)`, only
/// when something is left), as [`TcpOutput::end_direct`] takes them.
pub(crate) fn send_or_keep(
    socket: Option<&TcpStream>,
    bytes: &[u8],
    rest_from: impl FnOnce(usize) -> Bytes,
) -> (Option<std::io::Error>, Option<Bytes>) {
    let sent = match socket.map(|s| send_on(s, bytes)) {
        Some((_, Some(e))) => return (Some(e), None),
        Some((sent, None)) => sent,
        None => 0,
    };
    (None, (sent < bytes.len()).then(|| rest_from(sent)))
}

/// Write as much of `bytes` to `stream` as the kernel takes now: how much that was, and the
/// error that stopped it (not "would block").
fn send_on(stream: &TcpStream, bytes: &[u8]) -> (usize, Option<std::io::Error>) {
    let mut sent = 0;
    while sent < bytes.len() {
        let flags = rustix::net::SendFlags::NOSIGNAL;
        match rustix::net::send(stream, &bytes[sent..], flags) {
            Ok(n) => sent += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => break,
            Err(e) => return (sent, Some(e.into())),
        }
    }
    (sent, None)
}

#[async_trait]
impl OutputStream for TcpOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let now = self.begin_direct(bytes.len())?;
        let (failed, rest) = send_or_keep(now.as_deref(), &bytes, |from| bytes.slice(from..));
        self.end_direct(failed, rest)
    }

    /// Writes go to the socket as they are made (the rest by the task): nothing to do.
    fn flush(&mut self) -> StreamResult<()> {
        self.settle();
        self.status()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.settle();
        self.status()?;
        self.permit = if self.flight.is_some() { 0 } else { CHUNK };
        Ok(self.permit)
    }

    /// Wait for what was written to reach the socket (a drop does not lose it).
    async fn cancel(&mut self) {
        self.ready().await
    }
}

#[async_trait]
impl Pollable for TcpOutput {
    async fn ready(&mut self) {
        if let Some(task) = &mut self.flight {
            let r = task.await;
            self.flight = None;
            self.tasks.clear();
            self.landed(r);
        }
    }
}

impl Drop for TcpOutput {
    fn drop(&mut self) {
        // A write still under way when the stream goes (after the drop's bounded wait) ends.
        for task in self.tasks.drain(..) {
            task.abort();
        }
        *lock(&self.sending) = Sending::default();
        let _ = rustix::net::shutdown(&*self.stream, rustix::net::Shutdown::Write);
    }
}
