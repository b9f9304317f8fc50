//! Requests off the wire (RFC 9112): the head with httparse, its framing checked (a request
//! with both Content-Length and Transfer-Encoding, several differing lengths, or a coding
//! other than a final `chunked` is refused: the request smuggling shapes), then the body by
//! its length or chunked, within the limits.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use http_core::codec::{ChunkedDecoder, lists, trim_ows};

use crate::config::Limits;

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after the answer (RFC 9112 section 9.3): its options
    /// read from every `Connection` field (RFC 9110 section 5.3).
    pub fn keep_alive(&self) -> bool {
        let connection = || {
            self.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
                .map(|(_, v)| v.as_str())
        };
        let has = |option: &str| lists(connection(), option);
        if self.version == 0 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

/// Why a request is refused (its status, and the reason sent as the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub why: &'static str,
}

const fn refuse(status: u16, why: &'static str) -> Refusal {
    Refusal { status, why }
}

/// How a request's body is framed.
#[derive(Debug)]
enum Body {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// A request being read: its head once parsed, and its body so far.
#[derive(Debug, Default)]
pub struct Reader {
    head: Option<(Request, Body)>,
    /// `Expect: 100-continue` was answered (or needs no answer).
    pub continued: bool,
}

/// What the bytes so far make.
#[derive(Debug, PartialEq)]
pub enum Read {
    /// A whole request (its bytes taken from the buffer).
    Request(Request),
    /// More is needed; `true` when the client waits for `100 Continue` first.
    More(bool),
    Refused(Refusal),
}

fn framing(headers: &[httparse::Header<'_>], limits: &Limits) -> Result<Body, Refusal> {
    let mut length: Option<u64> = None;
    let mut codings: Vec<String> = Vec::new();
    let mut coded = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text =
                core::str::from_utf8(h.value).map_err(|_| refuse(400, "bad Content-Length"))?;
            for part in text.split(',') {
                let part = trim_ows(part);
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 19 {
                    return Err(refuse(400, "bad Content-Length"));
                }
                let n: u64 = part
                    .parse()
                    .map_err(|_| refuse(400, "bad Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(refuse(400, "differing Content-Length values"));
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Several lines are one list (RFC 9110 section 5.3).
            let text = core::str::from_utf8(h.value)
                .unwrap_or("?")
                .to_ascii_lowercase();
            codings.extend(
                text.split(',')
                    .map(|c| trim_ows(c).to_string())
                    .filter(|c| !c.is_empty()),
            );
            coded = true;
        }
    }
    // chunked once, and last.
    let chunked = codings.last().is_some_and(|c| c == "chunked")
        && codings.iter().filter(|c| *c == "chunked").count() == 1;
    if coded && length.is_some() {
        return Err(refuse(400, "both Content-Length and Transfer-Encoding"));
    }
    if coded && !chunked {
        return Err(refuse(501, "a transfer coding other than a final chunked"));
    }
    match length {
        Some(n) if n > limits.max_body => Err(refuse(413, "body over the limit")),
        Some(n) => Ok(Body::Length(n)),
        None if chunked => Ok(Body::Chunked(ChunkedDecoder::new())),
        None => Ok(Body::Length(0)),
    }
}

fn head(buf: &[u8], limits: &Limits) -> Result<Option<(Request, Body, usize)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head => {
            return Err(refuse(431, "request head over the limit"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(refuse(431, "too many headers")),
        Err(_) => return Err(refuse(400, "malformed request")),
    };
    if n > limits.max_head {
        return Err(refuse(431, "request head over the limit"));
    }
    let body = framing(req.headers, limits)?;
    let target = req.path.unwrap_or("/");
    if !target.starts_with('/') {
        return Err(refuse(400, "only origin-form targets"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    if req.version == Some(1) && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        return Err(refuse(400, "no Host header"));
    }
    let r = Request {
        method: req.method.unwrap_or("GET").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        version: req.version.unwrap_or(1),
        headers,
        body: Vec::new(),
    };
    Ok(Some((r, body, n)))
}

impl Reader {
    /// Whether a request has begun (its head parsed) but is not whole.
    pub fn in_body(&self) -> bool {
        self.head.is_some()
    }

    /// Take what `buf` holds of the request: whole, more needed, or refused.
    pub fn read(&mut self, buf: &mut Vec<u8>, limits: &Limits) -> Read {
        if self.head.is_none() {
            match head(buf, limits) {
                Err(r) => return Read::Refused(r),
                Ok(None) => return Read::More(false),
                Ok(Some((req, body, n))) => {
                    buf.drain(..n);
                    let expects = req
                        .header("expect")
                        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
                    let empty = matches!(body, Body::Length(0));
                    self.continued = !expects || empty || req.version == 0;
                    self.head = Some((req, body));
                }
            }
        }
        let Some((req, body)) = self.head.as_mut() else {
            return Read::More(false);
        };
        let done = match body {
            Body::Length(n) => {
                let want = (*n as usize).saturating_sub(req.body.len());
                let take = want.min(buf.len());
                req.body.extend(buf.drain(..take));
                req.body.len() as u64 == *n
            }
            Body::Chunked(dec) => match dec.feed(buf, &mut req.body, limits.max_body) {
                Ok(used) => {
                    buf.drain(..used);
                    dec.done()
                }
                Err(http_core::HttpError::TooLarge(_)) => {
                    return Read::Refused(refuse(413, "body over the limit"));
                }
                Err(_) => return Read::Refused(refuse(400, "bad chunked body")),
            },
        };
        if done {
            let (req, _) = self.head.take().unwrap_or_else(|| unreachable!());
            return Read::Request(req);
        }
        Read::More(!self.continued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_options_are_matched_as_rfc_9110_lists() {
        let req = |version, conn: &str| Request {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            version,
            headers: alloc::vec![("Connection".into(), conn.into())],
            body: Vec::new(),
        };
        assert!(!req(1, "Upgrade,\t CLOSE ").keep_alive());
        assert!(req(0, " Keep-Alive").keep_alive());
        assert!(!req(0, "close").keep_alive());
        // Only spaces and tabs are optional whitespace: a no-break space belongs to the option.
        assert!(req(1, "close\u{a0}").keep_alive());
        assert!(req(1, "closed").keep_alive());
        // Options split over several fields all count.
        let mut two = req(1, "keep-alive");
        two.headers.push(("connection".into(), "Close".into()));
        assert!(!two.keep_alive());
        let mut two = req(0, "x-a");
        two.headers.push(("CONNECTION".into(), "keep-alive".into()));
        assert!(two.keep_alive());
    }

    fn read_all(text: &[u8]) -> (Vec<Read>, Vec<u8>) {
        let mut buf = text.to_vec();
        let mut r = Reader::default();
        let mut out = Vec::new();
        loop {
            match r.read(&mut buf, &Limits::default()) {
                Read::More(_) => return (out, buf),
                Read::Refused(x) => {
                    out.push(Read::Refused(x));
                    return (out, buf);
                }
                req => out.push(req),
            }
        }
    }

    fn status_of(text: &[u8]) -> u16 {
        match read_all(text).0.pop() {
            Some(Read::Refused(r)) => r.status,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(text)),
        }
    }

    #[test]
    fn pipelined_requests_with_bodies() {
        let (reqs, rest) = read_all(
            b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: h\r\n\r\nPOST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nGET /d",
        );
        assert_eq!(reqs.len(), 3);
        let Read::Request(a) = &reqs[0] else { panic!() };
        assert_eq!(
            (a.path.as_str(), a.query.as_str(), &a.body[..]),
            ("/a", "x=1", &b"abc"[..])
        );
        let Read::Request(c) = &reqs[2] else { panic!() };
        assert_eq!(c.body, b"hi");
        assert_eq!(rest, b"GET /d");
    }

    #[test]
    fn smuggling_shapes_and_limits_are_refused() {
        assert_eq!(status_of(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(
            status_of(
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
            ),
            400
        );
        assert_eq!(
            status_of(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n"),
            400
        );
        assert_eq!(
            status_of(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            501
        );
        assert_eq!(status_of(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
        assert_eq!(
            status_of(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n"),
            413
        );
        assert_eq!(status_of(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status_of(b"GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status_of(b"G\0T / HTTP/1.1\r\n\r\n"), 400);
        let mut big = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
        big.extend(core::iter::repeat_n(b'a', 20_000));
        assert_eq!(status_of(&big), 431);
        assert_eq!(
            status_of(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            400
        );
    }

    #[test]
    fn expect_continue_and_keep_alive() {
        let mut buf =
            b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
                .to_vec();
        let mut r = Reader::default();
        assert_eq!(r.read(&mut buf, &Limits::default()), Read::More(true));
        r.continued = true;
        buf.extend_from_slice(b"ok");
        let Read::Request(req) = r.read(&mut buf, &Limits::default()) else {
            panic!()
        };
        assert!(req.keep_alive());
        let mut buf = b"GET / HTTP/1.0\r\n\r\n".to_vec();
        let Read::Request(req) = Reader::default().read(&mut buf, &Limits::default()) else {
            panic!()
        };
        assert!(!req.keep_alive());
    }
}
