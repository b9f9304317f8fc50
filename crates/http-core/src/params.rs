//! An action's `with-params` JSON, checked field by field so every problem names its field.
//! The http-actions component reads its parameters with it, and the scheduler host's
//! `validate` checks scenarios with the same code: one set of rules.

#[allow(unused_imports)]
use crate::prelude::*;

use net_text::Quoted;

use crate::json::{self, Value};
use crate::{Method, Request};
use core::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub field: String,
    pub message: String,
}

pub(crate) fn err(field: &str, message: impl Into<String>) -> ParamError {
    ParamError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Where the source address comes from when no `bind_ip` is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSource {
    pub pool: String,
    pub tenant: String,
    pub resource: String,
    pub resource_type: String,
    /// Release the binding when the action ends (default), or keep it.
    pub release_after: bool,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub request: Request,
    pub pool: Option<PoolSource>,
    pub discard_body: bool,
    /// Leave the response's headers and trailers out of the outcome (exports still read them).
    pub discard_headers: bool,
}

fn u64_field(v: &Value, field: &str) -> Result<u64, ParamError> {
    v.as_u64()
        .ok_or_else(|| err(field, "expected a non-negative integer"))
}

fn str_field<'a>(v: &'a Value, field: &str) -> Result<&'a str, ParamError> {
    v.as_str().ok_or_else(|| err(field, "expected a string"))
}

fn bool_field(v: &Value, field: &str) -> Result<bool, ParamError> {
    v.as_bool()
        .ok_or_else(|| err(field, "expected true or false"))
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a [(String, Value)], ParamError> {
    v.as_object()
        .ok_or_else(|| err(field, "expected an object"))
}

/// `["host:port:address[,address...]", ...]` (curl's `--resolve`; IPv6 in brackets).
fn resolve_field(v: &Value, field: &str) -> Result<Vec<(String, u16, Vec<IpAddr>)>, ParamError> {
    let Value::Array(items) = v else {
        return Err(err(field, "expected a list of \"host:port:address\""));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let text = str_field(item, &f)?;
        let bad = || err(&f, format!("{} is not host:port:address", Quoted(text)));
        let (host, rest) = text.split_once(':').ok_or_else(bad)?;
        let (port, addrs) = rest.split_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        let mut ips = Vec::new();
        for a in addrs.split(',') {
            ips.push(net_text::parse_ip(a.trim_ascii().trim_matches(['[', ']'])).ok_or_else(bad)?);
        }
        if host.is_empty() {
            return Err(bad());
        }
        out.push((host.to_ascii_lowercase(), port, ips));
    }
    Ok(out)
}

/// A port (`8000`) or a range of them (`"8000-8010"`), none of them 0.
fn port_range(v: &Value, field: &str) -> Result<(u16, u16), ParamError> {
    let bad = || err(field, "expected a port or a range of ports (\"8000-8010\")");
    let (a, b) = match v {
        Value::String(t) => match t.split_once('-') {
            Some((a, b)) => (a.trim_ascii().parse().ok(), b.trim_ascii().parse().ok()),
            None => (t.trim_ascii().parse().ok(), t.trim_ascii().parse().ok()),
        },
        _ => {
            let n = v.as_u64().and_then(|n| u16::try_from(n).ok());
            (n, n)
        }
    };
    match (a, b) {
        (Some(a), Some(b)) if a > 0 && a <= b => Ok((a, b)),
        _ => Err(bad()),
    }
}

/// `http_version`: "1.1" (the default), "2" (HTTP/2 only: by ALPN over TLS, with prior
/// knowledge over plain TCP), or "auto" (HTTP/2 over TLS when the server chooses it).
fn http_version(v: &Value) -> Result<crate::H2Mode, ParamError> {
    let text = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => n.as_str(),
        _ => "",
    };
    match text {
        "1.1" | "1" => Ok(crate::H2Mode::Off),
        "auto" => Ok(crate::H2Mode::Auto),
        "2" | "2.0" => Ok(crate::H2Mode::On),
        other => Err(err(
            "http_version",
            format!("expected \"1.1\", \"2\" or \"auto\", got {}", Quoted(other)),
        )),
    }
}

pub fn parse(action_id: &str, method: Method, json: &str) -> Result<Params, ParamError> {
    let root = json::parse(json).map_err(|e| err("with-params", format!("not valid JSON: {e}")))?;
    parse_value(action_id, method, &root)
}

/// [`parse`] of JSON already read.
pub fn parse_value(action_id: &str, method: Method, root: &Value) -> Result<Params, ParamError> {
    let map = object(root, "with-params")?;
    let url = root.get("url").ok_or_else(|| err("url", "required"))?;
    let mut req = Request::new(method, str_field(url, "url")?);
    crate::Url::parse(&req.url).map_err(|e| err("url", e.to_string()))?;
    let mut discard_body = false;
    let mut discard_headers = false;
    let mut json_body = false;
    let (mut pool, mut tenant, mut resource, mut resource_type, mut release) =
        (None, None, None, None, None);
    for (key, v) in map {
        let k = key.as_str();
        match k {
            "url" => {}
            "bind_ip" => {
                let s = str_field(v, k)?.trim_ascii();
                if !s.is_empty() {
                    let ip = net_text::parse_ip(s)
                        .ok_or_else(|| err(k, format!("not an IP address: {}", Quoted(s))))?;
                    req.bind_ip = Some(ip);
                }
            }
            "pool" => pool = Some(str_field(v, k)?.to_string()),
            "tenant" => tenant = Some(str_field(v, k)?.to_string()),
            "resource" => resource = Some(str_field(v, k)?.to_string()),
            "resource_type" => resource_type = Some(str_field(v, k)?.to_string()),
            "release" => {
                release = Some(match str_field(v, k)? {
                    "after_action" => true,
                    "keep" => false,
                    other => {
                        return Err(err(
                            k,
                            format!("expected after_action or keep, got {}", Quoted(other)),
                        ));
                    }
                })
            }
            "headers" => headers(&mut req, v)?,
            "body" => match v {
                Value::String(s) => req.body = s.clone().into_bytes(),
                Value::Null => {}
                // A JSON body given as JSON (typed below unless the headers say otherwise).
                other => {
                    req.body = other.to_string().into_bytes();
                    json_body = true;
                }
            },
            // Bytes that are not text (curl's --data-binary @FILE).
            "body_base64" => {
                req.body = crate::codec::decode_base64(str_field(v, k)?)
                    .ok_or_else(|| err(k, "not standard base64"))?
            }
            "timeouts" => timeouts(&mut req, v)?,
            "timeout_ms" => {
                req.timeouts.total_ms = u64_field(v, k)?.max(1);
            }
            "retries" => retries(&mut req, v)?,
            "redirects" => redirects(&mut req, v)?,
            "max_response_body" | "response_body_limit" => req.max_body = u64_field(v, k)?,
            "max_header_bytes" => {
                req.max_header_bytes = u64_field(v, k)?.clamp(64, 1 << 20) as usize
            }
            "keep_alive" => req.keep_alive = bool_field(v, k)?,
            "decompress" => req.decompress = bool_field(v, k)?,
            "discard_body" => discard_body = bool_field(v, k)?,
            "discard_headers" => discard_headers = bool_field(v, k)?,
            "resolve" => req.resolve = resolve_field(v, k)?,
            "ip_version" => {
                req.ip_version = match v.as_u64() {
                    Some(n @ (4 | 6)) => Some(n as u8),
                    _ => return Err(err(k, "expected 4 or 6")),
                }
            }
            "local_port" => req.local_ports = Some(port_range(v, k)?),
            "limit_rate" => req.limit_rate = u64_field(v, k)?,
            "cookies" => req.cookies = bool_field(v, k)?,
            "http_version" => req.h2 = http_version(v)?,
            "proxy" => req.proxy = proxy(v)?,
            "tls" => tls(&mut req, v)?,
            _ => return Err(err(k, "unknown parameter")),
        }
    }
    if json_body {
        default_header(&mut req, "content-type", "application/json");
    }
    // Asks for what it can decode, unless the caller asked for something else.
    if req.decompress {
        default_header(&mut req, "accept-encoding", crate::encoding::ACCEPT);
    }
    let pool = match pool {
        Some(pool) if req.bind_ip.is_none() => Some(PoolSource {
            pool,
            tenant: tenant.ok_or_else(|| err("tenant", "required with pool"))?,
            resource: resource.unwrap_or_else(|| action_id.to_string()),
            resource_type: resource_type.unwrap_or_else(|| "custom".into()),
            release_after: release.unwrap_or(true),
        }),
        _ => None,
    };
    Ok(Params {
        request: req,
        pool,
        discard_body,
        discard_headers,
    })
}

/// `headers`: name to text (a number or true/false as its text).
fn headers(req: &mut Request, v: &Value) -> Result<(), ParamError> {
    for (name, value) in object(v, "headers")? {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.clone(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(err(&format!("headers.{name}"), "expected a string")),
        };
        req.headers.push((name.clone(), value));
    }
    Ok(())
}

/// `timeouts`: each phase's, in milliseconds (at least 1).
fn timeouts(req: &mut Request, v: &Value) -> Result<(), ParamError> {
    for (name, value) in object(v, "timeouts")? {
        let field = format!("timeouts.{name}");
        let ms = u64_field(value, &field)?;
        if ms == 0 {
            return Err(err(&field, "must be at least 1 ms"));
        }
        let t = &mut req.timeouts;
        match name.as_str() {
            "dns_ms" => t.dns_ms = ms,
            "connect_ms" => t.connect_ms = ms,
            "first_byte_ms" => t.first_byte_ms = ms,
            "between_bytes_ms" => t.between_bytes_ms = ms,
            "total_ms" => t.total_ms = ms,
            _ => return Err(err(&field, "unknown timeout")),
        }
    }
    Ok(())
}

/// `retries`: a count, or `{max, base_ms, delay_ms, max_backoff_ms, non_idempotent, statuses,
/// connect, all_errors, max_time_ms}`.
fn retries(req: &mut Request, v: &Value) -> Result<(), ParamError> {
    let o = match v {
        Value::Number(_) => {
            req.retry.max_retries = u64_field(v, "retries")?.min(100) as u32;
            return Ok(());
        }
        Value::Object(o) => o,
        _ => return Err(err("retries", "expected a number or an object")),
    };
    for (name, value) in o {
        let field = format!("retries.{name}");
        let r = &mut req.retry;
        match name.as_str() {
            "max" => r.max_retries = u64_field(value, &field)?.min(100) as u32,
            "base_ms" => r.base_ms = u64_field(value, &field)?,
            "delay_ms" => r.delay_ms = Some(u64_field(value, &field)?),
            "max_backoff_ms" => r.max_backoff_ms = u64_field(value, &field)?,
            "non_idempotent" => r.non_idempotent = bool_field(value, &field)?,
            "statuses" => r.statuses = statuses(value, &field)?,
            "connect" => r.connect = bool_field(value, &field)?,
            "all_errors" => r.all_errors = bool_field(value, &field)?,
            "max_time_ms" => r.max_time_ms = Some(u64_field(value, &field)?),
            _ => return Err(err(&field, "unknown retry setting")),
        }
    }
    Ok(())
}

/// `retries.statuses`: the answers tried again, codes from 400 to 527.
fn statuses(v: &Value, field: &str) -> Result<crate::StatusSet, ParamError> {
    let Value::Array(items) = v else {
        return Err(err(field, "expected a list of status codes"));
    };
    let mut codes = Vec::with_capacity(items.len());
    for item in items {
        let c = u64_field(item, field)?;
        match u16::try_from(c) {
            Ok(code) if crate::StatusSet::CODES.contains(&code) => codes.push(code),
            _ => return Err(err(field, format!("{c} is not a status from 400 to 527"))),
        }
    }
    Ok(crate::StatusSet::of(&codes))
}

/// `redirects`: followed or not, at most how many, or `{follow, max}`.
fn redirects(req: &mut Request, v: &Value) -> Result<(), ParamError> {
    match v {
        Value::Bool(b) => req.follow_redirects = *b,
        Value::Number(_) => req.max_redirects = u64_field(v, "redirects")?.min(100) as u32,
        Value::Object(o) => {
            for (name, value) in o {
                let field = format!("redirects.{name}");
                match name.as_str() {
                    "follow" => req.follow_redirects = bool_field(value, &field)?,
                    "max" => req.max_redirects = u64_field(value, &field)?.min(100) as u32,
                    _ => return Err(err(&field, "unknown redirect setting")),
                }
            }
        }
        _ => {
            return Err(err(
                "redirects",
                "expected true/false, a number or an object",
            ));
        }
    }
    Ok(())
}

/// `proxy`: a URL, or none (`""`, false, null).
fn proxy(v: &Value) -> Result<Option<crate::Proxy>, ParamError> {
    match v {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::String(t) if t.is_empty() => Ok(None),
        Value::String(t) => crate::Proxy::parse(t)
            .map(Some)
            .map_err(|e| err("proxy", e.to_string())),
        _ => Err(err(
            "proxy",
            "expected a proxy URL (http://[user:password@]host:port)",
        )),
    }
}

/// `tls: {server_name}` (the rest of TLS is the host's).
fn tls(req: &mut Request, v: &Value) -> Result<(), ParamError> {
    let Value::Object(o) = v else {
        return Err(err("tls", "expected an object"));
    };
    for (name, value) in o {
        let field = format!("tls.{name}");
        match (name.as_str(), value) {
            ("server_name", Value::String(n)) if !n.is_empty() => {
                req.tls_server_name = Some(n.clone())
            }
            ("server_name", _) => return Err(err(&field, "expected a host name")),
            _ => return Err(err(&field, "unknown TLS setting")),
        }
    }
    Ok(())
}

/// `name: value` unless the caller's headers name it already.
fn default_header(req: &mut Request, name: &str, value: &str) {
    if !req
        .headers
        .iter()
        .any(|(h, _)| h.eq_ignore_ascii_case(name))
    {
        req.headers.push((name.into(), value.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `retries` as curl's `--retry` sends it: the statuses, the connection and time
    /// settings; a status outside 400-527 is refused by name.
    #[test]
    fn retries_take_statuses_and_curl_settings() {
        let json = r#"{"url":"http://h/","retries":{"max":2,"statuses":[408,500],"connect":false,"all_errors":true,"max_time_ms":1500}}"#;
        let r = parse("a", Method::Get, json).unwrap().request.retry;
        assert_eq!(r.max_retries, 2);
        assert!(r.statuses.contains(408) && r.statuses.contains(500));
        assert!(!r.statuses.contains(503) && !r.statuses.contains(200));
        assert!(!r.connect && r.all_errors);
        assert_eq!(r.max_time_ms, Some(1500));
        let d = crate::RetryPolicy::default();
        assert!(d.statuses.contains(429) && d.statuses.contains(503) && d.connect);
        let bad = r#"{"url":"http://h/","retries":{"statuses":[302]}}"#;
        let e = parse("a", Method::Get, bad).err().unwrap();
        assert_eq!(e.field, "retries.statuses");
    }
}
