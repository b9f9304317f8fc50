//! The format's types for the `with` of UDP and WebSocket actions (serde fills them; the
//! schema describes them), an HTTP action's form parts (described only: the executor's rules
//! read an HTTP action's `with`, whose own fields are in `schema`), and the servers.

#![allow(dead_code)]

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::format::schema::{ActionTls, Duration, Text, Timeouts};

/// A UDP action's `with` (`call: udp.send` or `udp.send-reply`).
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct UdpWith {
    /// `host:port` with an IP literal (`[::1]:7` for IPv6).
    pub target: Option<Text>,
    /// The target's address, with peer_port (in place of target).
    pub peer_ip: Option<Text>,
    /// The target's port, with peer_ip.
    pub peer_port: Option<Text>,
    /// Text (templates rendered).
    pub payload: Option<Text>,
    /// Bytes, as hex digits.
    pub payload_hex: Option<Text>,
    /// Send from this address (the user's pool address when a binding is in force).
    pub bind_ip: Option<Text>,
    /// The wait for a reply, each try (3000 by default).
    #[schemars(extend("default" = 3000))]
    pub timeout_ms: Option<u64>,
    /// The original's spelling of timeout_ms.
    #[serde(rename = "timeout-ms")]
    pub timeout_ms_original: Option<u64>,
    /// The wait for a reply, each try, as a duration (over timeout_ms).
    pub timeout: Option<Duration>,
    /// The original's retry policy: max tries after the first, backoff between.
    pub retry: Option<UdpRetry>,
    /// Tries after the first.
    #[schemars(extend("default" = 0))]
    pub retries: Option<u64>,
    /// What the reply must be.
    pub expect: Option<UdpExpect>,
    /// The longest reply read (65535).
    #[schemars(extend("default" = 65535))]
    pub max_reply: Option<u64>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct UdpRetry {
    /// Tries after the first (negative: none).
    #[schemars(extend("default" = 0))]
    pub max: Option<i64>,
    /// The wait between tries, in milliseconds.
    #[schemars(extend("default" = 0))]
    pub backoff_ms: Option<u64>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct UdpExpect {
    /// The reply as text equals this.
    pub equals: Option<Text>,
    /// The reply as text contains this.
    pub contains: Option<Text>,
    /// A regular expression.
    pub matches: Option<Text>,
    /// The reply's exact bytes, as hex digits.
    pub payload_hex: Option<Text>,
    /// The reply's length in bytes.
    pub len: Option<u64>,
}

/// A WebSocket action's `with` (`call: websocket`, RFC 6455): the session it opens (or
/// continues, when one of its name is open), then its steps in order.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WebSocketWith {
    /// `ws://` or `wss://`; templates allowed. Without it the action continues the open
    /// session of its name.
    pub url: Option<String>,
    /// The session's name, for later actions to continue it (default: the action's id).
    pub session: Option<Text>,
    /// Keep the session open after the steps, across the user's later actions and iterations
    /// (closed with 1001 when the user ends). Default false: closed with 1000 after the steps.
    #[schemars(extend("default" = false))]
    pub keep_open: Option<bool>,
    /// What the action does on the session, in order.
    pub steps: Option<Vec<WsStep>>,
    /// Added to the opening handshake (not its own Upgrade, Connection, Sec-WebSocket-*).
    pub headers: Option<BTreeMap<String, Text>>,
    /// Offered in order of preference (Sec-WebSocket-Protocol).
    pub subprotocols: Option<Vec<Text>>,
    /// The largest message received, in bytes (16 MiB by default); a larger one fails the
    /// session with 1009.
    #[schemars(extend("default" = 16777216))]
    pub max_message: Option<u64>,
    /// The opening's deadline (connect, TLS, handshake).
    pub timeout: Option<Duration>,
    /// The opening's phases' deadlines, in milliseconds.
    pub timeouts: Option<Timeouts>,
    /// Open from this address (the user's pool address when a binding is in force).
    pub bind_ip: Option<String>,
    /// For wss://: the server name (SNI) to send and verify.
    pub tls: Option<ActionTls>,
    /// Addresses for `host:port` in place of resolving it (curl's --resolve).
    pub resolve: Option<Vec<Text>>,
    /// 4 or 6: connect over that family only.
    pub ip_version: Option<u64>,
    /// The local port, or the first free one of a range (`"8000-8010"`).
    pub local_port: Option<Value>,
    /// Send the user's cookies with the handshake and keep those it sets (default true).
    #[schemars(extend("default" = true))]
    pub cookies: Option<bool>,
}

/// One step of a WebSocket action: exactly one of `send`, `send_hex`, `receive`, `ping`,
/// `sleep`, `close`.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WsStep {
    /// A text message (templates rendered).
    pub send: Option<Text>,
    /// A binary message, as hex digits.
    pub send_hex: Option<Text>,
    /// Wait for the next message (pings are answered meanwhile) and check it.
    pub receive: Option<WsReceive>,
    /// Ping with this payload (at most 125 bytes) and wait for the pong.
    pub ping: Option<Text>,
    /// Pause this long (ends early when the run stops).
    pub sleep: Option<Duration>,
    /// The closing handshake: a code (1000 by default), or `{code, reason}`.
    pub close: Option<WsCloseStep>,
    /// How long a receive, ping or close waits (10s by default).
    #[schemars(extend("default" = "10s"))]
    pub timeout: Option<Duration>,
}

/// What a received message must be (all that are given), and its exports.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WsReceive {
    /// The text (templates rendered).
    pub equals: Option<Text>,
    /// The text contains this (templates rendered).
    pub contains: Option<Text>,
    /// A regular expression on the text.
    pub matches: Option<Text>,
    /// A value of the message as JSON.
    pub json: Option<WsJson>,
    /// The exact bytes, as hex digits.
    pub hex: Option<Text>,
    /// `ACTION.NAME` from the message: a name (its text), `{name, pointer}`, or a list.
    pub export: Option<WsExports>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WsJson {
    /// RFC 6901, e.g. `/data/id`.
    pub pointer: Text,
    /// The value equals this.
    pub equals: Option<Text>,
    /// The value contains this.
    pub contains: Option<Text>,
    /// The value matches this regular expression.
    pub matches: Option<Text>,
}

#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a name, or {name, pointer}, or a list of them")]
pub enum WsExports {
    One(WsExportItem),
    Many(Vec<WsExportItem>),
}

#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a name, or {name, pointer}")]
pub enum WsExportItem {
    Name(String),
    Full(WsExport),
}

#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a close code, or {code, reason}")]
pub enum WsCloseStep {
    Code(u64),
    Full(WsClose),
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WsExport {
    /// `{{ACTION.NAME}}` in later templates.
    pub name: String,
    /// A JSON pointer into the message (default: the whole text).
    pub pointer: Option<String>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WsClose {
    /// 1000-1003, 1007-1014 or 3000-4999 (default 1000).
    #[schemars(extend("default" = 1000))]
    pub code: Option<u64>,
    /// At most 123 bytes.
    pub reason: Option<String>,
}

/// A form field: text (templated), or a file part.
#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a string or {file, filename, content_type}")]
pub enum FormField {
    Text(Text),
    File(FormFile),
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct FormFile {
    /// The file to send (relative to the scenario).
    pub file: String,
    /// The file name sent. Default: the file's own name.
    pub filename: Option<String>,
    /// Default: guessed from the file name as curl does (else application/octet-stream).
    pub content_type: Option<String>,
}

/// An HTTP server: `instances` of it, each on the next address of `pool` (or on `address`).
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Server {
    /// Unique; `{{server.id}}` in answers.
    pub id: Text,
    /// A pool of `workbook.ip_pools`: the instances take its first addresses.
    pub pool: Option<Text>,
    /// One instance's address (in place of a pool).
    pub address: Option<Text>,
    /// Default 1 (at most 1024).
    #[schemars(extend("default" = 1))]
    pub instances: Option<u64>,
    /// The port each instance listens on (1 to 65535).
    pub port: u64,
    // Routes, middleware and limits are read as written, then by the http-server
    // component's own rules (`http_server_core::Config`).
    /// Tried in order; the first whose method and path match answers. None: 404 (405 when
    /// the path has routes for other methods).
    #[schemars(with = "Option<Vec<ServerRoute>>")]
    pub routes: Option<serde_yaml::Value>,
    /// Applied to every answer, in order.
    #[schemars(with = "Option<Vec<ServerMiddleware>>")]
    pub middleware: Option<serde_yaml::Value>,
    /// Bounds on requests and connections.
    #[schemars(with = "Option<ServerLimits>")]
    pub limits: Option<serde_yaml::Value>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct ServerRoute {
    /// GET, POST, ... (HEAD is answered by a GET route). Default: any.
    pub method: Option<String>,
    /// `/users/{id}` (a segment read as `{{path.id}}`), `/static/*` (the rest: `{{path.rest}}`).
    pub path: String,
    /// Default 200.
    #[schemars(extend("default" = 200))]
    pub status: Option<u64>,
    /// Templated as the body is.
    pub headers: Option<BTreeMap<String, String>>,
    /// Text with `{{path.NAME}}`, `{{query.NAME}}`, `{{header.NAME}}`, `{{server.address}}`,
    /// `{{server.id}}`, `{{request.method}}`, `{{request.path}}`.
    pub body: Option<Value>,
    /// Answer with the request's own body and Content-Type.
    pub echo: Option<bool>,
    /// Answer this many milliseconds late (answers behind it on the connection wait too).
    pub delay_ms: Option<u64>,
    /// Files from this directory (relative to the scenario, read-only) for the path's `*`:
    /// Content-Type by extension, Last-Modified and 304, one byte range, index.html.
    pub dir: Option<String>,
}

/// `{access_log: true}`, `{headers: {..}}` or `{fault: {latency_ms, error_share, status,
/// reset_share}}`.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct ServerMiddleware {
    /// A line per request in `serve`'s output.
    pub access_log: Option<bool>,
    /// Added to every answer (templated).
    pub headers: Option<BTreeMap<String, String>>,
    /// Faults injected into answers: latency, errors, dropped connections.
    pub fault: Option<ServerFault>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct ServerFault {
    /// Added to every answer. Default 0.
    pub latency_ms: Option<u64>,
    /// The share (0 to 1) of answers replaced by `status`. Default 0.
    pub error_share: Option<f64>,
    /// Default 503.
    pub status: Option<u64>,
    /// The share of requests whose connection is dropped without an answer. Default 0.
    pub reset_share: Option<f64>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct ServerLimits {
    /// The request head at most, in bytes (more: 431). Default 16384.
    #[schemars(extend("default" = 16384))]
    pub max_head: Option<u64>,
    /// A request body at most (more: 413). Default 16777216.
    #[schemars(extend("default" = 16777216))]
    pub max_body: Option<u64>,
    /// A request must be whole this long after its first byte (slow clients: 408). Default
    /// 10000.
    #[schemars(extend("default" = 10000))]
    pub head_timeout_ms: Option<u64>,
    /// An idle connection is closed after this long. Default 60000.
    #[schemars(extend("default" = 60000))]
    pub idle_timeout_ms: Option<u64>,
    /// Connections at once; past it a new one is closed at once. Default 1024.
    #[schemars(extend("default" = 1024))]
    pub max_connections: Option<u64>,
}
