//! An open WebSocket session: messages sent and received over the connection the handshake
//! upgraded, pings answered, the closing handshake (RFC 6455 sections 5 to 7).

use alloc::collections::VecDeque;

#[allow(unused_imports)]
use crate::prelude::*;

use super::frame::{self, Decoder};
use super::message::{Assembler, Event};
use super::{Message, WsError};
use crate::{Conn, NetError};

/// Reads ask for up to this much (wasmtime's cap per read).
const READ_CHUNK: usize = 64 * 1024;

/// What went each way: data messages (control frames not counted) and bytes on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub messages_sent: u64,
    pub messages_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

pub struct Session<C: Conn> {
    conn: C,
    decoder: Decoder,
    assembler: Assembler,
    /// Data messages that came while a ping waited for its pong.
    queue: VecDeque<Message>,
    pub counters: Counters,
    rng: u64,
    /// How long a write may wait for room.
    pub write_ms: u64,
    /// A close frame was sent (nothing but a close may follow).
    close_sent: bool,
}

impl<C: Conn> Session<C> {
    /// A session over `conn` just upgraded: `early` are the bytes that came after the
    /// handshake's answer.
    pub(super) fn new(conn: C, early: &[u8], max_message: u64, seed: u64) -> Session<C> {
        let mut decoder = Decoder::new(max_message);
        decoder.push(early);
        Session {
            conn,
            decoder,
            assembler: Assembler::new(max_message),
            queue: VecDeque::new(),
            counters: Counters::default(),
            rng: seed | 1,
            write_ms: 10_000,
            close_sent: false,
        }
    }

    pub fn local_addr(&self) -> Option<core::net::SocketAddr> {
        self.conn.local_addr()
    }

    fn mask(&mut self) -> [u8; 4] {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng as u32).to_ne_bytes()
    }

    fn write_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), WsError> {
        let mut wire = Vec::with_capacity(payload.len() + 14);
        let mask = self.mask();
        frame::encode(&mut wire, true, opcode, payload, mask);
        self.conn.write(&wire, self.write_ms).map_err(|e| match e {
            NetError::Timeout => WsError::Io("sending: timed out waiting for room".into()),
            e => WsError::Io(format!("sending: {e}")),
        })?;
        self.counters.bytes_sent += wire.len() as u64;
        Ok(())
    }

    /// Send one data message, as one frame.
    pub fn send(&mut self, m: &Message) -> Result<(), WsError> {
        if self.close_sent {
            return Err(WsError::Io("the session is closing".into()));
        }
        let r = match m {
            Message::Text(t) => self.write_frame(frame::TEXT, t.as_bytes()),
            Message::Binary(b) => self.write_frame(frame::BINARY, b),
        };
        self.counters.messages_sent += u64::from(r.is_ok());
        r
    }

    /// The next data message, waiting until `deadline` (µs of `now`). Pings are answered on
    /// the way; a close from the server is answered and ends the session.
    pub fn receive(&mut self, now: &dyn Fn() -> u64, deadline: u64) -> Result<Message, WsError> {
        if let Some(m) = self.queue.pop_front() {
            return Ok(m);
        }
        loop {
            if let Event::Message(m) = self.event(now, deadline)? {
                return Ok(m);
            }
        }
    }

    /// Send a ping with `payload` and wait until `deadline` for its pong; data messages that
    /// come first are kept for `receive`.
    pub fn ping(
        &mut self,
        payload: &[u8],
        now: &dyn Fn() -> u64,
        deadline: u64,
    ) -> Result<(), WsError> {
        if payload.len() > 125 {
            return Err(WsError::Params(
                "payload".into(),
                "a ping carries at most 125 bytes".into(),
            ));
        }
        self.write_frame(frame::PING, payload)?;
        loop {
            match self.event(now, deadline)? {
                Event::Pong(p) if p == payload => return Ok(()),
                Event::Message(m) => self.queue.push_back(m),
                _ => {}
            }
        }
    }

    /// The closing handshake: send a close with `code` and `reason`, then read (data
    /// dropped) until the server's close or `deadline`. The server's code and reason.
    pub fn close(
        &mut self,
        code: u16,
        reason: &str,
        now: &dyn Fn() -> u64,
        deadline: u64,
    ) -> Result<(Option<u16>, String), WsError> {
        if !super::message::close_code_valid(code) || reason.len() > 123 {
            return Err(WsError::Params(
                "close".into(),
                format!("code {code} may not be sent, or the reason is over 123 bytes"),
            ));
        }
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.write_frame(frame::CLOSE, &payload)?;
        self.close_sent = true;
        loop {
            match self.event(now, deadline) {
                Err(WsError::Closed(code, reason)) => return Ok((code, reason)),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
    }

    /// The next event, control frames dealt with: a ping answered, a close answered (the
    /// session over: `Closed`), a broken frame failing the connection with its code.
    fn event(&mut self, now: &dyn Fn() -> u64, deadline: u64) -> Result<Event, WsError> {
        let r = self.next_event(now, deadline);
        match r {
            Ok(Event::Ping(p)) if !self.close_sent => {
                self.write_frame(frame::PONG, &p)?;
                Ok(Event::Ping(p))
            }
            Ok(Event::Close(code, reason)) => {
                if !self.close_sent {
                    // Echo the code (section 5.5.1); an empty close is answered empty.
                    let echo = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
                    let _ = self.write_frame(frame::CLOSE, &echo);
                    self.close_sent = true;
                }
                self.conn.shutdown_send();
                Err(WsError::Closed(code, reason))
            }
            Ok(Event::Message(m)) => {
                self.counters.messages_received += 1;
                Ok(Event::Message(m))
            }
            Err(e) => {
                if let Some(code) = e.failing_code().filter(|_| !self.close_sent) {
                    let _ = self.write_frame(frame::CLOSE, &code.to_be_bytes());
                    self.close_sent = true;
                    self.conn.shutdown_send();
                }
                Err(e)
            }
            other => other,
        }
    }

    fn next_event(&mut self, now: &dyn Fn() -> u64, deadline: u64) -> Result<Event, WsError> {
        loop {
            if let Some(f) = self.decoder.next_frame()? {
                return self.assembler.take(f);
            }
            let left_ms = deadline.saturating_sub(now()) / 1000;
            if left_ms == 0 {
                return Err(WsError::Timeout);
            }
            match self.conn.read(READ_CHUNK, left_ms) {
                Ok(bytes) if bytes.is_empty() => {
                    return Err(WsError::Io(
                        "the connection ended without a close frame (1006)".into(),
                    ));
                }
                Ok(bytes) => {
                    self.counters.bytes_received += bytes.len() as u64;
                    self.decoder.push(&bytes);
                }
                Err(NetError::Timeout) | Err(NetError::WouldBlock) => return Err(WsError::Timeout),
                Err(e) => return Err(WsError::Io(format!("receiving: {e}"))),
            }
        }
    }
}
