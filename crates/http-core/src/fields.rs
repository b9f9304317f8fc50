//! A received message's fields (a response's headers or trailers): one text, each field a span
//! of it. A response head is parsed on every request; a list of string pairs took two
//! allocations and two copies a field, and as many frees. Here a head is copied once and its
//! plain fields (ASCII, no fold: nearly all) are read where they lie in the copy; only a value
//! that has to be rewritten (a fold, bytes that are not UTF-8) is added at the end.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

#[derive(Clone, Default)]
pub struct Fields {
    /// Invariant: every span's bytes are valid UTF-8 (what lies between spans need not be).
    text: Vec<u8>,
    spans: Vec<Span>,
}

#[derive(Clone, Copy)]
struct Span {
    name: usize,
    name_len: usize,
    value: usize,
    value_len: usize,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// The fields of a message head as received: `head` copied once, and each field (its
    /// name and value slices of `head`, as a parser gives them) read where it lies in the copy
    /// when its value is plain (ASCII, no line feed); any other value is given to `rewrite`
    /// and its text added, as is anything not in `head`.
    pub(crate) fn of_head<'h>(
        head: &'h [u8],
        fields: impl ExactSizeIterator<Item = (&'h str, &'h [u8])>,
        rewrite: impl Fn(&[u8]) -> String,
    ) -> Self {
        let base = head.as_ptr() as usize;
        let at = |part: &[u8]| {
            let start = (part.as_ptr() as usize).checked_sub(base)?;
            let end = start.checked_add(part.len())?;
            (end <= head.len()).then_some(start..end)
        };
        let mut out = Fields {
            text: head.to_vec(),
            spans: Vec::with_capacity(fields.len()),
        };
        for (name, value) in fields {
            // The copy holds what `head` does, so a name found there is UTF-8 there too.
            let name = at(name.as_bytes()).unwrap_or_else(|| out.append(name));
            let value = match at(value) {
                Some(r) if plain_ascii(value) => r,
                _ => out.append(&rewrite(value)),
            };
            out.spans.push(Span::of(name, value));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Add a field, copying it.
    pub fn push(&mut self, name: &str, value: &str) {
        let at = self.append(name);
        let value = self.append(value);
        self.spans.push(Span::of(at, value));
    }

    fn append(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.extend_from_slice(s.as_bytes());
        start..self.text.len()
    }

    #[inline]
    fn str_at(&self, at: usize, len: usize) -> &str {
        // SAFETY: spans only cover bytes that came from a `&str` or were checked plain ASCII
        // (the invariant of `text`), and the text is never changed under a span.
        unsafe { core::str::from_utf8_unchecked(&self.text[at..at + len]) }
    }

    /// The fields in order, as (name, value).
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|s| {
            (
                self.str_at(s.name, s.name_len),
                self.str_at(s.value, s.value_len),
            )
        })
    }

    /// The value of the first field named `name` (in any case).
    #[inline]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    /// The values of every field named `name` (in any case), in order. Names are compared by
    /// length first: lookups run over every field of a head several times a request.
    #[inline]
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let want = name.as_bytes();
        self.spans
            .iter()
            .filter(move |s| {
                s.name_len == want.len()
                    && self.text[s.name..s.name + s.name_len].eq_ignore_ascii_case(want)
            })
            .map(|s| self.str_at(s.value, s.value_len))
    }
}

impl Span {
    fn of(name: Range<usize>, value: Range<usize>) -> Self {
        Span {
            name: name.start,
            name_len: name.len(),
            value: value.start,
            value_len: value.len(),
        }
    }
}

/// Whether `v` is all ASCII without a line feed (no obs-fold): most header values are. Eight
/// bytes a step: a byte with its top bit set is not ASCII, and `x ^ LF` has a zero byte where
/// `x` holds a line feed (the classic "has a zero byte" test).
pub(crate) fn plain_ascii(v: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = v.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b);
        let lf = x ^ (ONES * u64::from(b'\n'));
        if (x | (lf.wrapping_sub(ONES) & !lf)) & HIGH != 0 {
            return false;
        }
    }
    words
        .remainder()
        .iter()
        .all(|&b| b.is_ascii() && b != b'\n')
}

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut fields = Fields::new();
        for (k, v) in pairs {
            fields.push(k.as_ref(), v.as_ref());
        }
        fields
    }
}

impl core::fmt::Debug for Fields {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{Fields, plain_ascii};
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    #[test]
    fn fields_keep_their_order_text_and_empty_values() {
        let mut f = Fields::new();
        f.push("Content-Length", "0");
        f.push("X-Empty", "");
        f.push("x-é", "café");
        f.push("content-length", "1");
        assert_eq!(f.len(), 4);
        let all: Vec<_> = f.iter().collect();
        assert_eq!(
            all,
            [
                ("Content-Length", "0"),
                ("X-Empty", ""),
                ("x-é", "café"),
                ("content-length", "1")
            ]
        );
        assert_eq!(f.get("CONTENT-LENGTH"), Some("0"), "the first one");
        assert_eq!(f.get("x-empty"), Some(""));
        assert_eq!(f.get("x-missing"), None);
        assert_eq!(f.all("content-length").collect::<Vec<_>>(), ["0", "1"]);
        assert_eq!(f.iter().nth(2), Some(("x-é", "café")));
        let again: Fields = f.iter().collect();
        assert_eq!(again, f);
        assert!(Fields::new().is_empty());
    }

    #[test]
    fn a_head_is_read_in_place_and_what_is_not_plain_rewritten() {
        let head = b"A: 1\r\nB: caf\xc3\xa9\r\nC: x\n y\r\nD: \r\n".to_vec();
        let part = |s: usize, e: usize| &head[s..e];
        let name = |s: usize, e: usize| core::str::from_utf8(&head[s..e]).unwrap();
        let outside = String::from("E");
        let fields = [
            (name(0, 1), part(3, 4)),
            (name(6, 7), part(9, 14)),
            (name(16, 17), part(19, 23)),
            (name(25, 26), part(28, 28)),
            (outside.as_str(), &b"far"[..]),
        ];
        let rewrite = |v: &[u8]| format!("<{}>", String::from_utf8_lossy(v));
        let f = Fields::of_head(&head, fields.into_iter(), rewrite);
        let all: Vec<_> = f.iter().collect();
        assert_eq!(
            all,
            [
                ("A", "1"),
                ("B", "<café>"),
                ("C", "<x\n y>"),
                ("D", ""),
                ("E", "<far>")
            ]
        );
        let mut f = f;
        f.push("F", "6");
        assert_eq!(f.get("f"), Some("6"));
        assert_eq!(f.get("a"), Some("1"), "the spans survive the text's growth");
    }

    /// The fast test for plain values, against the plain one, at every length and position.
    #[test]
    fn plain_ascii_finds_every_line_feed_and_high_byte() {
        for n in 0..24usize {
            let base: Vec<u8> = (0..n).map(|i| b' ' + (i as u8 * 7) % 90).collect();
            assert!(plain_ascii(&base));
            for at in 0..n {
                for b in [b'\n', 0x80, 0xff, 0xc3, b'\r', b'\t', 0x7f, 0x0b, 0x09] {
                    let mut v = base.clone();
                    v[at] = b;
                    let want = v.iter().all(|&c| c.is_ascii() && c != b'\n');
                    assert_eq!(plain_ascii(&v), want, "{v:?}");
                }
            }
        }
    }
}
