//! WebSocket client sessions (RFC 6455) over the same connections as HTTP: the opening
//! handshake through [`Client::ws_open`](crate::Client), then a [`Session`] that sends,
//! receives, pings and closes. No extensions are offered.

pub mod frame;
pub mod handshake;
pub mod message;
mod open;
pub mod params;
mod session;

use core::fmt;

#[allow(unused_imports)]
use crate::prelude::*;

pub use open::Opened;
pub use session::{Counters, Session};

use crate::HttpError;

/// A data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

impl Message {
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// A parameter (its field) is not right; nothing was sent.
    Params(String, String),
    /// The connection could not be made (name, connect, TLS, timeouts).
    Open(HttpError),
    /// The server did not take the upgrade: its status and why.
    Handshake(u16, String),
    /// The server broke RFC 6455 (the session was failed with 1002).
    Protocol(String),
    /// A text message or close reason that is not UTF-8 (failed with 1007).
    BadUtf8,
    /// A message or frame of this many bytes, over the limit (failed with 1009).
    TooLarge(u64),
    /// Nothing came in time; the session stays open.
    Timeout,
    /// The server closed the session: its code (none: no code) and reason.
    Closed(Option<u16>, String),
    /// The connection failed or ended without a close frame.
    Io(String),
}

impl WsError {
    /// Whether the session is over after this error.
    pub fn ends_session(&self) -> bool {
        !matches!(self, WsError::Timeout | WsError::Params(..))
    }

    /// The close code a client fails the connection with for this error (section 7.4.1).
    fn failing_code(&self) -> Option<u16> {
        match self {
            WsError::Protocol(_) => Some(1002),
            WsError::BadUtf8 => Some(1007),
            WsError::TooLarge(_) => Some(1009),
            _ => None,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Params(field, m) => write!(f, "{field}: {m}"),
            WsError::Open(e) => write!(f, "{e}"),
            WsError::Handshake(status, m) => write!(f, "handshake ({status}): {m}"),
            WsError::Protocol(m) => write!(f, "protocol: {m}"),
            WsError::BadUtf8 => f.write_str("protocol: text that is not UTF-8"),
            WsError::TooLarge(n) => write!(f, "a message of {n} bytes, over max_message"),
            WsError::Timeout => f.write_str("timed out"),
            WsError::Closed(Some(c), r) => write!(f, "closed by the server: {c} {r}"),
            WsError::Closed(None, _) => f.write_str("closed by the server (no code)"),
            WsError::Io(m) => f.write_str(m),
        }
    }
}
