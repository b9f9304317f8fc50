//! Bytes received and not yet taken: what the HTTP/2 and WebSocket frame readers read frames
//! from. What was taken goes before more comes, so the buffer holds at most the frame being
//! read and what came after it, however long the stream.

#[allow(unused_imports)]
use crate::prelude::*;

#[derive(Default)]
pub struct Inbox {
    buf: Vec<u8>,
    /// Bytes of `buf` already taken.
    used: usize,
}

impl Inbox {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.used > 0 {
            self.buf.drain(..self.used);
            self.used = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// What is there and not yet taken.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.used..]
    }

    /// Mark the first `n` pending bytes taken.
    pub fn take(&mut self, n: usize) {
        self.used = (self.used + n).min(self.buf.len());
    }
}
