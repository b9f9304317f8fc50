//! The format's types for the `with` of UDP and WebSocket actions (serde fills them; the
//! schema describes them), and an HTTP action's form parts (described only: the executor's
//! rules read an HTTP action's `with`, whose own fields are in `schema`).

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
    pub peer_ip: Option<Text>,
    pub peer_port: Option<Text>,
    /// Text (templates rendered).
    pub payload: Option<Text>,
    /// Bytes, as hex digits.
    pub payload_hex: Option<Text>,
    pub bind_ip: Option<Text>,
    /// The wait for a reply, each try (3000 by default).
    pub timeout_ms: Option<u64>,
    #[serde(rename = "timeout-ms")]
    pub timeout_ms_original: Option<u64>,
    pub timeout: Option<Duration>,
    pub retry: Option<UdpRetry>,
    pub retries: Option<u64>,
    /// What the reply must be.
    pub expect: Option<UdpExpect>,
    /// The longest reply read (65535).
    pub max_reply: Option<u64>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct UdpRetry {
    pub max: Option<i64>,
    pub backoff_ms: Option<u64>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct UdpExpect {
    pub equals: Option<Text>,
    pub contains: Option<Text>,
    /// A regular expression.
    pub matches: Option<Text>,
    pub payload_hex: Option<Text>,
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
    pub keep_open: Option<bool>,
    pub steps: Option<Vec<WsStep>>,
    pub headers: Option<BTreeMap<String, Text>>,
    /// Offered in order of preference (Sec-WebSocket-Protocol).
    pub subprotocols: Option<Vec<Text>>,
    /// The largest message received, in bytes (16 MiB by default); a larger one fails the
    /// session with 1009.
    pub max_message: Option<u64>,
    /// The opening's deadline (connect, TLS, handshake).
    pub timeout: Option<Duration>,
    pub timeouts: Option<Timeouts>,
    pub bind_ip: Option<String>,
    pub tls: Option<ActionTls>,
    pub resolve: Option<Vec<Text>>,
    pub ip_version: Option<u64>,
    pub local_port: Option<Value>,
    /// Send the user's cookies with the handshake and keep those it sets (default true).
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
    pub sleep: Option<Duration>,
    /// The closing handshake: a code (1000 by default), or `{code, reason}`.
    pub close: Option<WsCloseStep>,
    /// How long a receive, ping or close waits (10s by default).
    pub timeout: Option<Duration>,
}

/// What a received message must be (all that are given), and its exports.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WsReceive {
    /// The text (templates rendered).
    pub equals: Option<Text>,
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
    pub equals: Option<Text>,
    pub contains: Option<Text>,
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
    pub name: String,
    /// A JSON pointer into the message (default: the whole text).
    pub pointer: Option<String>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WsClose {
    /// 1000-1003, 1007-1014 or 3000-4999 (default 1000).
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
