//! Reading a TLS session's plaintext: decrypting what has come, and copying it out into a
//! growing buffer (wasmtime-wasi's `read`) or the guest's list (the direct read).

use bytes::Bytes;
use std::io::BufRead;
use wasmtime_wasi::p2::{DynInputStream, StreamError, StreamResult};

use super::{Session, failed, fill, tls_error_text};

/// Decrypt what has come, reading what the TCP stream has without waiting, until plaintext is
/// ready: how much, or (`Err`) what a read answers when none is (nothing yet, the end, an
/// error).
pub(crate) fn ready_plaintext(
    tcp: &mut DynInputStream,
    s: &mut Session,
) -> Result<usize, StreamResult<Bytes>> {
    loop {
        let io = match s.tls.process_new_packets() {
            Ok(io) => io,
            Err(e) => return Err(Err(failed(tls_error_text(&e)))),
        };
        let ready = io.plaintext_bytes_to_read();
        if ready > 0 {
            return Ok(ready);
        }
        // The peer's close_notify, or the TCP stream's end without one: the stream ends as
        // any close does (HTTP's framing says whether anything is missing).
        if io.peer_has_closed() || (s.eof && s.inbuf.is_empty()) {
            return Err(Err(StreamError::Closed));
        }
        fill(tcp, s).map_err(|e| Err(failed(e)))?;
        if s.inbuf.is_empty() && !s.eof {
            return Err(Ok(Bytes::new()));
        }
        let (before, eof) = (s.inbuf.len(), s.eof);
        s.process().map_err(|e| Err(failed(e)))?;
        // rustls took nothing (it wants no more input now): nothing to read yet, rather than
        // going round again.
        if !eof && s.inbuf.len() == before {
            return Err(Ok(Bytes::new()));
        }
    }
}

/// Where plaintext is read to.
pub(crate) trait Sink {
    /// How many more bytes it takes.
    fn room(&self) -> usize;
    fn put(&mut self, bytes: &[u8]);
}

/// A buffer that grows up to `size` bytes.
pub(super) struct Grow<'a> {
    pub(super) out: &'a mut bytes::BytesMut,
    pub(super) size: usize,
}

impl Sink for Grow<'_> {
    fn room(&self) -> usize {
        self.size - self.out.len()
    }
    fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
}

/// A slice (the guest's list), filled from `at`.
pub(crate) struct Fill<'a> {
    pub(crate) dst: &'a mut [u8],
    pub(crate) at: usize,
}

impl Sink for Fill<'_> {
    fn room(&self) -> usize {
        self.dst.len() - self.at
    }
    fn put(&mut self, bytes: &[u8]) {
        self.dst[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// The plaintext rustls holds, and what the ciphertext already buffered decrypts to, copied
/// into `sink` as far as it takes: a TCP read holds several records, and each read of this
/// stream is a guest call. How many bytes. An error stays with rustls for the next read.
pub(crate) fn read_buffered(s: &mut Session, sink: &mut impl Sink) -> usize {
    let mut n = 0;
    loop {
        n += take_plaintext(s, sink);
        let before = s.inbuf.len();
        if sink.room() == 0 || before == 0 || s.process().is_err() || s.inbuf.len() == before {
            return n;
        }
    }
}

/// Copy the plaintext rustls holds into `sink`, as far as it takes: record by record, each
/// copied once (no zeroed buffer to read into). How many bytes.
fn take_plaintext(s: &mut Session, sink: &mut impl Sink) -> usize {
    let mut reader = s.tls.reader();
    let mut n = 0;
    while sink.room() > 0 {
        let chunk = match reader.fill_buf() {
            Ok(c) if !c.is_empty() => c,
            _ => break,
        };
        let take = chunk.len().min(sink.room());
        sink.put(&chunk[..take]);
        reader.consume(take);
        n += take;
    }
    n
}
