//! Where a response body's bytes go: kept, or only counted (`discard_body`, k6's
//! `discardResponseBodies`), so a large download takes no memory in the instance.

use alloc::format;
use alloc::vec::Vec;

use alloc::string::String;

use crate::HttpError;

/// A kept body the instance's memory has no room for: why (an error, never an abort).
#[derive(Debug)]
pub struct NoRoom(pub String);

impl From<NoRoom> for HttpError {
    fn from(NoRoom(why): NoRoom) -> Self {
        HttpError::TooLarge(why)
    }
}

/// What a body decoder writes its bytes to.
pub trait BodyOut {
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// Keep (or count) `bytes`.
    fn put(&mut self, bytes: &[u8]) -> Result<(), NoRoom>;
}

impl BodyOut for Vec<u8> {
    fn written(&self) -> u64 {
        self.len() as u64
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), NoRoom> {
        if self.try_reserve(bytes.len()).is_err() {
            return Err(NoRoom(format!(
                "a kept body of {} bytes and more does not fit in the instance's memory \
                 (discard_body counts a body without keeping it)",
                self.len() + bytes.len()
            )));
        }
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// Whether an answer's body is kept: as asked (`keep`), and always when it is to be decoded
/// (the decoded length is the one reported).
pub fn keeps_body(keep: bool, decompress: bool, headers: &crate::Fields) -> bool {
    keep || (decompress && headers.get("content-encoding").is_some())
}

/// A response body as it is read.
#[derive(Debug)]
pub enum BodySink {
    Keep(Vec<u8>),
    /// Bytes counted, none kept.
    Count(u64),
}

impl Default for BodySink {
    fn default() -> Self {
        BodySink::Keep(Vec::new())
    }
}

impl BodySink {
    /// A sink that keeps the body when `keep`, else counts it.
    pub fn new(keep: bool) -> Self {
        if keep {
            BodySink::default()
        } else {
            BodySink::Count(0)
        }
    }

    /// Room for `n` bytes to come, when they are kept.
    pub fn reserve(&mut self, n: usize) {
        if let BodySink::Keep(v) = self {
            v.reserve(n);
        }
    }

    /// Whether the bytes are only counted: then they need not be read at all
    /// ([`crate::Conn::skip`]), only `counted`.
    pub fn counts(&self) -> bool {
        matches!(self, BodySink::Count(_))
    }

    /// `n` bytes more of a counted body, read and dropped elsewhere.
    pub fn counted(&mut self, n: u64) {
        if let BodySink::Count(c) = self {
            *c += n;
        }
    }

    /// The bytes kept (none when counted) and the body's length.
    pub fn finish(self) -> (Vec<u8>, u64) {
        match self {
            BodySink::Keep(v) => {
                let n = v.len() as u64;
                (v, n)
            }
            BodySink::Count(n) => (Vec::new(), n),
        }
    }
}

impl BodyOut for BodySink {
    fn written(&self) -> u64 {
        match self {
            BodySink::Keep(v) => v.len() as u64,
            BodySink::Count(n) => *n,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), NoRoom> {
        match self {
            BodySink::Keep(v) => v.put(bytes),
            BodySink::Count(n) => {
                *n += bytes.len() as u64;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counting_sink_keeps_nothing_and_counts_everything() {
        let mut s = BodySink::new(false);
        s.reserve(1 << 20);
        s.put(b"abc").unwrap();
        s.put(&[0; 5000]).unwrap();
        assert_eq!(s.written(), 5003);
        assert!(s.counts());
        s.counted(7);
        assert_eq!(s.finish(), (Vec::new(), 5010));
        let mut k = BodySink::new(true);
        k.put(b"abc").unwrap();
        // A kept body is not counted from outside: its bytes are what it holds.
        assert!(!k.counts());
        k.counted(7);
        assert_eq!(k.finish(), (b"abc".to_vec(), 3));
    }
}
