//! Frames into messages (RFC 6455 sections 5.4 and 5.5): fragments joined in order, control
//! frames allowed between them, text checked to be UTF-8, close frames read.

#[allow(unused_imports)]
use crate::prelude::*;

use super::frame::{BINARY, CLOSE, CONTINUATION, Frame, PING, PONG, TEXT};
use super::{Message, WsError};

/// What a frame amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message(Message),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The server's close: its code (none when the payload was empty) and reason.
    Close(Option<u16>, String),
    /// A fragment of a message not yet whole.
    Partial,
}

/// Joins fragments; holds at most `max_message` bytes of one message.
pub struct Assembler {
    partial: Option<(bool, Vec<u8>)>,
    pub max_message: u64,
}

impl Assembler {
    pub fn new(max_message: u64) -> Assembler {
        Assembler {
            partial: None,
            max_message,
        }
    }

    pub fn take(&mut self, f: Frame) -> Result<Event, WsError> {
        match f.opcode {
            PING => Ok(Event::Ping(f.payload)),
            PONG => Ok(Event::Pong(f.payload)),
            CLOSE => close_payload(&f.payload),
            CONTINUATION => self.continued(f),
            _ => self.started(f),
        }
    }

    fn started(&mut self, f: Frame) -> Result<Event, WsError> {
        if self.partial.is_some() {
            return Err(WsError::Protocol(
                "a new message began before the last one's final fragment".into(),
            ));
        }
        let text = f.opcode == TEXT;
        debug_assert!(text || f.opcode == BINARY);
        self.check_size(f.payload.len() as u64)?;
        if f.fin {
            return whole(text, f.payload);
        }
        self.partial = Some((text, f.payload));
        Ok(Event::Partial)
    }

    fn continued(&mut self, f: Frame) -> Result<Event, WsError> {
        let Some((_, buf)) = self.partial.as_ref() else {
            return Err(WsError::Protocol(
                "a continuation frame with no message begun".into(),
            ));
        };
        self.check_size(buf.len() as u64 + f.payload.len() as u64)?;
        let Some((text, buf)) = self.partial.as_mut() else {
            return Ok(Event::Partial);
        };
        buf.extend_from_slice(&f.payload);
        if !f.fin {
            return Ok(Event::Partial);
        }
        let text = *text;
        let buf = core::mem::take(buf);
        self.partial = None;
        whole(text, buf)
    }

    fn check_size(&self, len: u64) -> Result<(), WsError> {
        match len > self.max_message {
            true => Err(WsError::TooLarge(len)),
            false => Ok(()),
        }
    }
}

fn whole(text: bool, payload: Vec<u8>) -> Result<Event, WsError> {
    if !text {
        return Ok(Event::Message(Message::Binary(payload)));
    }
    String::from_utf8(payload)
        .map(|s| Event::Message(Message::Text(s)))
        .map_err(|_| WsError::BadUtf8)
}

/// A close frame's body (section 5.5.1): empty, or a code and a UTF-8 reason; codes as
/// section 7.4 allows on the wire.
fn close_payload(p: &[u8]) -> Result<Event, WsError> {
    match p.len() {
        0 => return Ok(Event::Close(None, String::new())),
        1 => return Err(WsError::Protocol("a close frame of one byte".into())),
        _ => {}
    }
    let code = u16::from_be_bytes([p[0], p[1]]);
    if !close_code_valid(code) {
        return Err(WsError::Protocol(format!(
            "close code {code} may not be sent"
        )));
    }
    let reason = core::str::from_utf8(&p[2..]).map_err(|_| WsError::BadUtf8)?;
    Ok(Event::Close(Some(code), reason.into()))
}

/// Codes an endpoint may send: 1000-1003, 1007-1011 (and 1012-1014, registered since), and
/// 3000-4999 for libraries and applications.
pub fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Frame {
        Frame {
            fin,
            opcode,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn fragments_join_with_control_frames_between() {
        let mut a = Assembler::new(100);
        assert_eq!(a.take(frame(false, TEXT, b"Hel")).unwrap(), Event::Partial);
        assert_eq!(
            a.take(frame(true, PING, b"p")).unwrap(),
            Event::Ping(b"p".to_vec())
        );
        assert_eq!(
            a.take(frame(false, CONTINUATION, b"l")).unwrap(),
            Event::Partial
        );
        assert_eq!(
            a.take(frame(true, CONTINUATION, b"o")).unwrap(),
            Event::Message(Message::Text("Hello".into()))
        );
        assert_eq!(
            a.take(frame(true, BINARY, &[0xff])).unwrap(),
            Event::Message(Message::Binary(vec![0xff]))
        );
    }

    #[test]
    fn broken_sequences_and_payloads_are_errors() {
        let mut a = Assembler::new(100);
        assert!(matches!(
            a.take(frame(true, CONTINUATION, b"x")),
            Err(WsError::Protocol(_))
        ));
        a.take(frame(false, BINARY, b"x")).unwrap();
        assert!(matches!(
            a.take(frame(true, TEXT, b"y")),
            Err(WsError::Protocol(_))
        ));
        let mut a = Assembler::new(100);
        // A UTF-8 sequence split across fragments is fine; an invalid one is not.
        a.take(frame(false, TEXT, &[0xce])).unwrap();
        assert_eq!(
            a.take(frame(true, CONTINUATION, &[0xba])).unwrap(),
            Event::Message(Message::Text("κ".into()))
        );
        assert_eq!(a.take(frame(true, TEXT, &[0xff])), Err(WsError::BadUtf8));
        let mut a = Assembler::new(4);
        a.take(frame(false, BINARY, b"abc")).unwrap();
        assert_eq!(
            a.take(frame(true, CONTINUATION, b"de")),
            Err(WsError::TooLarge(5))
        );
    }

    #[test]
    fn close_frames_are_read_and_checked() {
        let mut a = Assembler::new(100);
        assert_eq!(
            a.take(frame(true, CLOSE, b"")).unwrap(),
            Event::Close(None, String::new())
        );
        let mut p = 1001u16.to_be_bytes().to_vec();
        p.extend_from_slice(b"bye");
        assert_eq!(
            a.take(frame(true, CLOSE, &p)).unwrap(),
            Event::Close(Some(1001), "bye".into())
        );
        for bad in [
            &[3u8][..],
            &[0x03, 0xed],
            &[0x03, 0xe8, 0xff],
            &[0x13, 0x88],
        ] {
            assert!(a.take(frame(true, CLOSE, bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            a.take(frame(true, PONG, b"")).unwrap(),
            Event::Pong(Vec::new())
        );
    }
}
