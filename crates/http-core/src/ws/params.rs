//! A WebSocket session's parameters: those of an HTTP action (url, bind_ip, headers,
//! timeouts, tls, resolve, ip_version, local_port, cookies) with a `ws://` or `wss://` URL,
//! and `subprotocols` and `max_message` of its own.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::json::{self, Value};
use crate::params::{ParamError, err};
use crate::{Method, Request};

/// What a session's largest message may be unless `max_message` says otherwise (k6's and
/// the `websockets` library's default is 1 MiB; tungstenite's 64 MiB).
pub const DEFAULT_MAX_MESSAGE: u64 = 16 * 1024 * 1024;

pub struct WsParams {
    /// The request with the URL as `http://` or `https://`.
    pub request: Request,
    pub subprotocols: Vec<String>,
    pub max_message: u64,
}

pub fn parse(json: &str) -> Result<WsParams, ParamError> {
    let root = json::parse(json).map_err(|e| err("with-params", format!("not valid JSON: {e}")))?;
    let Value::Object(members) = root else {
        return Err(err("with-params", "expected an object"));
    };
    let mut rest = Vec::with_capacity(members.len());
    let (mut subprotocols, mut max_message) = (Vec::new(), DEFAULT_MAX_MESSAGE);
    for (k, v) in members {
        match k.as_str() {
            "subprotocols" => subprotocols = protocols(&v)?,
            "max_message" => {
                max_message = v
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| err("max_message", "expected a positive number of bytes"))?
            }
            "url" => rest.push((k, Value::String(http_url(&v)?))),
            "pool" | "body" | "body_base64" | "proxy" | "redirects" | "retries" => {
                return Err(err(&k, "not for a WebSocket session"));
            }
            _ => rest.push((k, v)),
        }
    }
    let p = crate::params::parse_value("websocket", Method::Get, &Value::Object(rest))?;
    Ok(WsParams {
        request: p.request,
        subprotocols,
        max_message,
    })
}

/// `ws://` as `http://`, `wss://` as `https://` (section 3); anything else is refused.
fn http_url(v: &Value) -> Result<String, ParamError> {
    let url = v.as_str().ok_or_else(|| err("url", "expected a string"))?;
    let scheme_end = url.find("://").unwrap_or(0);
    let rest = &url[scheme_end..];
    match &url[..scheme_end] {
        s if s.eq_ignore_ascii_case("ws") => Ok(format!("http{rest}")),
        s if s.eq_ignore_ascii_case("wss") => Ok(format!("https{rest}")),
        _ => Err(err(
            "url",
            format!("{}: expected ws:// or wss://", net_text::Quoted(url)),
        )),
    }
}

/// Subprotocol names: tokens (RFC 6455 section 4.1), each once.
fn protocols(v: &Value) -> Result<Vec<String>, ParamError> {
    let Value::Array(items) = v else {
        return Err(err("subprotocols", "expected a list of names"));
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let name = item.as_str().unwrap_or("");
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !token || out.iter().any(|o| o == name) {
            return Err(err(
                "subprotocols",
                format!(
                    "{} is not a token, or is there twice",
                    net_text::Quoted(name)
                ),
            ));
        }
        out.push(name.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_fields_are_read() {
        let p = parse(r#"{"url":"WSS://h:9/p?q","subprotocols":["chat"],"max_message":5,"headers":{"X":"1"}}"#).unwrap();
        assert_eq!(p.request.url, "https://h:9/p?q");
        assert_eq!(p.subprotocols, ["chat"]);
        assert_eq!(p.max_message, 5);
        assert_eq!(
            parse(r#"{"url":"ws://h/"}"#).unwrap().request.url,
            "http://h/"
        );
        for bad in [
            r#"{"url":"http://h/"}"#,
            r#"{"url":"ws://h/","subprotocols":["a b"]}"#,
            r#"{"url":"ws://h/","subprotocols":["a","a"]}"#,
            r#"{"url":"ws://h/","max_message":0}"#,
            r#"{"url":"ws://h/","body":"x"}"#,
            r#"{"url":"ws://h/","nope":1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
