//! Resource names are short as a rule: stored inline up to 22 bytes, so binding one costs no
//! allocation; longer names go to the heap.

#[allow(unused_imports)]
use crate::prelude::*;

const INLINE: usize = 22;

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum SmallStr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<str>),
}

impl SmallStr {
    #[inline]
    pub fn new(s: &str) -> Self {
        if s.len() <= INLINE {
            let buf = inline(s.as_bytes());
            SmallStr::Inline {
                len: s.len() as u8,
                buf,
            }
        } else {
            SmallStr::Heap(s.into())
        }
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SmallStr::Inline { len, buf } => &buf[..usize::from(*len)],
            SmallStr::Heap(s) => s.as_bytes(),
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            // SAFETY: `new` copied the bytes of a whole `&str` and nothing writes them since.
            SmallStr::Inline { len, buf } => unsafe {
                core::str::from_utf8_unchecked(&buf[..usize::from(*len)])
            },
            SmallStr::Heap(s) => s,
        }
    }
}

/// `s` (at most `INLINE` bytes) zero-padded, copied in words: a copy of a length only known at
/// run time is otherwise a `memcpy` call.
#[inline]
fn inline(s: &[u8]) -> [u8; INLINE] {
    let mut buf = [0; INLINE];
    let n = s.len();
    let mut put = |at: usize, w: &[u8]| buf[at..at + w.len()].copy_from_slice(w);
    match n {
        0 => {}
        1..4 => {
            put(0, &s[..1]);
            put(n / 2, &s[n / 2..n / 2 + 1]);
            put(n - 1, &s[n - 1..]);
        }
        4..8 => {
            put(0, &word4(s, 0).to_ne_bytes());
            put(n - 4, &word4(s, n - 4).to_ne_bytes());
        }
        8..=16 => {
            put(0, &word8(s, 0).to_ne_bytes());
            put(n - 8, &word8(s, n - 8).to_ne_bytes());
        }
        _ => {
            put(0, &word8(s, 0).to_ne_bytes());
            put(8, &word8(s, 8).to_ne_bytes());
            put(n - 8, &word8(s, n - 8).to_ne_bytes());
        }
    }
    buf
}

/// `a == b` for the short names the hot paths compare (pools, tenants, resources), without a
/// `memcmp` call: lengths first, then two overlapping words (or the bytes, under four).
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[inline]
fn word4(s: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u32::from_ne_bytes(w)
}

#[inline]
fn word8(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(w)
}

impl core::fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.as_str().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::SmallStr;

    #[test]
    fn every_inline_length_keeps_its_bytes_and_zero_padding() {
        let text = "abcdefghijklmnopqrstuvwxyz";
        for n in 0..=text.len() {
            let x = SmallStr::new(&text[..n]);
            assert_eq!(x.as_str(), &text[..n]);
            if let SmallStr::Inline { buf, .. } = &x {
                assert!(buf[n..].iter().all(|&b| b == 0), "length {n}");
            }
        }
    }

    #[test]
    fn same_agrees_with_eq_at_every_length_and_position() {
        let a: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=a.len() {
            let x = &a[..n];
            assert!(super::same(x, x));
            for at in 0..n {
                let mut y = x.to_vec();
                y[at] ^= 1;
                assert!(!super::same(x, &y), "length {n}, byte {at}");
            }
            if n > 0 {
                assert!(!super::same(x, &a[..n - 1]));
            }
        }
    }

    #[test]
    fn inline_and_heap_keep_the_text() {
        for s in [
            "",
            "vm-1",
            "a-name-of-22-bytes-xyz",
            "a name of twenty-three b",
            "żółć-ünïcode",
        ] {
            let x = SmallStr::new(s);
            assert_eq!(x.as_str(), s);
            assert_eq!(matches!(x, SmallStr::Inline { .. }), s.len() <= 22);
        }
    }
}
