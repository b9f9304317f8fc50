//! Content codings (RFC 9110 §8.4.1): a `gzip`, `x-gzip` or `deflate` body decoded, as curl's
//! `--compressed` and k6 do. The output is bounded by the request's body limit, so a small body
//! that inflates past it is `too-large`.
//!
//! The inflater is written here rather than taken from miniz_oxide: that crate's measured 16 KB
//! in the artifact, with 3 KB of its size budget left. This is Mark Adler's `puff` (zlib's
//! contrib): canonical Huffman codes decoded a bit at a time, small rather than fast, and
//! checked against flate2 (zlib's algorithm) by the tests here.

use crate::HttpError;
#[allow(unused_imports)]
use crate::prelude::*;

/// What a request with `decompress` asks for (the codings decoded here).
pub const ACCEPT: &str = "gzip, deflate";

/// Why a body did not decode: an index into `WHY`; `FULL` is the limit.
type Bad = u8;
const FULL: Bad = 0;
const TRUNCATED: Bad = 1;
const WHY: [&str; 12] = [
    "",
    "truncated",
    "bad gzip header",
    "CRC-32 or size does not match",
    "bytes after the end",
    "Adler-32 does not match",
    "a preset dictionary",
    "block type 3",
    "stored block length",
    "bad Huffman code",
    "bad length or distance",
    "not a coding this client decodes (gzip, deflate)",
];

/// Decode `body` by its `Content-Encoding` header value (codings in the order applied, so
/// undone last to first). `identity` is nothing; an unknown coding is an error, as curl's.
#[inline(never)]
pub fn decode(coding: &str, mut body: Vec<u8>, limit: u64) -> Result<Vec<u8>, HttpError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    for c in coding.rsplit(',') {
        let c = crate::codec::trim_ows(c);
        let is = |name: &str| c.eq_ignore_ascii_case(name);
        let r = if is("gzip") || is("x-gzip") {
            gunzip(&body, limit)
        } else if is("deflate") {
            // A zlib stream (RFC 1950), as the RFC says; some servers send raw deflate, which
            // curl and browsers accept too: told apart by the zlib header's check bits.
            let zlib = body.len() > 1
                && body[0] & 0x8f == 8
                && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
            let mut out = Vec::new();
            inflate(&body, zlib, &mut out, limit)
                .and_then(|used| trailing(&body[used..]))
                .map(|()| out)
        } else if is("identity") || c.is_empty() {
            Ok(body)
        } else {
            Err(11)
        };
        body = r.map_err(|why| {
            if why == FULL {
                HttpError::TooLarge(format!("decoded response body over {limit} bytes"))
            } else {
                HttpError::Protocol(format!(
                    "{} body: {}",
                    net_text::Quoted(c),
                    WHY[usize::from(why)]
                ))
            }
        })?;
    }
    Ok(body)
}

fn trailing(rest: &[u8]) -> Result<(), Bad> {
    if rest.iter().all(|&b| b == 0) {
        Ok(())
    } else {
        Err(4)
    }
}

/// A gzip file (RFC 1952): one member or several, each checked by its CRC-32 and size.
fn gunzip(mut input: &[u8], limit: usize) -> Result<Vec<u8>, Bad> {
    let mut out = Vec::new();
    let mut table = [0u32; 256];
    for (i, e) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *e = c;
    }
    loop {
        input = input.get(member_header(input).ok_or(2u8)?..).ok_or(2u8)?;
        let start = out.len();
        input = &input[inflate(input, false, &mut out, limit)?..];
        let t = input.get(..8).ok_or(TRUNCATED)?;
        let crc = !out[start..].iter().fold(!0u32, |c, &b| {
            table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
        });
        let want = (out.len() - start) as u32;
        if t[..4] != crc.to_le_bytes() || t[4..] != want.to_le_bytes() {
            return Err(3);
        }
        input = &input[8..];
        if !input.starts_with(&[0x1f, 0x8b]) {
            return trailing(input).map(|()| out);
        }
    }
}

/// The length of a gzip member's header, if it is one (FEXTRA, FNAME, FCOMMENT, FHCRC).
fn member_header(b: &[u8]) -> Option<usize> {
    if b.len() < 10 || b[..3] != [0x1f, 0x8b, 8] || b[3] & 0xe0 != 0 {
        return None;
    }
    let flags = b[3];
    let mut at = 10;
    if flags & 4 != 0 {
        let n = b.get(at..at + 2)?;
        at += 2 + usize::from(n[0]) + (usize::from(n[1]) << 8);
    }
    for flag in [8, 16] {
        if flags & flag != 0 {
            at += b.get(at..)?.iter().position(|&c| c == 0)? + 1;
        }
    }
    if flags & 2 != 0 {
        at += 2;
    }
    Some(at)
}

/// Inflate the deflate stream (RFC 1951) at the start of `input` (zlib-wrapped, RFC 1950, its
/// Adler-32 checked, when `zlib`) onto `out`, which may not grow past `limit`; the input bytes
/// the stream took.
fn inflate(input: &[u8], zlib: bool, out: &mut Vec<u8>, limit: usize) -> Result<usize, Bad> {
    let mut s = Bits {
        input,
        pos: 0,
        buf: 0,
        cnt: 0,
    };
    if zlib {
        if input[1] & 0x20 != 0 {
            return Err(6);
        }
        s.pos = 2;
    }
    let start = out.len();
    let mut w = Window { out, start, limit };
    loop {
        let last = s.bits(1)?;
        match s.bits(2)? {
            0 => s.stored(&mut w)?,
            1 => {
                let mut lengths = [8u8; 288];
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                codes(
                    &mut s,
                    &mut w,
                    &Huffman::new(&lengths)?.0,
                    &Huffman::new(&[5; 30])?.0,
                )?
            }
            2 => dynamic(&mut s, &mut w)?,
            _ => return Err(7),
        }
        if last == 1 {
            break;
        }
    }
    if zlib {
        let (mut a, mut b) = (1u32, 0u32);
        for chunk in out[start..].chunks(5552) {
            for &x in chunk {
                a += u32::from(x);
                b += a;
            }
            a %= 65521;
            b %= 65521;
        }
        if s.input.get(s.pos..s.pos + 4) != Some(&(b << 16 | a).to_be_bytes()[..]) {
            return Err(5);
        }
        s.pos += 4;
    }
    Ok(s.pos)
}

/// The input, read a bit at a time from the least significant end of each byte.
struct Bits<'a> {
    input: &'a [u8],
    pos: usize,
    buf: u32,
    cnt: u32,
}

impl Bits<'_> {
    fn bits(&mut self, n: u32) -> Result<u32, Bad> {
        while self.cnt < n {
            let b = *self.input.get(self.pos).ok_or(TRUNCATED)?;
            self.pos += 1;
            self.buf |= u32::from(b) << self.cnt;
            self.cnt += 8;
        }
        let v = self.buf & ((1u32 << n) - 1);
        self.buf >>= n;
        self.cnt -= n;
        Ok(v)
    }

    fn stored(&mut self, w: &mut Window) -> Result<(), Bad> {
        self.buf = 0;
        self.cnt = 0;
        let h = self.input.get(self.pos..self.pos + 4).ok_or(TRUNCATED)?;
        let len = u16::from_le_bytes([h[0], h[1]]);
        if len != !u16::from_le_bytes([h[2], h[3]]) {
            return Err(8);
        }
        self.pos += 4;
        let data = self
            .input
            .get(self.pos..self.pos + usize::from(len))
            .ok_or(TRUNCATED)?;
        self.pos += data.len();
        w.room(data.len())?;
        w.out.extend_from_slice(data);
        Ok(())
    }
}

/// The output, bounded, and the stream's part of it (what distances may reach back into).
struct Window<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    limit: usize,
}

impl Window<'_> {
    fn room(&self, n: usize) -> Result<(), Bad> {
        if self.out.len() + n > self.limit {
            Err(FULL)
        } else {
            Ok(())
        }
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    count: [u16; 16],
    symbol: [u16; 288],
}

impl Huffman {
    /// From each symbol's code length; over-subscribed is an error, and how many codes are
    /// left unused (an incomplete code) is returned.
    fn new(lengths: &[u8]) -> Result<(Huffman, i32), Bad> {
        let mut h = Huffman {
            count: [0; 16],
            symbol: [0; 288],
        };
        for &l in lengths {
            h.count[usize::from(l)] += 1;
        }
        let mut left = 1i32;
        let mut offs = [0u16; 16];
        for len in 1..16 {
            left = (left << 1) - i32::from(h.count[len]);
            if left < 0 {
                return Err(9);
            }
            if len < 15 {
                offs[len + 1] = offs[len] + h.count[len];
            }
        }
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let o = &mut offs[usize::from(l)];
                h.symbol[usize::from(*o)] = sym as u16;
                *o += 1;
            }
        }
        Ok((h, left))
    }

    fn decode(&self, s: &mut Bits) -> Result<usize, Bad> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= s.bits(1)? as i32;
            let count = i32::from(self.count[len]);
            if code - count < first {
                return Ok(usize::from(self.symbol[(index + code - first) as usize]));
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(9)
    }
}

/// Base values and extra bits of the length (257..285) and distance (0..29) symbols.
const LBASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEXT: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DBASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];

/// A block's literals and matches, up to its end code.
fn codes(s: &mut Bits, w: &mut Window, lencode: &Huffman, distcode: &Huffman) -> Result<(), Bad> {
    loop {
        let sym = lencode.decode(s)?;
        if sym < 256 {
            w.room(1)?;
            w.out.push(sym as u8);
        } else if sym == 256 {
            return Ok(());
        } else {
            let sym = sym - 257;
            if sym >= 29 {
                return Err(10);
            }
            let len = usize::from(LBASE[sym]) + s.bits(u32::from(LEXT[sym]))? as usize;
            let d = distcode.decode(s)?;
            if d >= 30 {
                return Err(10);
            }
            // Distance codes 4.. carry (code - 2) / 2 extra bits.
            let dist = usize::from(DBASE[d]) + s.bits((d.max(2) as u32 - 2) / 2)? as usize;
            if dist > w.out.len() - w.start {
                return Err(10);
            }
            w.room(len)?;
            let from = w.out.len() - dist;
            for i in from..from + len {
                let b = w.out[i];
                w.out.push(b);
            }
        }
    }
}

fn dynamic(s: &mut Bits, w: &mut Window) -> Result<(), Bad> {
    const ORDER: [u8; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let nlen = s.bits(5)? as usize + 257;
    let ndist = s.bits(5)? as usize + 1;
    let ncode = s.bits(4)? as usize + 4;
    if nlen > 286 || ndist > 30 {
        return Err(9);
    }
    let mut lengths = [0u8; 320];
    for &i in &ORDER[..ncode] {
        lengths[usize::from(i)] = s.bits(3)? as u8;
    }
    let (lencode, left) = Huffman::new(&lengths[..19])?;
    if left != 0 {
        return Err(9);
    }
    let mut index = 0;
    while index < nlen + ndist {
        let sym = lencode.decode(s)?;
        let (len, n) = match sym {
            0..16 => (sym as u8, 1),
            16 if index == 0 => return Err(9),
            16 => (lengths[index - 1], 3 + s.bits(2)?),
            17 => (0, 3 + s.bits(3)?),
            _ => (0, 11 + s.bits(7)?),
        };
        let n = n as usize;
        if index + n > nlen + ndist {
            return Err(9);
        }
        lengths[index..index + n].fill(len);
        index += n;
    }
    let (lencode, left) = Huffman::new(&lengths[..nlen])?;
    let (distcode, dleft) = Huffman::new(&lengths[nlen..nlen + ndist])?;
    // An end-of-block code, and codes complete unless there is only one code of the kind.
    if lengths[256] == 0
        || left > 0 && nlen - usize::from(lencode.count[0]) != 1
        || dleft > 0 && ndist - usize::from(distcode.count[0]) != 1
    {
        return Err(9);
    }
    codes(s, w, &lencode, &distcode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"abcdefghij\n"[i % 11] ^ (i / 997) as u8)
            .collect()
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decode() {
        let data = text(200_000);
        assert_eq!(decode("gzip", gzip(&data), 1 << 20).unwrap(), data);
        assert_eq!(decode("X-Gzip", gzip(&data), 1 << 20).unwrap(), data);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&data).unwrap();
        assert_eq!(
            decode("deflate", z.finish().unwrap(), 1 << 20).unwrap(),
            data
        );
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        d.write_all(&data).unwrap();
        assert_eq!(
            decode("deflate", d.finish().unwrap(), 1 << 20).unwrap(),
            data
        );
        // Codings listed in the order applied: undone last to first.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&gzip(&data)).unwrap();
        let both = z.finish().unwrap();
        assert_eq!(
            decode("gzip, identity, deflate", both, 1 << 20).unwrap(),
            data
        );
        assert_eq!(decode("identity", data.clone(), 10).unwrap(), data);
        assert_eq!(decode("gzip", gzip(b""), 0).unwrap(), b"");
    }

    #[test]
    fn gzip_header_fields_and_members() {
        let data = text(5000);
        let mut gz = flate2::GzBuilder::new()
            .filename("f.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let mut two = gz.finish().unwrap();
        two.extend(gzip(b"second"));
        two.extend([0, 0, 0]);
        let mut want = data.clone();
        want.extend(b"second");
        assert_eq!(decode("gzip", two, 1 << 20).unwrap(), want);
    }

    #[test]
    fn bombs_are_too_large_and_damage_is_protocol() {
        let zeros = gzip(&vec![0; 10 << 20]);
        assert!(zeros.len() < 20_000);
        assert!(matches!(
            decode("gzip", zeros.clone(), 1 << 20),
            Err(HttpError::TooLarge(_))
        ));
        assert_eq!(decode("gzip", zeros, 10 << 20).unwrap().len(), 10 << 20);
        let good = gzip(&text(10_000));
        let mut crc = good.clone();
        let n = crc.len();
        crc[n - 6] ^= 1;
        let mut garbage = good.clone();
        garbage.extend(b"junk");
        for (bad, why) in [
            (good[..good.len() - 3].to_vec(), "truncated"),
            (good[..good.len() / 2].to_vec(), "truncated"),
            (crc, "CRC-32"),
            (garbage, "bytes after"),
            (b"\x1f\x8b\x09\0\0\0\0\0\0\0".to_vec(), "bad gzip header"),
            (b"plain text".to_vec(), "bad gzip header"),
        ] {
            match decode("gzip", bad, 1 << 20) {
                Err(HttpError::Protocol(m)) => assert!(m.contains(why), "{m}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        match decode("br", b"x".to_vec(), 100) {
            Err(HttpError::Protocol(m)) => assert!(m.contains("\"br\" body: not a coding"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        /// Whatever flate2 (zlib's algorithm) makes, at any level, decodes to what went in.
        #[test]
        fn decodes_what_flate2_encodes(
            words in proptest::collection::vec(0u8..40, 0..3000),
            level in 0u32..10,
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut data: Vec<u8> = words.iter().flat_map(|&w| {
                core::iter::repeat_n(b'a' + w % 26, usize::from(w / 4))
            }).collect();
            data.extend(&noise);
            let level = flate2::Compression::new(level);
            let mut g = flate2::write::GzEncoder::new(Vec::new(), level);
            g.write_all(&data).unwrap();
            proptest::prop_assert_eq!(&decode("gzip", g.finish().unwrap(), 1 << 20).unwrap(), &data);
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), level);
            z.write_all(&data).unwrap();
            proptest::prop_assert_eq!(&decode("deflate", z.finish().unwrap(), 1 << 20).unwrap(), &data);
            let mut d = flate2::write::DeflateEncoder::new(Vec::new(), level);
            d.write_all(&data).unwrap();
            proptest::prop_assert_eq!(&decode("deflate", d.finish().unwrap(), 1 << 20).unwrap(), &data);
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(b in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            for c in ["gzip", "deflate"] {
                if let Ok(out) = decode(c, b.clone(), 4096) {
                    proptest::prop_assert!(out.len() <= 4096);
                }
            }
            let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0];
            g.extend(&b);
            let _ = decode("gzip", g, 4096);
        }
    }
}
