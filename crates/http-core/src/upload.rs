//! Request bodies read piece by piece while they are sent (a file the caller streams), never
//! held whole: `Client::execute_with_body`.

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::boxed::Box;

use crate::client::{Client, Failure};
use crate::{HttpError, Net, Prepared, Response};

/// Where a streamed body comes from.
pub trait BodySource {
    /// Up to `max` next bytes; empty at the end.
    fn read(&mut self, max: usize) -> Result<Vec<u8>, String>;
}

/// Pieces of a streamed body go out at most this large (wasmtime's cap per write).
const PIECE: usize = 64 * 1024;

/// The body being streamed by the current action.
pub(crate) struct Upload {
    source: Box<dyn BodySource + Send>,
    /// Whether any of it was read: then it cannot be sent again (no retry, no 307/308).
    pub touched: bool,
}

impl<N: Net> Client<N> {
    /// `execute_prepared` for a request whose body is `request().streamed_len` bytes read from
    /// `source` after the head (and any `body` bytes). The body is read once: an attempt that
    /// fails after reading some of it is not retried, and a 307 or 308 answer is returned
    /// rather than followed (as Go's client does with a body it cannot rewind); 301 to 303
    /// are followed with GET as usual.
    pub fn execute_with_body(
        &mut self,
        prepared: &Prepared,
        source: Box<dyn BodySource + Send>,
    ) -> Result<Response, HttpError> {
        self.upload = Some(Upload {
            source,
            touched: false,
        });
        let r = self.execute_prepared(prepared);
        self.upload = None;
        r
    }

    /// Up to `want` bytes of the current action's streamed body, for HTTP/2's DATA frames.
    pub(crate) fn upload_piece(
        upload: &mut Option<Upload>,
        want: usize,
    ) -> Result<Vec<u8>, String> {
        let Some(up) = upload.as_mut() else {
            return Err("no body to stream".into());
        };
        up.touched = true;
        let piece = up
            .source
            .read(want)
            .map_err(|e| format!("reading the body: {e}"))?;
        match piece.len() {
            0 => Err("the body ended before its length".into()),
            n if n > want => Err("the body source gave more than asked".into()),
            _ => Ok(piece),
        }
    }

    /// Whether the current action's streamed body was read from (so cannot be sent again).
    pub(crate) fn upload_touched(&self) -> bool {
        self.upload.as_ref().is_some_and(|u| u.touched)
    }

    /// The next piece of the streamed body, of at most `left` bytes.
    fn next_piece(&mut self, left: u64, sent: u64) -> Result<Vec<u8>, Failure> {
        let Some(up) = self.upload.as_mut() else {
            return Err(HttpError::Io("no body to stream".into()).into());
        };
        up.touched = true;
        let want = (left.min(PIECE as u64)) as usize;
        let piece = up
            .source
            .read(want)
            .map_err(|e| HttpError::Io(format!("reading the body: {e}")))?;
        if piece.is_empty() {
            let of = sent + left;
            return Err(HttpError::Io(format!("the body ended at {sent} of {of} bytes")).into());
        }
        if piece.len() > want {
            return Err(HttpError::Io("the body source gave more than asked".into()).into());
        }
        Ok(piece)
    }

    /// Send `wire` (the head and any in-memory body), then `streamed` bytes from the upload.
    /// Returns what the peer answered while sending, and whether it answered early (before
    /// the whole request went out: the connection is not reused then).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_request<C: crate::Conn>(
        &mut self,
        conn: &mut C,
        wire: &[u8],
        streamed: u64,
        req: &crate::Request,
        now: u64,
        end: u64,
        idle_check: bool,
        counters: &mut crate::client::Counters,
    ) -> Result<(Vec<u8>, bool), Failure> {
        let last = streamed == 0;
        let (mut got, early) =
            self.send_piece(conn, wire, req, now, end, idle_check, last, counters)?;
        if early || streamed == 0 {
            return Ok((got, early));
        }
        let mut sent = 0u64;
        while sent < streamed {
            if crate::client::has_final_head(&got, req.max_header_bytes)? {
                conn.shutdown_send();
                return Ok((got, true));
            }
            let piece = self.next_piece(streamed - sent, sent)?;
            sent += piece.len() as u64;
            let now = self.net.now_us();
            let last = sent == streamed;
            let (more, early) =
                self.send_piece(conn, &piece, req, now, end, false, last, counters)?;
            got.extend_from_slice(&more);
            if early {
                return Ok((got, true));
            }
        }
        Ok((got, false))
    }
}
