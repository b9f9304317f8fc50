//! HPACK (RFC 7541): header blocks decoded with the static and dynamic tables and Huffman
//! strings; encoded without the dynamic table or Huffman (static-table indices where they
//! fit), which every decoder accepts and which keeps nothing per connection.

use alloc::collections::VecDeque;

#[allow(unused_imports)]
use crate::prelude::*;

/// Appendix A.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Why a block could not be decoded: a COMPRESSION_ERROR for the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpackError(pub &'static str);

/// The decoder's state: the dynamic table, newest first.
pub struct Decoder {
    table: VecDeque<(String, String)>,
    size: usize,
    /// The most the encoder may make the table (SETTINGS_HEADER_TABLE_SIZE, ours).
    pub max_size: usize,
    /// The size the encoder last set (at most `max_size`).
    limit: usize,
    /// The most bytes of names and values one block may decode to.
    pub max_list: usize,
}

pub(crate) fn entry_size(name: &str, value: &str) -> usize {
    name.len() + value.len() + 32
}

/// An integer with an `n`-bit prefix (section 5.1) from `b[*at..]`.
fn integer(b: &[u8], at: &mut usize, n: u8) -> Result<usize, HpackError> {
    let short = HpackError("a block ends inside an integer");
    let mask = (1u16 << n) as usize - 1;
    let mut v = usize::from(*b.get(*at).ok_or(short.clone())?) & mask;
    *at += 1;
    if v < mask {
        return Ok(v);
    }
    let mut shift = 0u32;
    loop {
        let byte = *b.get(*at).ok_or(short.clone())?;
        *at += 1;
        if shift > 28 {
            return Err(HpackError("an integer too large"));
        }
        v += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
}

/// A string literal (section 5.2), Huffman-coded or not.
fn string(b: &[u8], at: &mut usize) -> Result<String, HpackError> {
    let huffman = b.get(*at).is_some_and(|x| x & 0x80 != 0);
    let len = integer(b, at, 7)?;
    let end = at
        .checked_add(len)
        .filter(|e| *e <= b.len())
        .ok_or(HpackError("a string past the block's end"))?;
    let raw = &b[*at..end];
    *at = end;
    let bytes = match huffman {
        true => super::huffman::decode(raw).ok_or(HpackError("a bad Huffman string"))?,
        false => raw.to_vec(),
    };
    String::from_utf8(bytes).map_err(|_| HpackError("a header that is not UTF-8"))
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: 4096,
            limit: 4096,
            max_list: 256 * 1024,
        }
    }
}

impl Decoder {
    fn get(&self, index: usize) -> Result<(String, String), HpackError> {
        let found = match index {
            0 => None,
            1..=61 => STATIC
                .get(index - 1)
                .map(|(n, v)| (n.to_string(), v.to_string())),
            _ => self.table.get(index - 62).cloned(),
        };
        found.ok_or(HpackError("an index out of the tables"))
    }

    fn insert(&mut self, name: &str, value: &str) {
        let size = entry_size(name, value);
        while self.size + size > self.limit
            && let Some((n, v)) = self.table.pop_back()
        {
            self.size -= entry_size(&n, &v);
        }
        // An entry larger than the table empties it and is not kept (section 4.4).
        if size <= self.limit {
            self.table.push_front((name.into(), value.into()));
            self.size += size;
        }
    }

    fn resize(&mut self, limit: usize) -> Result<(), HpackError> {
        if limit > self.max_size {
            return Err(HpackError("a table size over the one allowed"));
        }
        self.limit = limit;
        while self.size > limit
            && let Some((n, v)) = self.table.pop_back()
        {
            self.size -= entry_size(&n, &v);
        }
        Ok(())
    }

    /// The fields of one whole header block, in order.
    pub fn decode(&mut self, b: &[u8]) -> Result<Vec<(String, String)>, HpackError> {
        let (mut out, mut at, mut total) = (Vec::new(), 0usize, 0usize);
        let mut fields_seen = false;
        while at < b.len() {
            let first = b[at];
            let field = match first {
                x if x & 0x80 != 0 => self.get(integer(b, &mut at, 7)?)?,
                x if x & 0xc0 == 0x40 => {
                    let f = self.literal(b, &mut at, 6)?;
                    self.insert(&f.0, &f.1);
                    f
                }
                x if x & 0xe0 == 0x20 => {
                    // Only before the first field (section 4.2).
                    if fields_seen {
                        return Err(HpackError("a table size update after a field"));
                    }
                    let limit = integer(b, &mut at, 5)?;
                    self.resize(limit)?;
                    continue;
                }
                _ => self.literal(b, &mut at, 4)?,
            };
            fields_seen = true;
            total += entry_size(&field.0, &field.1);
            if total > self.max_list {
                return Err(HpackError("a header list over the limit"));
            }
            out.push(field);
        }
        Ok(out)
    }

    /// A literal field: its name indexed (`n`-bit prefix) or literal, then its value.
    fn literal(&self, b: &[u8], at: &mut usize, n: u8) -> Result<(String, String), HpackError> {
        let index = integer(b, at, n)?;
        let name = match index {
            0 => string(b, at)?,
            i => self.get(i)?.0,
        };
        Ok((name, string(b, at)?))
    }
}

fn push_integer(out: &mut Vec<u8>, first: u8, n: u8, mut v: usize) {
    let mask = (1usize << n) - 1;
    if v < mask {
        out.push(first | v as u8);
        return;
    }
    out.push(first | mask as u8);
    v -= mask;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn push_string(out: &mut Vec<u8>, s: &str) {
    push_integer(out, 0, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// A header block of `fields` (names lower case): a static-table entry where name and value
/// match one, else a literal without indexing, its name indexed where the static table has it.
pub fn encode(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (name, value) in fields {
        if let Some(i) = STATIC
            .iter()
            .position(|(n, v)| n == name && v == value && !v.is_empty())
        {
            push_integer(&mut out, 0x80, 7, i + 1);
            continue;
        }
        match STATIC.iter().position(|(n, _)| n == name) {
            Some(i) => push_integer(&mut out, 0, 4, i + 1),
            None => {
                out.push(0);
                push_string(&mut out, name);
            }
        }
        push_string(&mut out, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::hex;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn rfc_7541_c6_responses_decode_with_eviction() {
        // Appendix C.6: three responses, Huffman, a 256-byte table: entries are evicted.
        let mut d = Decoder::default();
        d.resize(256).unwrap();
        let first = d
            .decode(&hex("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"))
            .unwrap();
        assert_eq!(
            first,
            pairs(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com")
            ])
        );
        let second = d.decode(&hex("4883 640e ff c1 c0 bf")).unwrap();
        assert_eq!(second[0], (":status".to_string(), "307".to_string()));
        assert_eq!(second[3].1, "https://www.example.com");
        let third = d
            .decode(&hex("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"))
            .unwrap();
        assert_eq!(third[0].1, "200");
        assert_eq!(third[2].1, "Mon, 21 Oct 2013 20:13:22 GMT");
        assert_eq!(
            third[4],
            ("content-encoding".to_string(), "gzip".to_string())
        );
        assert_eq!(
            third[5].1,
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
        );
        assert_eq!(d.size, 215);
    }

    #[test]
    fn what_we_encode_decodes_back() {
        let fields = [
            (":method", "GET"),
            (":path", "/a?b"),
            (":scheme", "http"),
            (":authority", "h:1"),
            ("user-agent", "x"),
            ("x-long", &"v".repeat(300)[..]),
        ];
        let block = encode(&fields);
        let back = Decoder::default().decode(&block).unwrap();
        assert_eq!(back, pairs(&fields));
    }

    #[test]
    fn hostile_blocks_are_errors() {
        for bad in [
            &[0x80][..],
            &[0xbf, 0x7f][..],
            &[0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..],
            &[0x40, 0x05, b'a'][..],
            &[0x82, 0x20][..],
            &[0x00, 0x81, 0x00, 0x00][..],
        ] {
            assert!(Decoder::default().decode(bad).is_err(), "{bad:?}");
        }
    }
}
