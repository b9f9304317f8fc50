//! Frames from a server, fuzzed: arbitrary bytes never panic the decoder or the assembler, and
//! any message, fragmented anywhere with pings between, comes out whole and unchanged.

use http_core::ws::frame::{self, Decoder};
use http_core::ws::message::{Assembler, Event};
use http_core::ws::{Message, WsError};
use proptest::prelude::*;

/// A server frame: unmasked.
fn server_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8]) {
    let start = out.len();
    frame::encode(out, fin, opcode, payload, [0; 4]);
    out[start + 1] &= 0x7F;
    let key_at = out.len() - payload.len() - 4;
    out.drain(key_at..key_at + 4);
}

/// Everything `wire` gives when fed in pieces of `step` bytes.
fn feed(wire: &[u8], step: usize, max: u64) -> Result<Vec<Event>, WsError> {
    let (mut d, mut a, mut out) = (Decoder::new(max), Assembler::new(max), Vec::new());
    for piece in wire.chunks(step.max(1)) {
        d.push(piece);
        while let Some(f) = d.next_frame()? {
            match a.take(f)? {
                Event::Partial => {}
                e => out.push(e),
            }
        }
    }
    Ok(out)
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_frames_or_errors(bytes in proptest::collection::vec(any::<u8>(), 0..600), step in 1usize..64) {
        let _ = feed(&bytes, step, 256);
    }

    #[test]
    fn fragmented_messages_come_out_whole(
        text in ".{0,300}",
        binary in proptest::collection::vec(any::<u8>(), 0..3000),
        cuts in proptest::collection::vec(1usize..500, 1..6),
        step in 1usize..700,
    ) {
        let mut wire = Vec::new();
        for (opcode, payload) in [(frame::TEXT, text.as_bytes()), (frame::BINARY, &binary[..])] {
            let mut rest = payload;
            let mut first = true;
            for cut in &cuts {
                let n = (*cut).min(rest.len());
                let (piece, tail) = rest.split_at(n);
                server_frame(&mut wire, false, if first { opcode } else { frame::CONTINUATION }, piece);
                server_frame(&mut wire, true, frame::PING, b"between");
                first = false;
                rest = tail;
            }
            server_frame(&mut wire, true, if first { opcode } else { frame::CONTINUATION }, rest);
        }
        let events = feed(&wire, step, 1 << 20).unwrap();
        let messages: Vec<_> = events.into_iter().filter_map(|e| match e {
            Event::Message(m) => Some(m),
            Event::Ping(p) => { assert_eq!(p, b"between"); None }
            other => panic!("{other:?}"),
        }).collect();
        prop_assert_eq!(messages, vec![Message::Text(text.clone()), Message::Binary(binary.clone())]);
    }
}
