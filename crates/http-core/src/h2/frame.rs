//! HTTP/2 frames (RFC 9113 section 4 and 6): the nine-byte header, and a reader that takes
//! whole frames out of the bytes received.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::inbox::Inbox;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// What a client sends first (section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// SETTINGS identifiers (section 6.5.2).
pub const HEADER_TABLE_SIZE: u16 = 0x1;
pub const ENABLE_PUSH: u16 = 0x2;
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const MAX_FRAME_SIZE: u16 = 0x5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// Append a frame.
pub fn push(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// A SETTINGS payload of `(identifier, value)` pairs.
pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::with_capacity(pairs.len() * 6);
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    p
}

/// A SETTINGS payload read (a length not a multiple of 6 is a FRAME_SIZE_ERROR).
pub fn read_settings(p: &[u8]) -> Option<Vec<(u16, u32)>> {
    p.len().is_multiple_of(6).then(|| {
        p.chunks(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect()
    })
}

/// A 32-bit value at `at` with its reserved top bit cleared.
pub fn u31(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
}

/// The payload less its padding (and, for HEADERS, its priority fields), per the flags.
pub fn unpadded(f: &Frame) -> Option<&[u8]> {
    let mut p = &f.payload[..];
    if f.flags & PADDED != 0 {
        let pad = usize::from(*p.first()?);
        p = p.get(1..p.len().checked_sub(pad)?)?;
    }
    if f.kind == HEADERS && f.flags & PRIORITY_FLAG != 0 {
        p = p.get(5..)?;
    }
    Some(p)
}

/// Bytes received, taken apart into frames.
pub struct Reader {
    inbox: Inbox,
    /// The largest payload accepted (our SETTINGS_MAX_FRAME_SIZE).
    pub max_payload: usize,
}

impl Reader {
    pub fn new(max_payload: usize) -> Reader {
        Reader {
            inbox: Inbox::default(),
            max_payload,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.inbox.push(bytes);
    }

    /// The next whole frame; `Err` for one over the size limit (FRAME_SIZE_ERROR).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, usize> {
        let b = self.inbox.pending();
        if b.len() < 9 {
            return Ok(None);
        }
        let len = (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
        if len > self.max_payload {
            return Err(len);
        }
        if b.len() < 9 + len {
            return Ok(None);
        }
        let f = Frame {
            kind: b[3],
            flags: b[4],
            stream: u31(b, 5).unwrap_or(0),
            payload: b[9..9 + len].to_vec(),
        };
        self.inbox.take(9 + len);
        Ok(Some(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_any_pieces() {
        let mut wire = Vec::new();
        push(&mut wire, HEADERS, END_HEADERS, 1, b"abc");
        push(&mut wire, DATA, END_STREAM | PADDED, 1, &[2, b'x', 0, 0]);
        for step in 1..wire.len() {
            let mut r = Reader::new(16384);
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                r.push(piece);
                while let Some(f) = r.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got.len(), 2);
            assert_eq!(unpadded(&got[1]), Some(&b"x"[..]));
        }
        let mut r = Reader::new(2);
        r.push(&wire);
        assert_eq!(r.next_frame(), Err(3));
        assert_eq!(
            read_settings(&settings(&[(ENABLE_PUSH, 0)])),
            Some(vec![(ENABLE_PUSH, 0)])
        );
        assert_eq!(read_settings(&[0; 5]), None);
        let bad_pad = Frame {
            kind: DATA,
            flags: PADDED,
            stream: 1,
            payload: vec![5, 1],
        };
        assert_eq!(unpadded(&bad_pad), None);
    }
}
