//! WebSocket frames (RFC 6455 section 5): encoding a client's (always masked) and decoding a
//! server's (never masked), with the section 5 rules a client must enforce.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::inbox::Inbox;

use super::WsError;

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame as read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Append a client frame: FIN as given, no extension bits, masked with `mask` (section 5.3).
pub fn encode(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XOR `data` with the masking key, byte i with key byte i mod 4 (section 5.3).
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Bytes from the server, taken apart into frames as they come.
pub struct Decoder {
    inbox: Inbox,
    /// The largest payload a frame may carry.
    pub max_payload: u64,
}

impl Decoder {
    pub fn new(max_payload: u64) -> Decoder {
        Decoder {
            inbox: Inbox::default(),
            max_payload,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.inbox.push(bytes);
    }

    /// Bytes received and not yet taken in a frame.
    pub fn pending(&self) -> usize {
        self.inbox.pending().len()
    }

    /// The next whole frame, `None` until one is there. A frame that breaks section 5 is an
    /// error (the connection is then to be failed).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WsError> {
        let b = self.inbox.pending();
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, opcode) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
        if rsv != 0 {
            return Err(WsError::Protocol(
                "a frame with RSV bits set (no extension was agreed)".into(),
            ));
        }
        if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
            return Err(WsError::Protocol(format!("unknown opcode {opcode:#x}")));
        }
        if b[1] & 0x80 != 0 {
            return Err(WsError::Protocol("a masked frame from the server".into()));
        }
        let (len, head) = match b[1] & 0x7F {
            126 if b.len() < 4 => return Ok(None),
            126 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() < 10 => return Ok(None),
            127 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            n => (u64::from(n), 2),
        };
        check_lengths(opcode, fin, len, head, self.max_payload)?;
        if ((b.len() - head) as u64) < len {
            return Ok(None);
        }
        let payload = b[head..head + len as usize].to_vec();
        self.inbox.take(head + len as usize);
        Ok(Some(Frame {
            fin,
            opcode,
            payload,
        }))
    }
}

/// Section 5.2's length rules (minimal encoding, the top bit of a 64-bit length clear) and
/// 5.5's for control frames (not fragmented, at most 125 bytes), then the payload limit.
fn check_lengths(opcode: u8, fin: bool, len: u64, head: usize, max: u64) -> Result<(), WsError> {
    let minimal = match head {
        4 => len >= 126,
        10 => len > 0xFFFF && len >> 63 == 0,
        _ => true,
    };
    if !minimal {
        return Err(WsError::Protocol(format!(
            "a payload length of {len} not in its shortest form"
        )));
    }
    if opcode >= CLOSE && (!fin || len > 125) {
        return Err(WsError::Protocol(
            "a control frame fragmented or over 125 bytes".into(),
        ));
    }
    if len > max {
        return Err(WsError::TooLarge(len));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, fin, opcode, payload, [0; 4]);
        // Unmasked as a server sends: the mask bit cleared, the key taken out.
        out[1] &= 0x7F;
        let key_at = out.len() - payload.len() - 4;
        out.drain(key_at..key_at + 4);
        out
    }

    #[test]
    fn client_frames_are_masked_with_rfc_example() {
        // RFC 6455 section 5.7: a masked "Hello".
        let mut out = Vec::new();
        encode(&mut out, true, TEXT, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(
            out,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }

    #[test]
    fn lengths_take_their_three_forms() {
        for len in [0usize, 125, 126, 65535, 65536, 70000] {
            let payload = vec![7u8; len];
            let mut d = Decoder::new(1 << 20);
            let wire = server_frame(true, BINARY, &payload);
            // Byte by byte: nothing until the last one.
            for b in &wire[..wire.len() - 1] {
                d.push(&[*b]);
                assert_eq!(d.next_frame().unwrap(), None);
            }
            d.push(&wire[wire.len() - 1..]);
            let f = d.next_frame().unwrap().unwrap();
            assert_eq!(f.payload.len(), len);
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn section_five_is_enforced() {
        let bad: [&[u8]; 6] = [
            &[0xC1, 0x00],             // RSV1
            &[0x83, 0x00],             // opcode 3
            &[0x81, 0x80, 0, 0, 0, 0], // masked
            &[0x09, 0x00],             // fragmented ping
            &[0x82, 126, 0, 5],        // 5 in the 16-bit form
            &[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ];
        for b in bad {
            let mut d = Decoder::new(1 << 20);
            d.push(b);
            assert!(matches!(d.next_frame(), Err(WsError::Protocol(_))), "{b:?}");
        }
        let mut d = Decoder::new(10);
        d.push(&server_frame(true, BINARY, &[0; 11]));
        assert_eq!(d.next_frame(), Err(WsError::TooLarge(11)));
    }
}
