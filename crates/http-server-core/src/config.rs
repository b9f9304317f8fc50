//! A server's configuration, from the JSON the host gives `start`: where to listen, the
//! routes, the middleware and the limits.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use http_core::json::{self, Value};

use crate::route::Route;

/// Bounds on what a client may send and how long it may take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The request head (line and headers) at most; more is 431.
    pub max_head: usize,
    /// A request body at most; more is 413.
    pub max_body: u64,
    /// A request head must be whole this long after its first byte (slow clients: 408).
    pub head_timeout_ms: u64,
    /// A connection with nothing to do is closed after this long.
    pub idle_timeout_ms: u64,
    /// Connections served at once; past it a new one is closed at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_body: 16 * 1024 * 1024,
            head_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
        }
    }
}

/// Middleware, in order: each applies to every answer of the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Middleware {
    /// A line per request in the served counts (method, path, status, peer).
    AccessLog,
    /// Headers added to every answer (templated as bodies are).
    Headers(Vec<(String, String)>),
    /// Injected faults: `latency_ms` more on every answer, a share (0 to 1) of answers with
    /// `status` instead, a share of connections reset without an answer.
    Fault {
        latency_ms: u64,
        error_share: f64,
        status: u16,
        reset_share: f64,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub id: String,
    pub address: String,
    pub port: u16,
    pub routes: Vec<Route>,
    pub middleware: Vec<Middleware>,
    pub limits: Limits,
}

/// Any delay or timeout at most a day (no clock arithmetic can overflow).
pub const MAX_MS: u64 = 86_400_000;

fn bad(field: &str, why: &str) -> String {
    alloc::format!("{field}: {why}")
}

fn num(v: Option<&Value>, field: &str, default: u64) -> Result<u64, String> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| bad(field, "expected a whole number")),
    }
}

fn share(v: Option<&Value>, field: &str) -> Result<f64, String> {
    match v {
        None | Some(Value::Null) => Ok(0.0),
        Some(Value::Number(n)) => n
            .parse::<f64>()
            .ok()
            .filter(|x| (0.0..=1.0).contains(x))
            .ok_or_else(|| bad(field, "expected a share from 0 to 1")),
        Some(_) => Err(bad(field, "expected a share from 0 to 1")),
    }
}

fn text(v: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "expected text")),
    }
}

/// A JSON object's pairs as header names and texts.
pub fn header_pairs(v: Option<&Value>, field: &str) -> Result<Vec<(String, String)>, String> {
    let Some(v) = v.filter(|v| !matches!(v, Value::Null)) else {
        return Ok(Vec::new());
    };
    let pairs = v
        .as_object()
        .ok_or_else(|| bad(field, "expected a mapping"))?;
    pairs
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Ok((k.clone(), other.to_string())),
        })
        .collect()
}

fn middleware(v: &Value, i: usize) -> Result<Middleware, String> {
    let at = alloc::format!("middleware[{i}]");
    if v.get("access_log").and_then(Value::as_bool) == Some(true) {
        return Ok(Middleware::AccessLog);
    }
    if let Some(h) = v.get("headers") {
        return header_pairs(Some(h), &at).map(Middleware::Headers);
    }
    if let Some(f) = v.get("fault") {
        return Ok(Middleware::Fault {
            latency_ms: num(f.get("latency_ms"), &at, 0)?.min(MAX_MS),
            error_share: share(f.get("error_share"), &at)?,
            status: num(f.get("status"), &at, 503)?.clamp(100, 599) as u16,
            reset_share: share(f.get("reset_share"), &at)?,
        });
    }
    Err(bad(&at, "expected access_log, headers or fault"))
}

impl Config {
    pub fn parse(text_in: &str) -> Result<Config, String> {
        let v = json::parse(text_in).map_err(|e| bad("config", &e.to_string()))?;
        let limits = v.get("limits");
        let lim = |k: &str, d: u64| num(limits.and_then(|l| l.get(k)), k, d);
        let defaults = Limits::default();
        let limits = Limits {
            max_head: lim("max_head", defaults.max_head as u64)?.clamp(1024, 1 << 20) as usize,
            max_body: lim("max_body", defaults.max_body)?,
            head_timeout_ms: lim("head_timeout_ms", defaults.head_timeout_ms)?.clamp(1, MAX_MS),
            idle_timeout_ms: lim("idle_timeout_ms", defaults.idle_timeout_ms)?.clamp(1, MAX_MS),
            max_connections: lim("max_connections", defaults.max_connections as u64)?
                .clamp(1, 100_000) as usize,
        };
        let mut routes = Vec::new();
        for (i, r) in v
            .get("routes")
            .and_then(array)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            routes.push(Route::parse(r, i)?);
        }
        let mut mw = Vec::new();
        for (i, m) in v
            .get("middleware")
            .and_then(array)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            mw.push(middleware(m, i)?);
        }
        let port = num(v.get("port"), "port", 0)?;
        Ok(Config {
            id: text(v.get("id"), "id")?.unwrap_or_else(|| "server".to_string()),
            address: text(v.get("address"), "address")?
                .ok_or_else(|| bad("address", "required"))?,
            port: u16::try_from(port).map_err(|_| bad("port", "over 65535"))?,
            routes,
            middleware: mw,
            limits,
        })
    }
}

fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) => Some(a),
        _ => None,
    }
}
