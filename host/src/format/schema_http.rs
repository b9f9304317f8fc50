//! The format's types for an HTTP action's `with`: the executor's parameters (its own rules,
//! `http_core::params`, read them; these describe them in the schema), and the host's
//! `dynamic_tasks` that serde fills.

#![allow(dead_code)]

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::format::schema::{Duration, FormField, Text};

/// The executor's `with-params`; strings may hold templates (`{{base.url}}/items`).
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct With {
    /// http:// or https:// (templates allowed: `{{base.url}}/items`).
    pub url: String,
    /// Send from this address (a pool's, when a binding is in force).
    pub bind_ip: Option<String>,
    /// Allocate the source address from this pool for the action (with tenant).
    pub pool: Option<String>,
    /// The tenant the action's address is allocated for (with pool).
    pub tenant: Option<String>,
    /// The owner the pool knows the address by (default: the action's id).
    pub resource: Option<String>,
    /// vm, container, pod or custom.
    #[schemars(extend("default" = "custom"))]
    pub resource_type: Option<String>,
    /// after_action or keep.
    #[schemars(extend("default" = "after_action"))]
    pub release: Option<String>,
    /// Request headers (templated).
    pub headers: Option<BTreeMap<String, Text>>,
    /// Text, or JSON (sent compact, typed application/json).
    pub body: Option<Value>,
    /// Bytes that are not text.
    pub body_base64: Option<String>,
    /// A file's exact bytes as the body (relative to the scenario; any size: the host streams
    /// it as it is sent, never held whole). An action has one of body, body_base64,
    /// body_file and form.
    pub body_file: Option<String>,
    /// A multipart/form-data body (RFC 7578), fields in name order: text, or a file
    /// part `{file, filename, content_type}` streamed from the file. Content-Type is set
    /// with its boundary unless `headers` names one.
    pub form: Option<BTreeMap<String, FormField>>,
    /// Each phase's deadline in milliseconds: dns_ms, connect_ms, first_byte_ms,
    /// between_bytes_ms, total_ms.
    pub timeouts: Option<Timeouts>,
    /// The whole request's deadline (the original's).
    pub timeout: Option<Duration>,
    /// The whole request's deadline in milliseconds (the original's).
    #[schemars(extend("default" = 120000))]
    pub timeout_ms: Option<u64>,
    /// Retries after the first attempt (default 0), or the policy.
    pub retries: Option<Retries>,
    /// Default: followed, at most 10.
    pub redirects: Option<Redirects>,
    /// Default 67108864 (64 MiB).
    #[schemars(extend("default" = 67108864))]
    pub max_response_body: Option<u64>,
    /// The original's spelling of max_response_body.
    #[schemars(extend("default" = 67108864))]
    pub response_body_limit: Option<u64>,
    /// Default 65536.
    #[schemars(extend("default" = 65536))]
    pub max_header_bytes: Option<u64>,
    /// Default true.
    #[schemars(extend("default" = true))]
    pub keep_alive: Option<bool>,
    /// Ask for gzip, deflate and decode the body (curl's --compressed).
    #[schemars(extend("default" = false))]
    pub decompress: Option<bool>,
    /// Read the body but keep none of it (bytes are counted).
    #[schemars(extend("default" = false))]
    pub discard_body: Option<bool>,
    /// Keep none of the answer's headers.
    #[schemars(extend("default" = false))]
    pub discard_headers: Option<bool>,
    /// The server name (SNI) to send and verify.
    pub tls: Option<ActionTls>,
    /// An HTTP proxy for this action (`""` or false for none), over the scenario's.
    pub proxy: Option<Value>,
    /// Addresses for `host:port` in place of resolving it: `["host:port:address[,address]"]`
    /// (curl's --resolve).
    pub resolve: Option<Vec<Text>>,
    /// 4 or 6: connect over that family only.
    pub ip_version: Option<u64>,
    /// The local port, or the first free one of a range (`"8000-8010"`).
    pub local_port: Option<Value>,
    /// Read the body at most this many bytes a second.
    pub limit_rate: Option<u64>,
    /// Send the user's cookies and keep those the answers set (RFC 6265; default true,
    /// each user its own jar, as k6).
    #[schemars(extend("default" = true))]
    pub cookies: Option<bool>,
    /// "1.1" (default); "2": HTTP/2 only (over https chosen by ALPN, over http with prior
    /// knowledge, h2c); "auto": HTTP/2 over https when the server chooses it by ALPN, else
    /// HTTP/1.1. One HTTP/2 connection per user and origin, kept across requests.
    #[schemars(extend("default" = "1.1"))]
    pub http_version: Option<Text>,
    /// Follow-up tasks added when the action succeeds (the original's).
    pub dynamic_tasks: Option<Vec<DynamicTask>>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct DynamicTask {
    /// Runs once per user: put `{{user.iteration}}` in it to run it every iteration.
    pub id: Text,
    /// The action to run (kind action).
    pub action_id: Option<Text>,
    /// action or end.
    pub kind: Option<Text>,
    /// Where the original's graph goes after the task (it runs before them).
    pub outgoing: Option<Vec<Outgoing>>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Outgoing {
    /// The original's node after the task.
    pub target: Text,
    /// A name for it, not used.
    pub label: Option<Text>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Timeouts {
    /// Default 5000.
    pub dns_ms: Option<u64>,
    /// Default 10000 (the TLS handshake too).
    pub connect_ms: Option<u64>,
    /// Default 30000.
    pub first_byte_ms: Option<u64>,
    /// Default 30000.
    pub between_bytes_ms: Option<u64>,
    /// The whole request, retries and redirects included; default 120000.
    pub total_ms: Option<u64>,
}

/// How many retries, or the policy.
#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a number or an object")]
pub enum Retries {
    Count(u64),
    Policy(RetryPolicy),
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Default 0.
    pub max: Option<u64>,
    /// The first backoff (default 100), doubled each retry, with jitter.
    pub base_ms: Option<u64>,
    /// Default 5000.
    pub max_backoff_ms: Option<u64>,
    /// A fixed wait between tries in place of the backoff (curl's --retry-delay).
    pub delay_ms: Option<u64>,
    /// Retry POST and PATCH too (default false).
    pub non_idempotent: Option<bool>,
}

/// Follow or not, at most N, or both.
#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "true, false or an object")]
pub enum Redirects {
    Follow(bool),
    Max(u64),
    Policy(RedirectPolicy),
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct RedirectPolicy {
    /// Default true.
    pub follow: Option<bool>,
    /// Default 10 (at most 100).
    pub max: Option<u64>,
    /// Allow a redirect to another port or scheme of the URL's host (`http` -> `https`);
    /// by default the user may reach only the ports its actions name. Default false.
    pub any_port: Option<bool>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct ActionTls {
    /// The name sent (SNI) and verified, in place of the URL's host.
    pub server_name: Option<String>,
}
