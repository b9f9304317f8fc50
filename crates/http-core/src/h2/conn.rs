//! One HTTP/2 connection of a client (RFC 9113): the preface and SETTINGS, then requests one
//! stream at a time, with flow control both ways, PING answered, RST_STREAM and GOAWAY read.

#[allow(unused_imports)]
use crate::prelude::*;

use super::frame::{self, Frame, Reader};
use super::hpack;
use crate::sink::{BodyOut, BodySink, NoRoom, keeps_body};
use crate::{Conn, ExchangeError, NetError};

/// The window we give the server, per stream and for the connection.
const OUR_WINDOW: u32 = 1 << 20;
/// Reads ask for up to this much.
const READ_CHUNK: usize = 64 * 1024;

/// How a request on the connection failed.
#[derive(Debug)]
pub enum H2Failure {
    /// The server did not take the stream (REFUSED_STREAM, or GOAWAY below it): the request
    /// was not processed and may go on another connection.
    Unprocessed(String),
    /// The connection ended before any of the answer (on a reused connection: stale).
    Stale(String),
    /// A timeout (`true`: waiting for the first byte).
    Timeout(bool),
    /// The server broke the protocol, or reset the stream.
    Protocol(String),
    TooLarge(String),
    Io(String),
}

/// A response as read from its stream.
#[derive(Debug, Default)]
pub struct H2Response {
    pub status: u16,
    pub headers: crate::Fields,
    pub trailers: crate::Fields,
    pub body: BodySink,
    /// When its first frame came (µs of the caller's clock).
    pub first_byte_at: u64,
    /// The decoded size of the interim (1xx) heads so far (bounded as one head is).
    interim: usize,
}

/// A request's body: bytes in memory, then `streamed` more read through `more` (at most the
/// count asked for each call) as they are sent.
pub struct Body<'a> {
    pub fixed: &'a [u8],
    pub streamed: u64,
    pub more: Option<&'a mut dyn FnMut(usize) -> Result<Vec<u8>, String>>,
}

impl Body<'_> {
    fn len(&self) -> u64 {
        self.fixed.len() as u64 + self.streamed
    }
}

/// What the caller's clock and limits are for one request.
pub struct Limits<'a> {
    pub now: &'a dyn Fn() -> u64,
    /// Deadline (µs) for the whole request.
    pub end: u64,
    pub first_byte_ms: u64,
    pub between_bytes_ms: u64,
    pub max_body: u64,
    /// Keep the body (else count it), and decode it (then it is kept).
    pub keep_body: bool,
    pub decompress: bool,
}

pub struct H2Conn<C: Conn> {
    conn: C,
    reader: Reader,
    decoder: hpack::Decoder,
    next_stream: u32,
    peer_max_frame: usize,
    peer_initial_window: i64,
    send_window: i64,
    /// Bytes of DATA taken and not yet given back in a WINDOW_UPDATE (connection).
    unacked: u32,
    /// GOAWAY's last stream id: no new stream may start.
    goaway: Option<u32>,
    broken: bool,
    pub sent: u64,
    pub received: u64,
}

impl<C: Conn> H2Conn<C> {
    /// The preface, our SETTINGS (no push, a 1 MiB window) and the connection's window raised
    /// to match, written at once; the server's SETTINGS are read with the first answer.
    pub fn open(mut conn: C, write_ms: u64) -> Result<H2Conn<C>, NetError> {
        let mut out = frame::PREFACE.to_vec();
        let ours = frame::settings(&[
            (frame::ENABLE_PUSH, 0),
            (frame::INITIAL_WINDOW_SIZE, OUR_WINDOW),
        ]);
        frame::push(&mut out, frame::SETTINGS, 0, 0, &ours);
        frame::push(
            &mut out,
            frame::WINDOW_UPDATE,
            0,
            0,
            &(OUR_WINDOW - 65_535).to_be_bytes(),
        );
        conn.write(&out, write_ms)?;
        Ok(H2Conn {
            conn,
            reader: Reader::new(16_384),
            decoder: hpack::Decoder::default(),
            next_stream: 1,
            peer_max_frame: 16_384,
            peer_initial_window: 65_535,
            send_window: 65_535,
            unacked: 0,
            goaway: None,
            broken: false,
            sent: out.len() as u64,
            received: 0,
        })
    }

    /// Whether a new request may start on it.
    pub fn usable(&self) -> bool {
        !self.broken && self.goaway.is_none() && self.next_stream < (1 << 31) - 2
    }

    pub fn local_addr(&self) -> Option<core::net::SocketAddr> {
        self.conn.local_addr()
    }

    fn write(&mut self, bytes: &[u8], ms: u64) -> Result<(), H2Failure> {
        self.conn.write(bytes, ms).map_err(|e| {
            self.broken = true;
            match e {
                NetError::Timeout => H2Failure::Timeout(false),
                e => H2Failure::Io(format!("sending: {e}")),
            }
        })?;
        self.sent += bytes.len() as u64;
        Ok(())
    }

    /// A connection error: GOAWAY with `code`, and the connection is done.
    fn fail(&mut self, code: u32, why: String) -> H2Failure {
        let mut p = Vec::with_capacity(8);
        p.extend_from_slice(&(self.next_stream.saturating_sub(2)).to_be_bytes());
        p.extend_from_slice(&code.to_be_bytes());
        let mut out = Vec::new();
        frame::push(&mut out, frame::GOAWAY, 0, 0, &p);
        let _ = self.conn.write(&out, 0);
        self.broken = true;
        H2Failure::Protocol(why)
    }

    /// One request: `fields` (pseudo-headers first, names lower case) and `body`; its answer.
    pub fn request(
        &mut self,
        fields: &[(&str, &str)],
        mut body: Body,
        l: &Limits,
    ) -> Result<H2Response, H2Failure> {
        let id = self.next_stream;
        self.next_stream += 2;
        let total = body.len();
        self.send_head(id, fields, total == 0, l)?;
        let mut window = self.peer_initial_window;
        let mut resp = H2Response::default();
        let (mut off, mut piece, mut at) = (0u64, Vec::new(), 0usize);
        while off < total {
            let room = self
                .send_window
                .min(window)
                .min(self.peer_max_frame as i64)
                .max(0) as usize;
            if room == 0 {
                if self.step(id, &mut resp, &mut window, l)?.0 {
                    return Ok(resp);
                }
                continue;
            }
            let chunk = match (off as usize) < body.fixed.len() {
                true => &body.fixed[off as usize..body.fixed.len().min(off as usize + room)],
                false => {
                    if at == piece.len() {
                        let want = (total - off).min(64 * 1024) as usize;
                        piece = self.next_piece(&mut body, want)?;
                        at = 0;
                    }
                    &piece[at..piece.len().min(at + room)]
                }
            };
            let n = chunk.len();
            let last = off + n as u64 == total;
            let mut out = Vec::with_capacity(n + 9);
            frame::push(
                &mut out,
                frame::DATA,
                if last { frame::END_STREAM } else { 0 },
                id,
                chunk,
            );
            self.write(&out, l.between_bytes_ms)?;
            if (off as usize) >= body.fixed.len() {
                at += n;
            }
            (self.send_window, window, off) = (
                self.send_window - n as i64,
                window - n as i64,
                off + n as u64,
            );
        }
        loop {
            if self.step(id, &mut resp, &mut window, l)?.0 {
                return Ok(resp);
            }
        }
    }

    /// The next piece of a streamed body; one that fails or ends early cancels the stream.
    fn next_piece(&mut self, body: &mut Body, want: usize) -> Result<Vec<u8>, H2Failure> {
        let got = match body.more.as_mut() {
            Some(more) => more(want),
            None => Err("no body to stream".into()),
        };
        match got {
            Ok(p) if !p.is_empty() && p.len() <= want => Ok(p),
            Ok(_) | Err(_) => {
                self.broken = true;
                Err(H2Failure::Io(
                    got.err().unwrap_or_else(|| "the body ended early".into()),
                ))
            }
        }
    }

    /// HEADERS (and CONTINUATION past the server's frame size) for stream `id`.
    fn send_head(
        &mut self,
        id: u32,
        fields: &[(&str, &str)],
        end: bool,
        l: &Limits,
    ) -> Result<(), H2Failure> {
        let block = hpack::encode(fields);
        let mut out = Vec::with_capacity(block.len() + 18);
        let mut chunks = block.chunks(self.peer_max_frame).peekable();
        let mut kind = frame::HEADERS;
        let stream_end = if end { frame::END_STREAM } else { 0 };
        if chunks.peek().is_none() {
            frame::push(&mut out, kind, frame::END_HEADERS | stream_end, id, &[]);
        }
        while let Some(c) = chunks.next() {
            let mut flags = if kind == frame::HEADERS {
                stream_end
            } else {
                0
            };
            if chunks.peek().is_none() {
                flags |= frame::END_HEADERS;
            }
            frame::push(&mut out, kind, flags, id, c);
            kind = frame::CONTINUATION;
        }
        match end {
            // Nothing follows: sent and the answer's first bytes read in one call.
            true => self.exchange(&out, l),
            false => self.write(&out, l.between_bytes_ms),
        }
    }

    /// Write `out` and read what comes first of the answer, in one `Conn::exchange`.
    fn exchange(&mut self, out: &[u8], l: &Limits) -> Result<(), H2Failure> {
        let left = l.end.saturating_sub((l.now)()) / 1000;
        if left == 0 {
            return Err(H2Failure::Timeout(true));
        }
        let read_ms = l.first_byte_ms.min(left).max(1);
        let r = self
            .conn
            .exchange(out, READ_CHUNK, l.between_bytes_ms, read_ms, false);
        let ex = r.map_err(|e| {
            self.broken = true;
            match e {
                ExchangeError::Send(NetError::Timeout) => H2Failure::Timeout(false),
                ExchangeError::Receive(NetError::Timeout) => H2Failure::Timeout(true),
                ExchangeError::Send(e) => H2Failure::Io(format!("sending: {e}")),
                ExchangeError::Receive(e) => H2Failure::Stale(format!("receiving: {e}")),
                ExchangeError::NotIdle => H2Failure::Stale("the connection was not idle".into()),
            }
        })?;
        let unsent = ex.unsent.min(out.len());
        self.sent += (out.len() - unsent) as u64;
        if ex.answer.is_empty() {
            self.broken = true;
            return Err(H2Failure::Stale("the connection was closed".into()));
        }
        self.received += ex.answer.len() as u64;
        self.reader.push(&ex.answer);
        match unsent {
            0 => Ok(()),
            n => self.write(&out[out.len() - n..], l.between_bytes_ms),
        }
    }

    /// Read and handle one frame; `(true, _)` once stream `id` has ended.
    fn step(
        &mut self,
        id: u32,
        resp: &mut H2Response,
        window: &mut i64,
        l: &Limits,
    ) -> Result<(bool, bool), H2Failure> {
        let f = self.next_frame(resp.first_byte_at == 0, l)?;
        if resp.first_byte_at == 0 {
            resp.first_byte_at = (l.now)();
        }
        match f.kind {
            frame::SETTINGS => self.on_settings(&f, window, l)?,
            frame::PING if f.flags & frame::ACK == 0 => {
                let mut out = Vec::new();
                frame::push(&mut out, frame::PING, frame::ACK, 0, &f.payload);
                self.write(&out, l.between_bytes_ms)?;
            }
            frame::WINDOW_UPDATE => self.on_window_update(&f, id, window)?,
            frame::GOAWAY => return self.on_goaway(&f, id).map(|_| (false, false)),
            frame::RST_STREAM if f.stream == id => return Err(reset(&f)),
            frame::HEADERS if f.stream == id => {
                return self.on_headers(f, resp, l).map(|d| (d, true));
            }
            frame::HEADERS => {
                // Another stream's block still goes through the decoder (its table).
                self.header_block(f, l)?;
            }
            frame::DATA => return self.on_data(&f, id, resp, l),
            frame::PUSH_PROMISE => {
                return Err(self.fail(0x1, "a PUSH_PROMISE though push is off".into()));
            }
            frame::CONTINUATION => {
                return Err(self.fail(0x1, "a CONTINUATION with no HEADERS before it".into()));
            }
            _ => {}
        }
        Ok((false, false))
    }

    /// The next whole frame, reading as needed within the timeouts.
    fn next_frame(&mut self, first: bool, l: &Limits) -> Result<Frame, H2Failure> {
        loop {
            match self.reader.next_frame() {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(n) => return Err(self.fail(0x6, format!("a frame of {n} bytes, over 16384"))),
            }
            let phase = if first {
                l.first_byte_ms
            } else {
                l.between_bytes_ms
            };
            let left = l.end.saturating_sub((l.now)()) / 1000;
            if left == 0 {
                return Err(H2Failure::Timeout(first));
            }
            match self.conn.read(READ_CHUNK, phase.min(left).max(1)) {
                Ok(b) if b.is_empty() => {
                    self.broken = true;
                    return Err(H2Failure::Stale("the connection was closed".into()));
                }
                Ok(b) => {
                    self.received += b.len() as u64;
                    self.reader.push(&b);
                }
                Err(NetError::Timeout) => return Err(H2Failure::Timeout(first)),
                Err(e) => {
                    self.broken = true;
                    return Err(H2Failure::Stale(format!("receiving: {e}")));
                }
            }
        }
    }

    fn on_settings(&mut self, f: &Frame, window: &mut i64, l: &Limits) -> Result<(), H2Failure> {
        if f.flags & frame::ACK != 0 {
            return Ok(());
        }
        let Some(pairs) = frame::read_settings(&f.payload).filter(|_| f.stream == 0) else {
            return Err(self.fail(0x6, "a SETTINGS frame of a bad size or stream".into()));
        };
        for (k, v) in pairs {
            match k {
                frame::INITIAL_WINDOW_SIZE if v > 0x7fff_ffff => {
                    return Err(self.fail(0x3, "an initial window over 2^31-1".into()));
                }
                frame::INITIAL_WINDOW_SIZE => {
                    *window += i64::from(v) - self.peer_initial_window;
                    self.peer_initial_window = i64::from(v);
                }
                frame::MAX_FRAME_SIZE if !(16_384..=16_777_215).contains(&v) => {
                    return Err(self.fail(0x1, format!("a max frame size of {v}")));
                }
                frame::MAX_FRAME_SIZE => self.peer_max_frame = v as usize,
                _ => {}
            }
        }
        let mut out = Vec::new();
        frame::push(&mut out, frame::SETTINGS, frame::ACK, 0, &[]);
        self.write(&out, l.between_bytes_ms)
    }

    fn on_window_update(&mut self, f: &Frame, id: u32, window: &mut i64) -> Result<(), H2Failure> {
        let inc = frame::u31(&f.payload, 0).filter(|_| f.payload.len() == 4);
        let Some(inc) = inc.filter(|n| *n > 0) else {
            return Err(self.fail(0x1, "a WINDOW_UPDATE of 0 or a bad size".into()));
        };
        let target = match f.stream {
            0 => &mut self.send_window,
            s if s == id => window,
            _ => return Ok(()),
        };
        *target += i64::from(inc);
        if *target > 0x7fff_ffff {
            return Err(self.fail(0x3, "a window over 2^31-1".into()));
        }
        Ok(())
    }

    fn on_goaway(&mut self, f: &Frame, id: u32) -> Result<(), H2Failure> {
        let last = frame::u31(&f.payload, 0).unwrap_or(0);
        self.goaway = Some(last);
        if id > last {
            let code = frame::u31(&f.payload, 4).unwrap_or(0);
            return Err(H2Failure::Unprocessed(format!(
                "GOAWAY ({}) before the stream",
                error_name(code)
            )));
        }
        Ok(())
    }

    /// A whole header block from `f` and its CONTINUATIONs, decoded.
    fn header_block(
        &mut self,
        f: Frame,
        l: &Limits,
    ) -> Result<(Vec<(String, String)>, bool), H2Failure> {
        let end_stream = f.flags & frame::END_STREAM != 0;
        let Some(first) = frame::unpadded(&f) else {
            return Err(self.fail(0x1, "a HEADERS frame with bad padding".into()));
        };
        let mut block = first.to_vec();
        let mut done = f.flags & frame::END_HEADERS != 0;
        while !done {
            let c = self.next_frame(false, l)?;
            if c.kind != frame::CONTINUATION || c.stream != f.stream {
                return Err(self.fail(0x1, "a header block cut by another frame".into()));
            }
            block.extend_from_slice(&c.payload);
            if block.len() > 1 << 20 {
                return Err(self.fail(0xb, "a header block over 1 MiB".into()));
            }
            done = c.flags & frame::END_HEADERS != 0;
        }
        match self.decoder.decode(&block) {
            Ok(fields) => Ok((fields, end_stream)),
            Err(e) => Err(self.fail(0x9, format!("HPACK: {}", e.0))),
        }
    }

    /// The answer's head (interim 1xx ones skipped) or its trailers; whether the stream ended.
    fn on_headers(
        &mut self,
        f: Frame,
        resp: &mut H2Response,
        l: &Limits,
    ) -> Result<bool, H2Failure> {
        let (fields, end) = self.header_block(f, l)?;
        if resp.status != 0 {
            resp.trailers = fields
                .into_iter()
                .filter(|(k, _)| !k.starts_with(':'))
                .collect();
            return Ok(true);
        }
        let status = fields
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse::<u16>().ok());
        let Some(status) = status.filter(|s| (100..1000).contains(s)) else {
            return Err(H2Failure::Protocol(
                "an answer without a valid :status".into(),
            ));
        };
        if (100..200).contains(&status) {
            // Sized as HPACK sizes a field; a server sending them without end is refused.
            resp.interim += fields
                .iter()
                .map(|(k, v)| hpack::entry_size(k, v))
                .sum::<usize>();
            if resp.interim > self.decoder.max_list {
                return Err(H2Failure::TooLarge(format!(
                    "interim (1xx) response heads over {} bytes",
                    self.decoder.max_list
                )));
            }
            return Ok(end);
        }
        resp.status = status;
        resp.headers = fields
            .into_iter()
            .filter(|(k, _)| !k.starts_with(':'))
            .collect();
        resp.body = BodySink::new(keeps_body(l.keep_body, l.decompress, &resp.headers));
        Ok(end)
    }

    fn on_data(
        &mut self,
        f: &Frame,
        id: u32,
        resp: &mut H2Response,
        l: &Limits,
    ) -> Result<(bool, bool), H2Failure> {
        let Some(data) = frame::unpadded(f) else {
            return Err(self.fail(0x1, "a DATA frame with bad padding".into()));
        };
        let end = f.flags & frame::END_STREAM != 0;
        if f.stream == id {
            if resp.status == 0 {
                return Err(self.fail(0x1, "DATA before the answer's head".into()));
            }
            if resp.body.written() + data.len() as u64 > l.max_body {
                return Err(H2Failure::TooLarge(format!(
                    "a body over {} bytes",
                    l.max_body
                )));
            }
            resp.body
                .put(data)
                .map_err(|NoRoom(why)| H2Failure::TooLarge(why))?;
        }
        self.give_back(f.payload.len() as u32, if end { 0 } else { f.stream }, l)?;
        Ok((end && f.stream == id, true))
    }

    /// Count DATA taken; past half the window, give it back (connection, and `stream` if
    /// still open).
    fn give_back(&mut self, n: u32, stream: u32, l: &Limits) -> Result<(), H2Failure> {
        self.unacked += n;
        if self.unacked < OUR_WINDOW / 2 {
            return Ok(());
        }
        let inc = core::mem::take(&mut self.unacked).to_be_bytes();
        let mut out = Vec::new();
        frame::push(&mut out, frame::WINDOW_UPDATE, 0, 0, &inc);
        if stream != 0 {
            frame::push(&mut out, frame::WINDOW_UPDATE, 0, stream, &inc);
        }
        self.write(&out, l.between_bytes_ms)
    }
}

fn reset(f: &Frame) -> H2Failure {
    let code = frame::u31(&f.payload, 0).unwrap_or(0);
    match code {
        0x7 => H2Failure::Unprocessed("the server refused the stream (REFUSED_STREAM)".into()),
        c => H2Failure::Protocol(format!("the server reset the stream ({})", error_name(c))),
    }
}

/// An error code's name (section 7).
pub fn error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("error {code:#x}"), |n| n.to_string())
}
