//! HTTP/2's decoders fed arbitrary bytes: HPACK blocks, Huffman strings and frames give a
//! result or an error, never a panic; what the encoder makes always decodes back.

use http_core::h2::{frame, hpack, huffman};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_blocks_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut d = hpack::Decoder::default();
        let _ = d.decode(&bytes);
        let _ = d.decode(&bytes);
        let _ = huffman::decode(&bytes);
        let mut r = frame::Reader::new(16_384);
        r.push(&bytes);
        while let Ok(Some(f)) = r.next_frame() {
            let _ = frame::unpadded(&f);
            let _ = frame::read_settings(&f.payload);
        }
    }

    #[test]
    fn encoded_fields_decode_back(fields in proptest::collection::vec(("[a-z][a-z0-9-]{0,20}", "[ -~]{0,200}"), 0..20)) {
        let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let block = hpack::encode(&refs);
        let back = hpack::Decoder::default().decode(&block).unwrap();
        prop_assert_eq!(back, fields);
    }
}
