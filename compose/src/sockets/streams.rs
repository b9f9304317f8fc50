//! A connected socket's `wasi:io` streams: reads and writes in the call that asks.

use std::io::ErrorKind;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Most a read returns, and most a write may hand over at once (wasmtime-wasi's figure).
const CHUNK: usize = 64 * 1024;

/// A stream's failure as the guest sees it: the peer gone is `closed`; anything else is the
/// operation's error (its `wasi:sockets` code readable from it), once, and `closed` after.
fn failure(e: std::io::Error) -> StreamError {
    match e.kind() {
        ErrorKind::BrokenPipe => StreamError::Closed,
        _ => StreamError::LastOperationFailed(e.into()),
    }
}

/// The reading half.
pub struct TcpInput {
    stream: Arc<TcpStream>,
    closed: bool,
}

impl TcpInput {
    pub fn new(stream: Arc<TcpStream>) -> Self {
        TcpInput {
            stream,
            closed: false,
        }
    }
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
            Ok(_) => Ok(buf.freeze()),
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

/// The writing half: what the socket would not take yet waits in `pending`, and is pushed on
/// by the next call or by the stream's pollable.
pub struct TcpOutput {
    stream: Arc<TcpStream>,
    pending: Bytes,
    /// What `check-write` last allowed, less what was written since.
    permit: usize,
    /// Set when a write failed: the error is returned once, `closed` after.
    failed: Option<StreamError>,
    closed: bool,
}

impl TcpOutput {
    pub fn new(stream: Arc<TcpStream>) -> Self {
        TcpOutput {
            stream,
            pending: Bytes::new(),
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

    /// Write what is pending as far as the socket takes it without waiting.
    fn push(&mut self) {
        while !self.pending.is_empty() && !self.closed {
            match self.stream.try_write(&self.pending) {
                Ok(n) => self.pending.advance(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.closed = true;
                    self.pending.clear();
                    self.failed = Some(failure(e));
                }
            }
        }
    }
}

#[async_trait]
impl OutputStream for TcpOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.status()?;
        if bytes.len() > self.permit {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "not permitted to write {} bytes",
                bytes.len()
            )));
        }
        self.permit -= bytes.len();
        if bytes.is_empty() {
            return Ok(());
        }
        self.pending = bytes;
        self.push();
        self.status()
    }

    /// Writes go to the socket as they are made; a flush pushes on what it has not taken.
    fn flush(&mut self) -> StreamResult<()> {
        self.push();
        self.status()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.push();
        self.status()?;
        self.permit = if self.pending.is_empty() { CHUNK } else { 0 };
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
        self.push();
        while !self.pending.is_empty() && !self.closed {
            if let Err(e) = self.stream.writable().await {
                self.closed = true;
                self.failed = Some(failure(e));
                return;
            }
            self.push();
        }
    }
}

impl Drop for TcpOutput {
    fn drop(&mut self) {
        let _ = rustix::net::shutdown(&*self.stream, rustix::net::Shutdown::Write);
    }
}
