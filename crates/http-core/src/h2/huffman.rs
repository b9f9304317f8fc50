//! HPACK's Huffman code (RFC 7541 appendix B), decoded. The code is canonical (codes of a
//! length are consecutive, in symbol order, after the shorter ones), so the table is its
//! lengths alone: 257 bytes, from which the decoder's tables are made at compile time.

#[allow(unused_imports)]
use crate::prelude::*;

/// Each symbol's code length in bits, 0..=255 then EOS (256).
const LENS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS: u16 = 256;

/// Symbols in code order; per length, the first code and where its symbols start.
struct Tables {
    symbols: [u16; 257],
    first_code: [u32; 31],
    first_index: [u16; 31],
    count: [u16; 31],
}

const fn tables() -> Tables {
    let mut t = Tables {
        symbols: [0; 257],
        first_code: [0; 31],
        first_index: [0; 31],
        count: [0; 31],
    };
    let mut s = 0;
    while s < 257 {
        t.count[LENS[s] as usize] += 1;
        s += 1;
    }
    let (mut code, mut index, mut len) = (0u32, 0u16, 1);
    while len < 31 {
        t.first_code[len] = code;
        t.first_index[len] = index;
        let mut s = 0;
        while s < 257 {
            if LENS[s] as usize == len {
                t.symbols[index as usize] = s as u16;
                index += 1;
            }
            s += 1;
        }
        code = (code + t.count[len] as u32) << 1;
        len += 1;
    }
    t
}

static TABLES: Tables = tables();

/// Decode a Huffman-coded string; `None` for EOS inside it, or padding that is longer than 7
/// bits or not all ones (section 5.2).
pub fn decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let t = &TABLES;
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5);
    let (mut code, mut len) = (0u32, 0usize);
    for byte in bytes {
        for i in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> i) & 1);
            len += 1;
            let n = u32::from(t.count[len]);
            let offset = code.wrapping_sub(t.first_code[len]);
            if n > 0 && code >= t.first_code[len] && offset < n {
                let sym = t.symbols[usize::from(t.first_index[len]) + offset as usize];
                if sym == EOS {
                    return None;
                }
                out.push(sym as u8);
                (code, len) = (0, 0);
            } else if len >= 30 {
                return None;
            }
        }
    }
    (len <= 7 && code == (1 << len) - 1).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::hex;

    #[test]
    fn rfc_7541_examples_decode() {
        // Appendix C.4 and C.6.
        let cases = [
            ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
            ("a8eb 1064 9cbf", "no-cache"),
            ("25a8 49e9 5ba9 7d7f", "custom-key"),
            ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
            ("6402", "302"),
            ("aec3 771a 4b", "private"),
            (
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
                "Mon, 21 Oct 2013 20:13:21 GMT",
            ),
            (
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
                "https://www.example.com",
            ),
            ("9bd9 ab", "gzip"),
            (
                "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            ),
        ];
        for (code, text) in cases {
            assert_eq!(
                decode(&hex(code)).as_deref(),
                Some(text.as_bytes()),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_padding_and_eos_are_refused() {
        // "0" is 00000; padding of zeros is not EOS's prefix.
        assert_eq!(decode(&[0b0000_0000]), None);
        assert_eq!(decode(&[0b0000_0111]).as_deref(), Some(&b"0"[..]));
        // A whole byte of padding (8 ones after a symbol) is too long.
        assert_eq!(decode(&[0b0000_0111, 0xff]), None);
        // EOS itself: 30 ones.
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xfc]), None);
    }
}
