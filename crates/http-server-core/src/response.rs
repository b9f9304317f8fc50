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
    pub fn encode(&self, date: &str, head_only: bool, close: bool) -> Vec<u8> {
        let mut h = alloc::format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("connection") {
                continue;
            }
            // A value may not carry a line break (a header cannot be injected from a template).
            let v: String = v.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            h.push_str(&alloc::format!("{k}: {v}\r\n"));
        }
        if !self.has("date") {
            h.push_str(&alloc::format!("Date: {date}\r\n"));
        }
        let bodiless = matches!(self.status, 204 | 304) || (100..200).contains(&self.status);
        if !bodiless {
            h.push_str(&alloc::format!("Content-Length: {}\r\n", self.body.len()));
        }
        if close {
            h.push_str("Connection: close\r\n");
        }
        h.push_str("\r\n");
        let mut out = h.into_bytes();
        if !head_only && !bodiless {
            out.extend_from_slice(&self.body);
        }
        out
    }
}
