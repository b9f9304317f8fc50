//! Routes: a method (or any), a path pattern with `{name}` segments and a trailing `*`, and
//! the answer: status, headers, a templated body or the request's own (`echo`), a delay.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use http_core::json::Value;

use crate::config::header_pairs;

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    Param(String),
    /// `*` at the end: any rest, `{{path.rest}}`.
    Rest,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Upper case; `None` for any method.
    pub method: Option<String>,
    pub pattern: Vec<Segment>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Answer with the request's body (and its Content-Type).
    pub echo: bool,
    pub delay_ms: u64,
    /// Files from this directory (the host's preopened name) for the path's `*`.
    pub dir: Option<String>,
}

/// Parse `/users/{id}/*` into segments.
pub fn pattern(path: &str) -> Result<Vec<Segment>, String> {
    if !path.starts_with('/') {
        return Err(alloc::format!("path {path:?}: must start with /"));
    }
    let parts: Vec<&str> = path[1..].split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        if *p == "*" {
            if i + 1 != parts.len() {
                return Err(alloc::format!("path {path:?}: * only at the end"));
            }
            out.push(Segment::Rest);
        } else if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(alloc::format!("path {path:?}: bad parameter {p:?}"));
            }
            out.push(Segment::Param(name.to_string()));
        } else {
            out.push(Segment::Literal((*p).to_string()));
        }
    }
    Ok(out)
}

impl Route {
    pub fn parse(v: &Value, i: usize) -> Result<Route, String> {
        let at = |f: &str| alloc::format!("routes[{i}].{f}");
        let path = v
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| alloc::format!("{}: required", at("path")))?;
        let method = match v.get("method").and_then(Value::as_str) {
            None | Some("*") | Some("ANY") | Some("any") => None,
            Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Some(m.to_ascii_uppercase())
            }
            Some(m) => return Err(alloc::format!("{}: bad method {m:?}", at("method"))),
        };
        let status = match v.get("status") {
            None | Some(Value::Null) => 200,
            Some(s) => s
                .as_u64()
                .filter(|s| (200..=599).contains(s))
                .ok_or_else(|| alloc::format!("{}: a status from 200 to 599", at("status")))?
                as u16,
        };
        let pattern = pattern(path).map_err(|e| alloc::format!("{}: {e}", at("path")))?;
        if v.get("dir").is_some() && pattern.last() != Some(&Segment::Rest) {
            return Err(alloc::format!(
                "{}: a route with dir ends with /*",
                at("path")
            ));
        }
        Ok(Route {
            method,
            pattern,
            status,
            headers: header_pairs(v.get("headers"), &at("headers"))?,
            body: match v.get("body") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            },
            echo: v.get("echo").and_then(Value::as_bool).unwrap_or(false),
            delay_ms: v
                .get("delay_ms")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(crate::config::MAX_MS),
            dir: v.get("dir").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// The path's parameters if it matches (`rest` for a trailing `*`).
    pub fn matches(&self, path: &str) -> Option<Params> {
        let mut params = Vec::new();
        let mut parts = path.strip_prefix('/')?.split('/');
        for (i, seg) in self.pattern.iter().enumerate() {
            match seg {
                Segment::Rest => {
                    let rest: Vec<&str> = parts.by_ref().collect();
                    params.push(("rest".to_string(), rest.join("/")));
                    return Some(params);
                }
                Segment::Literal(l) => {
                    if parts.next()? != l {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let p = parts.next()?;
                    if p.is_empty() && i + 1 < self.pattern.len() {
                        return None;
                    }
                    params.push((name.clone(), percent_decode(p)));
                }
            }
        }
        parts.next().is_none().then_some(params)
    }
}

/// `%XX` decoded (invalid escapes kept as written); `+` is kept (a path, not a form).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path's parameters by name.
pub type Params = Vec<(String, String)>;

/// The route for `method` and `path`: the first that matches both, with its parameters; or
/// the methods the path's routes allow (405 when there are some, 404 when none).
pub fn find<'a>(
    routes: &'a [Route],
    method: &str,
    path: &str,
) -> Result<(&'a Route, Params), Vec<String>> {
    let mut allowed = Vec::new();
    for r in routes {
        if let Some(params) = r.matches(path) {
            match &r.method {
                None => return Ok((r, params)),
                Some(m) if m == method || (method == "HEAD" && m == "GET") => {
                    return Ok((r, params));
                }
                Some(m) => {
                    if !allowed.contains(m) {
                        allowed.push(m.clone());
                    }
                }
            }
        }
    }
    Err(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Option<&str>, path: &str) -> Route {
        Route {
            method: method.map(str::to_string),
            pattern: pattern(path).unwrap(),
            status: 200,
            headers: Vec::new(),
            body: String::new(),
            echo: false,
            delay_ms: 0,
            dir: None,
        }
    }

    #[test]
    fn params_rest_and_methods() {
        let routes = [
            route(Some("GET"), "/users/{id}"),
            route(Some("POST"), "/users/{id}"),
            route(None, "/static/*"),
        ];
        let (r, p) = find(&routes, "GET", "/users/a%20b").unwrap();
        assert_eq!(r.method.as_deref(), Some("GET"));
        assert_eq!(p, [("id".to_string(), "a b".to_string())]);
        assert_eq!(
            find(&routes, "HEAD", "/users/7")
                .unwrap()
                .0
                .method
                .as_deref(),
            Some("GET")
        );
        assert_eq!(
            find(&routes, "DELETE", "/users/7").unwrap_err(),
            ["GET", "POST"]
        );
        assert!(find(&routes, "GET", "/users/7/x").unwrap_err().is_empty());
        let (_, p) = find(&routes, "PUT", "/static/a/b.css").unwrap();
        assert_eq!(p, [("rest".to_string(), "a/b.css".to_string())]);
        assert!(pattern("/a/*/b").is_err() && pattern("x").is_err() && pattern("/{a-b}").is_err());
    }
}
