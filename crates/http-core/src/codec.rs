//! HTTP/1.1 wire format: request encoding, response heads (httparse), body framing and the
//! chunked decoder (extensions and trailers included).

#[allow(unused_imports)]
use crate::prelude::*;

use core::mem::MaybeUninit;

use crate::sink::BodyOut;
use crate::url::Url;
use crate::{Fields, HttpError, Method, Proxy};

/// `s` without the optional whitespace (space and tab, RFC 9110 5.6.3) around a field value
/// or a list element; other characters are the value's own.
pub fn trim_ows(s: &str) -> &str {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|b| !ows(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !ows(b)).map_or(start, |e| e + 1);
    // Both ends sit next to an ASCII byte (or the string's ends): character boundaries.
    &s[start..end]
}

/// Whether the values of a comma-separated header (RFC 9110 5.6.1), all its fields (a list
/// may be split over several, section 5.3), list `token`, compared without regard to case
/// (the tokens of `Connection`, `Upgrade`, ...).
pub fn lists<'a>(values: impl IntoIterator<Item = &'a str>, token: &str) -> bool {
    // Nested `any`s, not a `flat_map` (whose adapter was not inlined): 926 -> 826
    // instructions a response for nginx's `Connection: keep-alive` (callgrind, 64 users). A
    // value shorter than the token cannot list it.
    values.into_iter().any(|v| {
        v.len() >= token.len() && members(v).any(|t| trim_ows(t).eq_ignore_ascii_case(token))
    })
}

/// The members of a comma-separated list (RFC 9110 section 5.6.1), untrimmed: what
/// `split(',')` gives, found with a byte scan (a value is short, and mostly one member).
pub fn members(v: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(v);
    core::iter::from_fn(move || {
        let s = rest?;
        match s.bytes().position(|b| b == b',') {
            Some(i) => {
                rest = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

pub type Headers = Vec<(String, String)>;

pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f))
}

/// The request head and body in one buffer, so a small request goes out in one write. Built
/// by hand, without `core::fmt`: it runs for every request. Through a proxy, a plain `http`
/// request names its whole URL (absolute form) and carries the proxy's credentials; an
/// `https` one goes through a tunnel and is as sent directly.
pub fn encode_request(
    method: Method,
    url: &Url,
    headers: &Headers,
    body: &[u8],
    keep_alive: bool,
    proxy: Option<&Proxy>,
) -> Result<Vec<u8>, HttpError> {
    encode_with_stream(method, url, headers, body, 0, keep_alive, proxy)
}

/// `encode_request` for a body of `body` and then `streamed` bytes sent after the returned
/// bytes (`Content-Length` counts both).
pub fn encode_with_stream(
    method: Method,
    url: &Url,
    headers: &Headers,
    body: &[u8],
    streamed: u64,
    keep_alive: bool,
    proxy: Option<&Proxy>,
) -> Result<Vec<u8>, HttpError> {
    let mut out = String::with_capacity(256);
    out.push_str(method.as_str());
    out.push(' ');
    let proxy = proxy.filter(|_| !url.tls);
    if proxy.is_some() {
        out.push_str(&url.to_text());
    } else {
        out.push_str(&url.path);
    }
    out.push_str(" HTTP/1.1\r\n");
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if let Some(a) = proxy.and_then(|p| p.authorization.as_deref())
        && !has("proxy-authorization")
    {
        out.push_str("Proxy-Authorization: ");
        out.push_str(a);
        out.push_str("\r\n");
    }
    if !has("host") {
        out.push_str("Host: ");
        url.push_authority(&mut out);
        out.push_str("\r\n");
    }
    for (k, v) in headers {
        if !valid_token(k) {
            return Err(HttpError::InvalidHeader(format!(
                "bad header name {}",
                net_text::Quoted(k)
            )));
        }
        if !valid_value(v) {
            return Err(HttpError::InvalidHeader(format!(
                "bad value for header {k}"
            )));
        }
        if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding") {
            continue; // framing is ours to set
        }
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    if !has("user-agent") {
        out.push_str("User-Agent: scheduler-executor/0.1\r\n");
    }
    if !keep_alive && !has("connection") {
        out.push_str("Connection: close\r\n");
    }
    let len = body.len() as u64 + streamed;
    if len > 0 || matches!(method, Method::Post | Method::Put | Method::Patch) {
        out.push_str("Content-Length: ");
        net_text::push_decimal(&mut out, len);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut wire = out.into_bytes();
    wire.extend_from_slice(body);
    Ok(wire)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Fields,
    /// Bytes the head took in the buffer.
    pub len: usize,
}

/// Parse a response head from the front of `buf`; `None` if more bytes are needed.
pub fn parse_head(buf: &[u8], max_header_bytes: usize) -> Result<Option<Head>, HttpError> {
    // Most heads have a handful of headers: 32 slots first, 128 when that is not enough. The
    // slots start uninitialised (httparse fills those it uses): zeroing them cost every
    // response as much as parsing a short head.
    let mut few = [const { MaybeUninit::uninit() }; 32];
    if let Some(r) = parse_head_in(buf, max_header_bytes, &mut few) {
        return r;
    }
    let mut many = [const { MaybeUninit::uninit() }; 128];
    parse_head_in(buf, max_header_bytes, &mut many)
        .unwrap_or_else(|| Err(HttpError::TooLarge("more than 128 response headers".into())))
}

/// A header value that is not plain ASCII as text: an obs-fold (CRLF or LF, then spaces or
/// tabs) is one space, and bytes that are not UTF-8 are replaced.
fn header_value(v: &[u8]) -> String {
    if !v.contains(&b'\n') {
        return String::from_utf8_lossy(v).into_owned();
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\r' || v[i] == b'\n' {
            while i < v.len() && matches!(v[i], b'\r' | b'\n' | b' ' | b'\t') {
                i += 1;
            }
            while out.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
                out.pop();
            }
            out.push(b' ');
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `None`: more headers than `slots`.
fn parse_head_in<'b>(
    buf: &'b [u8],
    max_header_bytes: usize,
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Option<Result<Option<Head>, HttpError>> {
    let too_large = || {
        Err(HttpError::TooLarge(format!(
            "response head over {max_header_bytes} bytes"
        )))
    };
    let mut resp = httparse::Response::new(&mut []);
    // obs-fold (a value continued on the next line) is accepted, and each fold becomes one
    // space below, as RFC 9112 section 5.2 has a user agent do. Spaces between a field's name
    // and its colon are taken away (`X-A : v`), as curl and browsers read them (section 5.1
    // asks a server to refuse them in requests, and a proxy to remove them from responses).
    let parsed = httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_spaces_after_header_name_in_responses(true)
        .parse_response_with_uninit_headers(&mut resp, buf, slots);
    let r = match parsed {
        Ok(httparse::Status::Complete(len)) if len > max_header_bytes => too_large(),
        Ok(httparse::Status::Complete(len)) => {
            let fields = resp.headers.iter().map(|h| (h.name, h.value));
            let headers = Fields::of_head(&buf[..len], fields, header_value);
            Ok(Some(Head {
                status: resp.code.unwrap_or(0),
                reason: String::from(resp.reason.unwrap_or("")),
                version: resp.version.unwrap_or(1),
                headers,
                len,
            }))
        }
        Ok(httparse::Status::Partial) if buf.len() > max_header_bytes => too_large(),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => return None,
        Err(e) => Err(HttpError::Protocol(format!("bad response head: {e}"))),
    };
    Some(r)
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

pub fn framing(method: Method, head: &Head) -> Result<Framing, HttpError> {
    if method == Method::Head
        || (100..200).contains(&head.status)
        || head.status == 204
        || head.status == 304
    {
        return Ok(Framing::None);
    }
    if head.headers.get("transfer-encoding").is_some() {
        return transfer_framing(head);
    }
    let mut length = None;
    // Each field may be a list (`2, 2`): all its members and fields must agree (RFC 9110
    // section 8.6 lets a recipient take a list of one value repeated as that value).
    let members = head.headers.all("content-length").flat_map(members);
    for v in members {
        let n: u64 = trim_ows(v).parse().map_err(|_| {
            HttpError::Protocol(format!("bad Content-Length {}", net_text::Quoted(v)))
        })?;
        if length.is_some_and(|l| l != n) {
            return Err(HttpError::Protocol(
                "conflicting Content-Length headers".into(),
            ));
        }
        length = Some(n);
    }
    Ok(match length {
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// A response with `Transfer-Encoding` (which overrides any Content-Length, RFC 9112 section
/// 6.3): chunked when that is the last coding, else read until the close. A coding other
/// than chunked (`identity` aside) is refused: this client asks for none (it sends no `TE`),
/// so it decodes none, and handing its bytes on as the body would give them a meaning they
/// do not have.
fn transfer_framing(head: &Head) -> Result<Framing, HttpError> {
    let mut chunked_last = false;
    let codings = head.headers.all("transfer-encoding").flat_map(members);
    for c in codings.map(trim_ows).filter(|c| !c.is_empty()) {
        chunked_last = c.eq_ignore_ascii_case("chunked");
        if !chunked_last && !c.eq_ignore_ascii_case("identity") {
            return Err(HttpError::Protocol(format!(
                "unsupported transfer coding {}",
                net_text::Quoted(c)
            )));
        }
    }
    Ok(match chunked_last {
        true => Framing::Chunked,
        false => Framing::UntilClose,
    })
}

/// Whether the connection may be reused after this response.
pub fn keep_alive(head: &Head, framing: Framing) -> bool {
    if framing == Framing::UntilClose {
        return false;
    }
    // Connection options are case-insensitive tokens in a list (RFC 9110 §7.6.1), in every
    // Connection field.
    let has = |option: &str| lists(head.headers.all("connection"), option);
    match head.version {
        0 => has("keep-alive"),
        _ => !has("close"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Extension,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    Trailer,
    Done,
}

/// Incremental chunked decoder: `feed` takes what arrived, appends the decoded body to `out`
/// and returns how many input bytes it used (all of them until `done`).
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkState,
    size: u64,
    size_digits: u32,
    line: Vec<u8>,
    pub trailers: Fields,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

const MAX_LINE: usize = 8 * 1024;

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            size: 0,
            size_digits: 0,
            line: Vec::new(),
            trailers: Fields::new(),
        }
    }

    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// How many bytes of chunk data come next, with nothing in them to parse (0: something
    /// else comes next): a counted body may skip them without taking them in.
    pub fn data_left(&self) -> u64 {
        match self.state {
            ChunkState::Data(left) => left,
            _ => 0,
        }
    }

    /// `n` of the `data_left` bytes were skipped (more than there are is an error).
    pub fn skipped(&mut self, n: u64) -> Result<(), HttpError> {
        let left = self.data_left().checked_sub(n);
        self.state = match left {
            None => return Err(bad_chunked("skipped past the chunk data")),
            Some(0) => ChunkState::DataCr,
            Some(left) => ChunkState::Data(left),
        };
        Ok(())
    }

    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut impl BodyOut,
        max_body: u64,
    ) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                ChunkState::Size => self.size_byte(b)?,
                ChunkState::Extension => {
                    // Extensions are allowed and ignored, up to a bound.
                    self.line.push(b);
                    if self.line.len() > MAX_LINE {
                        return Err(bad_chunked("chunk extension too long"));
                    }
                    if b == b'\r' {
                        self.line.clear();
                        self.state = ChunkState::SizeLf;
                    }
                }
                ChunkState::SizeLf => self.size_end(b, out.written(), max_body)?,
                ChunkState::Data(left) => {
                    let n = (left as usize).min(input.len() - i);
                    out.put(&input[i..i + n])?;
                    i += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(left)
                    };
                    continue;
                }
                ChunkState::DataCr | ChunkState::DataLf => {
                    let (want, next) = match self.state {
                        ChunkState::DataCr => (b'\r', ChunkState::DataLf),
                        _ => (b'\n', ChunkState::Size),
                    };
                    if b != want {
                        return Err(bad_chunked("missing CRLF after chunk data"));
                    }
                    self.state = next;
                }
                ChunkState::Trailer => {
                    if self.trailer_byte(b)? {
                        return Ok(i + 1);
                    }
                }
                ChunkState::Done => return Ok(i),
            }
            i += 1;
        }
        Ok(i)
    }

    /// A digit of the chunk size, or what ends it (an extension, CR).
    fn size_byte(&mut self, b: u8) -> Result<(), HttpError> {
        let digit = match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        };
        match (digit, b) {
            (Some(d), _) => {
                self.size_digits += 1;
                if self.size_digits > 15 {
                    return Err(bad_chunked("chunk size too long"));
                }
                self.size = self.size * 16 + u64::from(d);
            }
            (None, b';') | (None, b' ') | (None, b'\t') if self.size_digits > 0 => {
                self.state = ChunkState::Extension
            }
            (None, b'\r') if self.size_digits > 0 => self.state = ChunkState::SizeLf,
            _ => return Err(bad_chunked("bad chunk size")),
        }
        Ok(())
    }

    /// The LF after a chunk size: the chunk's data next (within `max_body`), or the trailers
    /// after the last chunk.
    fn size_end(&mut self, b: u8, have: u64, max_body: u64) -> Result<(), HttpError> {
        if b != b'\n' {
            return Err(bad_chunked("missing LF after chunk size"));
        }
        if self.size == 0 {
            self.state = ChunkState::Trailer;
        } else {
            if have + self.size > max_body {
                return Err(HttpError::TooLarge(format!(
                    "response body over {max_body} bytes"
                )));
            }
            self.state = ChunkState::Data(self.size);
        }
        self.size = 0;
        self.size_digits = 0;
        Ok(())
    }

    /// A byte of the trailer section: true when the empty line ends the body.
    fn trailer_byte(&mut self, b: u8) -> Result<bool, HttpError> {
        if b != b'\n' {
            self.line.push(b);
            if self.line.len() > MAX_LINE {
                return Err(bad_chunked("trailer line too long"));
            }
            return Ok(false);
        }
        if self.line.last() != Some(&b'\r') {
            return Err(bad_chunked("trailer line without CRLF"));
        }
        self.line.pop();
        if self.line.is_empty() {
            self.state = ChunkState::Done;
            return Ok(true);
        }
        let line = String::from_utf8_lossy(&self.line).into_owned();
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad_chunked("trailer without a colon"))?;
        if !valid_token(k) {
            return Err(bad_chunked("bad trailer name"));
        }
        if self.trailers.len() >= 64 {
            return Err(HttpError::TooLarge("more than 64 trailers".into()));
        }
        self.trailers.push(k, trim_ows(v));
        self.line.clear();
        Ok(false)
    }
}

fn bad_chunked(why: &str) -> HttpError {
    HttpError::Protocol(format!("bad chunked body: {why}"))
}

/// Standard base64 (RFC 4648 section 4, with or without `=` padding) to bytes; `None` for any
/// other character or a length no encoding has. Hand-written: a base64 crate costs the
/// artifact more than its 400 KB budget leaves for this one use (bodies given as bytes).
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let t = text.as_bytes();
    let t = t
        .strip_suffix(b"==")
        .or_else(|| t.strip_suffix(b"="))
        .unwrap_or(t);
    if t.len() % 4 == 1 || (text.len() != t.len() && !text.len().is_multiple_of(4)) {
        return None;
    }
    let mut out = Vec::with_capacity(t.len() / 4 * 3 + 2);
    for chunk in t.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_spaces_and_tabs_are_optional_whitespace() {
        assert_eq!(trim_ows(" \tgzip\t "), "gzip");
        // A no-break space (or any other character) belongs to the value.
        assert_eq!(trim_ows("\u{a0}v\u{2003} "), "\u{a0}v\u{2003}");
        assert_eq!(trim_ows(" \t "), "");
    }

    fn decode_in_pieces(wire: &[u8], piece: usize) -> Result<(Vec<u8>, Fields, usize), HttpError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut used = 0;
        for chunk in wire.chunks(piece) {
            used += d.feed(chunk, &mut out, 1 << 20)?;
            if d.done() {
                break;
            }
        }
        assert!(d.done());
        Ok((out, d.trailers, used))
    }

    #[test]
    fn members_are_what_a_split_at_commas_gives() {
        for v in [
            "",
            ",",
            ",,",
            "615",
            "615,615",
            " 2 , 2 ",
            "a,,b",
            "keep-alive, Upgrade,",
            "é,ü,",
            "x\u{1F600},y",
        ] {
            let ours: Vec<&str> = members(v).collect();
            let split: Vec<&str> = v.split(',').collect();
            assert_eq!(ours, split, "{v:?}");
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers_any_split() {
        let wire = b"5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\nNEXT";
        for piece in 1..wire.len() {
            let (body, trailers, used) = decode_in_pieces(wire, piece).unwrap();
            assert_eq!(body, b"hello world");
            assert_eq!(
                trailers.iter().collect::<Vec<_>>(),
                [("X-Checksum", "abc"), ("X-Other", "1")]
            );
            assert_eq!(&wire[used..], b"NEXT", "piece {piece}");
        }
    }

    /// Chunk data skipped (a counted body) leaves the decoder where reading it would have.
    #[test]
    fn skipped_chunk_data_is_as_if_read() {
        let mut d = ChunkedDecoder::new();
        let mut out = crate::sink::BodySink::new(false);
        assert_eq!(d.feed(b"a\r\nhel", &mut out, 100).unwrap(), 6);
        assert_eq!(d.data_left(), 7);
        assert!(d.skipped(8).is_err());
        d.skipped(3).unwrap();
        d.skipped(4).unwrap();
        assert_eq!(d.data_left(), 0);
        assert!(d.skipped(1).is_err());
        let tail = b"\r\n0\r\n\r\nNEXT";
        assert_eq!(d.feed(tail, &mut out, 100).unwrap(), tail.len() - 4);
        assert!(d.done());
        assert_eq!(out.written(), 3, "only the bytes fed are counted here");
    }

    #[test]
    fn bad_chunks_are_protocol_errors() {
        for wire in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX",
            b"\r\n",
            b"5\nhello",
            b"ffffffffffffffffff\r\n",
        ] {
            let mut d = ChunkedDecoder::new();
            let r = d.feed(wire, &mut Vec::new(), 1 << 40);
            assert!(
                matches!(r, Err(HttpError::Protocol(_))),
                "{:?}: {r:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let mut d = ChunkedDecoder::new();
        assert!(matches!(
            d.feed(b"100\r\n", &mut Vec::new(), 10),
            Err(HttpError::TooLarge(_))
        ));
    }

    #[test]
    fn request_is_one_buffer_with_framing() {
        let h = vec![("content-type".to_string(), "application/json".to_string())];
        let url = Url::parse("http://h:81/x").unwrap();
        let r = encode_request(Method::Post, &url, &h, b"{}", true, None).unwrap();
        let text = String::from_utf8(r).unwrap();
        assert!(
            text.starts_with(
                "POST /x HTTP/1.1\r\nHost: h:81\r\ncontent-type: application/json\r\n"
            )
        );
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"));
        let bad = vec![("bad name".to_string(), "v".to_string())];
        assert!(encode_request(Method::Get, &url, &bad, b"", true, None).is_err());
        let bad = vec![("x".to_string(), "a\r\nInjected: 1".to_string())];
        assert!(encode_request(Method::Get, &url, &bad, b"", true, None).is_err());
    }

    #[test]
    fn heads_with_many_headers() {
        let head = |n: usize| {
            let mut h = String::from("HTTP/1.1 200 OK\r\n");
            for i in 0..n {
                h.push_str(&format!("X-{i}: {i}\r\n"));
            }
            h.push_str("\r\n");
            h
        };
        // Past the 32 slots tried first, up to the limit of 128.
        for n in [0, 31, 32, 33, 100, 128] {
            let h = parse_head(head(n).as_bytes(), 1 << 20).unwrap().unwrap();
            assert_eq!(h.headers.len(), n);
            if n > 0 {
                let (name, value) = (format!("X-{}", n - 1), format!("{}", n - 1));
                assert_eq!(
                    h.headers.iter().nth(n - 1),
                    Some((name.as_str(), value.as_str()))
                );
            }
        }
        assert!(matches!(
            parse_head(head(129).as_bytes(), 1 << 20),
            Err(HttpError::TooLarge(_))
        ));
        // A partial head with more than 32 headers so far still asks for more.
        let partial = head(40);
        assert_eq!(
            parse_head(&partial.as_bytes()[..partial.len() - 2], 1 << 20).unwrap(),
            None
        );
    }

    /// `Connection` options count in every `Connection` field, whatever the case (RFC 9110
    /// sections 5.3 and 7.6.1).
    #[test]
    fn keep_alive_reads_every_connection_field() {
        let alive = |head: &str| {
            let h = parse_head(head.as_bytes(), 1024).unwrap().unwrap();
            keep_alive(&h, Framing::Length(0))
        };
        let ok = "Content-Length: 0\r\n";
        assert!(alive(&format!("HTTP/1.1 200 OK\r\n{ok}\r\n")));
        assert!(!alive(&format!(
            "HTTP/1.1 200 OK\r\n{ok}CONNECTION: Close\r\n\r\n"
        )));
        assert!(!alive(&format!(
            "HTTP/1.1 200 OK\r\n{ok}Connection: keep-alive\r\nConnection: close\r\n\r\n"
        )));
        assert!(!alive(&format!(
            "HTTP/1.1 200 OK\r\n{ok}Connection: upgrade, close\r\n\r\n"
        )));
        assert!(!alive(&format!("HTTP/1.0 200 OK\r\n{ok}\r\n")));
        assert!(alive(&format!(
            "HTTP/1.0 200 OK\r\n{ok}Connection: x-a\r\nconnection: Keep-Alive\r\n\r\n"
        )));
    }

    #[test]
    fn heads_and_framing() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 1024)
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.len), (200, 38));
        assert_eq!(framing(Method::Get, &h).unwrap(), Framing::Length(5));
        assert_eq!(framing(Method::Head, &h).unwrap(), Framing::None);
        assert!(keep_alive(&h, Framing::Length(5)));
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", 1024).unwrap(),
            None
        );
        assert!(matches!(
            parse_head(b"HTTX/1.1 200 OK\r\n\r\n", 1024),
            Err(HttpError::Protocol(_))
        ));
        assert!(matches!(
            parse_head(&[b'a'; 2000], 1024),
            Err(HttpError::Protocol(_) | HttpError::TooLarge(_))
        ));
        let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(2000));
        assert!(matches!(
            parse_head(long.as_bytes(), 1024),
            Err(HttpError::TooLarge(_))
        ));
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n", 1024)
            .unwrap()
            .unwrap();
        assert_eq!(framing(Method::Get, &h).unwrap(), Framing::UntilClose);
        let h = parse_head(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
            1024,
        )
        .unwrap()
        .unwrap();
        assert_eq!(framing(Method::Get, &h).unwrap(), Framing::None);
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            1024,
        )
        .unwrap()
        .unwrap();
        assert!(framing(Method::Get, &h).is_err());
    }

    fn framing_of(head: &str) -> Result<Framing, HttpError> {
        let text = format!("HTTP/1.1 200 OK\r\n{head}\r\n");
        framing(
            Method::Get,
            &parse_head(text.as_bytes(), 4096).unwrap().unwrap(),
        )
    }

    /// A Content-Length list of one value repeated is that value (RFC 9110 section 8.6), as
    /// repeated fields are; differing members are an error either way.
    #[test]
    fn content_length_lists() {
        for same in [
            "Content-Length: 2, 2\r\n",
            "Content-Length: 2,2\r\nContent-Length: 2\r\n",
        ] {
            assert_eq!(framing_of(same).unwrap(), Framing::Length(2), "{same}");
        }
        for bad in [
            "Content-Length: 2, 3\r\n",
            "Content-Length: 2,\r\n",
            "Content-Length: ,\r\n",
        ] {
            assert!(
                matches!(framing_of(bad), Err(HttpError::Protocol(_))),
                "{bad}"
            );
        }
    }

    /// Transfer codings: chunked last is chunked, none of them chunked reads to the close, and
    /// a coding this client does not decode is an error, not bytes passed on as the body.
    #[test]
    fn transfer_codings() {
        let cases = [
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 9\r\n",
                Ok(Framing::Chunked),
            ),
            (
                "Transfer-Encoding: identity, Chunked\r\n",
                Ok(Framing::Chunked),
            ),
            ("Transfer-Encoding: identity\r\n", Ok(Framing::UntilClose)),
            ("Transfer-Encoding: gzip, chunked\r\n", Err("\"gzip\"")),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: foo\r\n",
                Err("\"foo\""),
            ),
            ("Transfer-Encoding: deflate\r\n", Err("\"deflate\"")),
        ];
        for (head, want) in cases {
            match (framing_of(head), want) {
                (Ok(f), Ok(w)) => assert_eq!(f, w, "{head}"),
                (Err(HttpError::Protocol(m)), Err(w)) => {
                    assert_eq!(m, format!("unsupported transfer coding {w}"), "{head}");
                }
                (got, _) => panic!("{head}: {got:?}"),
            }
        }
    }

    /// obs-text (bytes 0x80-0xFF, RFC 9110 5.5) in a value: valid UTF-8 is kept as it is,
    /// anything else becomes U+FFFD, folded or not; the reason phrase is kept too.
    #[test]
    fn values_outside_ascii_are_text() {
        let head = parse_head(
            b"HTTP/1.1 404 Nicht Gefunden\r\nX-A: caf\xc3\xa9\r\nX-B: a\xffb\r\nX-C: \xfe\r\n \xc3\xa9\r\n\r\n",
            1024,
        )
        .unwrap()
        .unwrap();
        assert_eq!((head.status, head.reason.as_str()), (404, "Nicht Gefunden"));
        assert_eq!(head.headers.get("x-a"), Some("caf\u{e9}"));
        assert_eq!(head.headers.get("x-b"), Some("a\u{fffd}b"));
        assert_eq!(head.headers.get("x-c"), Some("\u{fffd} \u{e9}"));
    }

    /// RFC 9112 section 5.2: a user agent replaces each obs-fold with a space.
    #[test]
    fn obs_fold_becomes_one_space() {
        let head = parse_head(
            b"HTTP/1.1 200 OK\r\nX-Long: first\r\n  second\r\n\tthird\r\nContent-Length: 0\r\n\r\n",
            8192,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.headers.get("x-long"), Some("first second third"));
        assert_eq!(head.headers.get("content-length"), Some("0"));
    }

    /// Spaces between a response field's name and its colon are taken away, as curl and
    /// browsers read them.
    #[test]
    fn spaces_before_a_colon_are_left_out() {
        let head = parse_head(
            b"HTTP/1.1 200 OK\r\nX-A : v\r\nContent-Length: 0\r\n\r\n",
            8192,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.headers.get("x-a"), Some("v"));
    }

    #[test]
    fn base64_decodes_as_rfc4648() {
        for (text, want) in [
            ("", &b""[..]),
            ("Zg==", b"f"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg", b"foob"),
            ("Zm9vYmE=", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
            ("AP8=", &[0u8, 255][..]),
        ] {
            assert_eq!(decode_base64(text).as_deref(), Some(want), "{text}");
        }
        for bad in ["Z", "Zm9v!", "Zg=", "Zm 9v", "=", "Zm9vY==="] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }
}
