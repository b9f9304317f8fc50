//! Answers: the status line, `Date`, `Content-Length`, the route's and the middleware's
//! headers, and the body (none for HEAD, 204 and 304), its templates filled from the request.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::request::Request;

/// The reason phrase for the statuses a server sends most.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// What a template may read of the request and the server.
pub struct Scope<'a> {
    pub req: &'a Request,
    pub params: &'a [(String, String)],
    /// `{{server.address}}` (`address:port`) and `{{server.id}}`.
    pub server: (&'a str, &'a str),
}

/// A query parameter (the first of its name), `+` and `%XX` decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (crate::route::percent_decode(&k.replace('+', " ")) == name)
            .then(|| crate::route::percent_decode(&v.replace('+', " ")))
    })
}

impl Scope<'_> {
    fn value(&self, name: &str) -> Option<String> {
        let (scope, key) = name.split_once('.')?;
        match scope {
            "path" => self
                .params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
            "query" => query_param(&self.req.query, key),
            "header" => self.req.header(key).map(str::to_string),
            "server" if key == "address" => Some(self.server.0.to_string()),
            "server" if key == "id" => Some(self.server.1.to_string()),
            "request" if key == "method" => Some(self.req.method.clone()),
            "request" if key == "path" => Some(self.req.path.clone()),
            _ => None,
        }
    }

    /// `text` with each `{{scope.name}}` filled; an unknown or missing one is left empty.
    pub fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(j) = after.find("}}") else {
                out.push_str(&rest[i..]);
                return out;
            };
            out.push_str(&self.value(after[..j].trim()).unwrap_or_default());
            rest = &after[j + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// An answer to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A plain-text refusal or error.
    pub fn text(status: u16, why: &str) -> Answer {
        let mut a = Answer::new(status, alloc::format!("{why}\n"));
        a.headers
            .push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
        a
    }

    fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The bytes on the wire: `head_only` for HEAD (the length of what GET would send).
    /// Written straight into one buffer sized for the whole message (no formatting machinery:
    /// this runs once a request).
    pub fn encode(&self, date: &str, head_only: bool, close: bool) -> Vec<u8> {
        let bodiless = matches!(self.status, 204 | 304) || (100..200).contains(&self.status);
        let send_body = !head_only && !bodiless;
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum();
        let body = if send_body { self.body.len() } else { 0 };
        let mut h = String::with_capacity(128 + date.len() + headers + body);
        h.push_str("HTTP/1.1 ");
        net_text::push_decimal(&mut h, u64::from(self.status));
        h.push(' ');
        h.push_str(reason(self.status));
        h.push_str("\r\n");
        for (k, v) in &self.headers {
            if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("connection") {
                continue;
            }
            push_line(&mut h, k, v);
        }
        if !self.has("date") {
            push_line(&mut h, "Date", date);
        }
        if !bodiless {
            h.push_str("Content-Length: ");
            net_text::push_decimal(&mut h, self.body.len() as u64);
            h.push_str("\r\n");
        }
        if close {
            h.push_str("Connection: close\r\n");
        }
        h.push_str("\r\n");
        let mut out = h.into_bytes();
        if send_body {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// `name: value` and the line's end. A value may not carry a line break (a header cannot be
/// injected from a template): any CR or LF in it is left out.
fn push_line(h: &mut String, name: &str, value: &str) {
    h.push_str(name);
    h.push_str(": ");
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        value.split(['\r', '\n']).for_each(|part| h.push_str(part));
    } else {
        h.push_str(value);
    }
    h.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(a: &Answer, head_only: bool, close: bool) -> String {
        String::from_utf8(a.encode("Sun, 06 Dec 2026 04:30:00 GMT", head_only, close)).unwrap()
    }

    #[test]
    fn an_answer_is_written_as_rfc_9112_has_it() {
        let mut a = Answer::new(200, "hello\n");
        a.headers.push(("X-A".into(), "1".into()));
        assert_eq!(
            wire(&a, false, false),
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nDate: Sun, 06 Dec 2026 04:30:00 GMT\r\n\
             Content-Length: 6\r\n\r\nhello\n"
        );
        // HEAD: GET's length, no body; closing says so.
        assert_eq!(
            wire(&a, true, true),
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nDate: Sun, 06 Dec 2026 04:30:00 GMT\r\n\
             Content-Length: 6\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn framing_headers_are_the_servers_and_values_cannot_break_lines() {
        let mut a = Answer::new(204, "ignored");
        a.headers.push(("content-length".into(), "99".into()));
        a.headers.push(("Connection".into(), "keep-alive".into()));
        a.headers
            .push(("X-B".into(), "a\r\nSet-Cookie: x=1 é".into()));
        a.headers.push(("Date".into(), "then".into()));
        assert_eq!(
            wire(&a, false, false),
            "HTTP/1.1 204 No Content\r\nX-B: aSet-Cookie: x=1 é\r\nDate: then\r\n\r\n"
        );
        let a = Answer::new(599, "");
        assert!(wire(&a, false, false).starts_with("HTTP/1.1 599 "));
    }
}
