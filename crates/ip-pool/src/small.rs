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
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
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

impl core::fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.as_str().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::SmallStr;

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
