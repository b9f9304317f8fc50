//! The scenario format as types: one source for every field, its type, its default and its
//! description. serde fills them as the scenario is read (`scenario/`: each section, or each
//! item of a list, on its own, so one bad item leaves the rest read), and schemars describes
//! them: `scheduler schema` prints the JSON Schema, `host/scenario.schema.json` is the copy
//! editors point at (`# yaml-language-server: $schema=...`), and a test keeps that copy equal
//! to what these types generate.
//!
//! Fields the format does not know are refused by the schema (`additionalProperties: false`);
//! the reader finds them from the same schema (`unknown_fields`) and warns (`validate --strict`
//! refuses them). Parts that another component's rules judge (an action's `with`, a server's
//! routes) are kept as written (`serde_yaml::Value`) and described by their types here.

#![allow(dead_code)]

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_yaml::Number;

pub use crate::format::schema_fields::{fields, unknown_fields};
pub use crate::format::schema_http::*;
pub use crate::format::schema_kinds::*;

/// A string; a number or true/false is read as its text.
#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a string")]
pub enum Text {
    String(String),
    Number(#[schemars(with = "f64")] Number),
    Bool(bool),
}

impl Text {
    /// The text as written (a number's or true/false's, too).
    pub fn text(&self) -> String {
        match self {
            Text::String(s) => s.clone(),
            Text::Number(n) => n.to_string(),
            Text::Bool(b) => b.to_string(),
        }
    }
}

/// A duration: `500ms`, `1s`, `2m`, `1h`, `1m30s`, `1h 5m`, or seconds as a number; at most a
/// year.
#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a duration such as 1s or 500ms")]
pub enum Duration {
    Text(String),
    Seconds(#[schemars(with = "f64")] Number),
}

impl Duration {
    /// The duration as written (seconds as their number's text).
    pub fn text(&self) -> String {
        match self {
            Duration::Text(s) => s.clone(),
            Duration::Seconds(n) => n.to_string(),
        }
    }
}

#[derive(JsonSchema, Deserialize)]
#[serde(
    untagged,
    expecting = "a duration such as 1s, or {min, max}, or {distribution, mean, stddev}"
)]
pub enum ThinkTime {
    Fixed(Duration),
    Drawn(ThinkDistribution),
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct ThinkDistribution {
    /// uniform (the default, with min and max), normal (mean, stddev) or exponential (mean).
    #[schemars(extend("default" = "uniform"))]
    pub distribution: Option<Text>,
    /// Uniform: the shortest pause.
    pub min: Option<Duration>,
    /// Uniform: the longest pause.
    pub max: Option<Duration>,
    /// Normal or exponential: the mean pause.
    pub mean: Option<Duration>,
    /// Normal: the standard deviation (cut at 0 and at mean + 4 deviations).
    pub stddev: Option<Duration>,
}

/// A rate: `50/s`, `600/m`, `1/h`, or a number per second; at most 1,000,000/s.
#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a rate such as 50/s")]
pub enum Rate {
    Text(String),
    PerSecond(#[schemars(with = "f64")] Number),
}

impl Rate {
    /// The rate as written (a number per second as its text).
    pub fn text(&self) -> String {
        match self {
            Rate::Text(s) => s.clone(),
            Rate::PerSecond(n) => n.to_string(),
        }
    }
}

/// A scenario: pools and resources, the load, the actions and the workflow that runs them.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
#[schemars(title = "scheduler scenario")]
pub struct Scenario {
    /// Any 1.x: "1.0", "1", "v1".
    pub version: Option<Text>,
    /// The run's name, in reports and result files.
    #[schemars(extend("default" = "scenario"))]
    pub name: Option<Text>,
    /// IP pools, resources (values for templates) and data files.
    pub workbook: Option<Workbook>,
    /// How many users, when, and for how long.
    pub load: Load,
    /// What users can do: HTTP requests, UDP exchanges, WebSocket sessions.
    pub actions: Actions,
    /// The graph each user walks in a pass: nodes running actions, edges between them.
    pub workflows: Workflows,
    /// k6's thresholds: metric (with tag filters, `http_req_duration{action:login}`) to
    /// expressions.
    pub thresholds: Option<indexmap::IndexMap<String, Thresholds>>,
    /// TLS for https and wss actions: trust, client identity, versions; per tenant too.
    pub tls: Option<Tls>,
    /// An HTTP proxy for every request (`http://[user:password@]host[:port]`, port 1080 by
    /// default), or its settings; an action's `with.proxy` overrides it. The connection to
    /// the proxy leaves from the user's own address.
    pub proxy: Option<Proxy>,
    /// Actions run once, in order, before any user starts (k6's setup()); their exports are
    /// readable by every user (`{{ACTION_ID.NAME}}`); one that fails stops the run (exit 1).
    pub setup: Option<Vec<Text>>,
    /// Actions run once after the last user ends (k6's teardown()), seeing setup's exports.
    pub teardown: Option<Vec<Text>>,
    /// The original UDP scenarios' place for `load.user_resources`.
    pub user_resources: Option<UserResources>,
    /// HTTP servers (the http-server component), each instance on its own address from a
    /// pool: `scheduler serve` runs them.
    pub servers: Option<Vec<Server>>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Workbook {
    /// Address pools; ranges of two pools may not overlap.
    pub ip_pools: Option<Vec<IpPool>>,
    /// Named values for templates (`{{ID.PROPERTY}}`).
    pub resources: Option<Vec<Resource>>,
    /// Rows from files, read once and shared by every user: `{{DATA_ID.COLUMN}}`.
    pub data: Option<Vec<DataFile>>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct DataFile {
    /// Templates read a row's columns as `{{ID.COLUMN}}`.
    pub id: Text,
    /// A CSV file with a header row, a JSON array of objects, or JSON lines (.csv, .json,
    /// .jsonl), relative to the scenario; at most 256 MiB.
    pub file: Text,
    /// per_user (the default: user k takes row (k-1) mod rows), sequential (the next row
    /// each pass, over all users), random (each pass), unique (each row once; when they run
    /// out, users stop and the report says so).
    #[schemars(extend("default" = "per_user"))]
    pub mode: Option<Text>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct IpPool {
    /// Unique; bindings, phases and servers name the pool by it.
    pub id: Text,
    /// Shown in reports (default: the id).
    pub name: Option<Text>,
    /// CIDRs (`127.0.10.0/24`) or `FIRST-LAST` ranges; ranges of two pools may not overlap.
    pub ranges: Vec<Text>,
    /// sequential (the default), round_robin or random.
    #[schemars(extend("default" = "sequential"))]
    pub allocation_strategy: Option<Text>,
    /// For `run --segment I/N`: the segment that holds this pool whole (default: every
    /// segment takes a slice).
    pub segment: Option<u64>,
    /// Default false: every address of a CIDR is given, as the original gives them (a /30
    /// serves 4 users). True keeps an IPv4 CIDR's network and broadcast addresses out (/30
    /// and wider), in every mode.
    #[schemars(extend("default" = false))]
    pub reserve_network_broadcast: Option<bool>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Resource {
    /// Templates read its properties as `{{ID.PROPERTY}}`; not `user` or `tenant`.
    pub id: Text,
    /// Its kind (the original's: `udp-endpoint` gives UDP actions their target).
    #[serde(rename = "type")]
    pub kind: Option<Text>,
    /// Values for `{{RESOURCE_ID.PROPERTY}}`; they may name other properties.
    pub properties: Option<BTreeMap<String, Text>>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Load {
    /// The closed model: users spawned at seconds of the run.
    pub ramp_up: Option<RampUp>,
    /// What each user does once spawned: one pass or a loop, the pause between.
    pub user_lifetime: Option<UserLifetime>,
    /// Where users' addresses come from (ip_binding) and what happens when a pool runs out.
    pub user_resources: Option<UserResources>,
    /// Caps: users alive at once, users started and actions run per second.
    pub concurrency: Option<Concurrency>,
    /// The open model (k6's constant- and ramping-arrival-rate), in place of ramp_up.
    pub arrival_rate: Option<ArrivalRate>,
    /// Ramping users (k6's ramping-vus), in place of ramp_up.
    pub stages: Option<Vec<Stage>>,
    /// With stages: the users at the start of the first stage.
    #[schemars(extend("default" = 0))]
    pub start_users: Option<u64>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Stage {
    /// Users at the stage's end (at most 100,000).
    pub target: u64,
    /// The stage's length: the users go linearly from the last target to this one.
    pub duration: Duration,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct RampUp {
    /// Each phase spawns its users at its second of the run.
    pub phases: Vec<Phase>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Phase {
    /// Seconds from the start (default 0).
    #[schemars(extend("default" = 0))]
    pub at_second: Option<f64>,
    /// Users spawned at this second (at most 100,000 a phase).
    pub spawn_users: u64,
    /// The phase's users' tenant (`{{tenant.id}}`); default `default-tenant`, as the
    /// original's.
    #[schemars(extend("default" = "default-tenant"))]
    pub tenant_id: Option<Text>,
    /// Their addresses from this pool instead of the binding's.
    pub ip_pool_override: Option<Text>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct UserLifetime {
    /// once (the default) or loop.
    #[schemars(extend("default" = "once"))]
    pub mode: Option<Text>,
    /// Passes through the workflow; 0 = until stopped or until `duration`. Default 1, or
    /// with a `duration` and no count, until the duration ends.
    #[schemars(extend("default" = 1))]
    pub iterations: Option<u64>,
    /// The pause between a user's passes (default 0); ramping users (`stages`) keep it too.
    /// A duration, or drawn each time: `{min, max}` (uniform), `{distribution: normal, mean,
    /// stddev}`, `{distribution: exponential, mean}`.
    pub think_time: Option<ThinkTime>,
    /// No new pass starts after this long into the run (default: no limit).
    pub duration: Option<Duration>,
    /// The original's tasks running at once per user: one here.
    pub max_concurrency: Option<u64>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct UserResources {
    /// Each user's source address from a pool.
    pub ip_binding: Option<IpBinding>,
    /// What happens when the pool has no address left.
    pub capacity_management: Option<CapacityManagement>,
}

/// The original's: waiting when the pool has no address (as ip_binding's, which it overrides),
/// and a pool to take one from instead.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct CapacityManagement {
    /// Default false.
    #[schemars(extend("default" = false))]
    pub wait_on_exhaustion: Option<bool>,
    /// Default 30s.
    #[schemars(extend("default" = "30s"))]
    pub wait_timeout: Option<Duration>,
    /// Where an address comes from when the user's pool has none left.
    pub fallback_pool: Option<Text>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct IpBinding {
    /// Default true when `ip_binding` is given.
    #[schemars(extend("default" = true))]
    pub enabled: Option<bool>,
    /// Looked up only when enabled. `default`, undeclared, is the host's own address (the
    /// original's host resources pool).
    pub pool_id: Option<Text>,
    /// per_user (the default): an address for the user's life; shared: one per tenant;
    /// per_task: one per workflow node, given back when the node is done.
    #[schemars(extend("default" = "per_user"))]
    pub strategy: Option<Text>,
    /// user_exit (the default) or task_end (an address per workflow node).
    #[schemars(extend("default" = "user_exit"))]
    pub release_on: Option<Text>,
    /// Default false: a user with no address left fails.
    #[schemars(extend("default" = false))]
    pub wait_on_exhaustion: Option<bool>,
    /// Default 30s.
    #[schemars(extend("default" = "30s"))]
    pub wait_timeout: Option<Duration>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Concurrency {
    /// Users alive at once (1 to 100000). Default: no cap but what the machine allows (the
    /// run refuses up front what cannot fit); a cap that applies is printed.
    pub max_concurrent_users: Option<u64>,
    /// Users started per second (`200/s`); default no limit.
    pub spawn_rate_limit: Option<Rate>,
    /// Actions started per second, over all users (`1000/s`); default no limit.
    pub action_rate_limit: Option<Rate>,
}

/// `{rate, duration}` (constant) or `{stages, start_rate}` (ramping).
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct ArrivalRate {
    /// Iterations started per second (`50/s`, `600/m`), with `duration`.
    pub rate: Option<Rate>,
    /// How long the constant rate lasts.
    pub duration: Option<Duration>,
    /// Ramping rate: each stage goes linearly to its target over its duration.
    pub stages: Option<Vec<RateStage>>,
    /// The rate at the start of the first stage (default 0/s).
    #[schemars(extend("default" = 0))]
    pub start_rate: Option<Rate>,
    /// Users made before the start (default 10).
    #[schemars(extend("default" = 10))]
    pub pre_allocated_users: Option<u64>,
    /// Users at most (default pre_allocated_users); past that an iteration is dropped.
    pub max_users: Option<u64>,
    /// Default `default-tenant`.
    #[schemars(extend("default" = "default-tenant"))]
    pub tenant_id: Option<Text>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct RateStage {
    /// The rate at the stage's end (`100/s`).
    pub target: Rate,
    /// The stage's length.
    pub duration: Duration,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Actions {
    /// The actions, each with a unique id.
    pub actions: Vec<Action>,
    /// k6's `discardResponseBodies`: every HTTP action reads its answer's body and keeps none
    /// of it (its bytes counted), as `with.discard_body: true` does, unless its own
    /// `discard_body` says otherwise or one of its checks reads the body (an export that reads
    /// it keeps what it needs either way).
    #[schemars(extend("default" = false))]
    pub discard_response_bodies: Option<bool>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Action {
    /// Unique; templates read its results as `{{ID.status_code}}`, `{{ID.ok}}`, `{{ID.NAME}}`.
    pub id: Text,
    /// get, post, put, delete, patch, head or options (any case); udp.send, udp.send-reply;
    /// websocket.
    pub call: Text,
    /// The call's parameters: an HTTP action's (url, headers, body, ...), a UDP action's or
    /// a WebSocket action's. Read as written, then by its call's own rules.
    #[schemars(with = "ActionWith")]
    pub with: serde_yaml::Value,
    /// Values taken from the answer for later templates (`{{ID.NAME}}`).
    pub export: Option<Vec<Export>>,
    /// k6's checks on the answer: counted, they do not fail the action.
    pub checks: Option<Vec<Check>>,
    /// Tags (`{group: api}`): the report's `by_tag`, the metrics' labels, and threshold
    /// filters (`http_req_duration{group:api}`). Names of letters, digits and `_`, not
    /// action, name, tenant or status.
    pub tags: Option<BTreeMap<String, Text>>,
}

/// An HTTP action's `with` (the executor's parameters), a UDP action's, or a WebSocket
/// action's.
#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "the parameters of the action's call")]
pub enum ActionWith {
    Http(Box<With>),
    Udp(Box<UdpWith>),
    WebSocket(Box<WebSocketWith>),
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Export {
    /// content (the body), status_code, header, json, or assert (read as content).
    #[serde(rename = "type")]
    pub kind: Option<Text>,
    /// `{{ACTION_ID.NAME}}` in later templates.
    pub name: Text,
    /// For type header: the header's name (default: the export's name).
    pub header: Option<Text>,
    /// An RFC 6901 pointer, for json.
    pub pointer: Option<Text>,
    /// The original's; exports are the user's whatever it says.
    pub scope: Option<Text>,
    /// The value when extraction fails (the action does not fail then).
    pub default: Option<Text>,
}

/// A status code or a list of them.
#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a status code or a list of them")]
pub enum Codes {
    One(u64),
    Many(Vec<u64>),
}

/// Exactly one of status, body_contains, body_matches, header, json, duration; header and json
/// take equals, contains or matches.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Check {
    /// Shown in the report; default: the kind and what it checks (`status 200`).
    pub name: Option<Text>,
    /// The answer's status is this code or one of these.
    pub status: Option<Codes>,
    /// The body contains this text.
    pub body_contains: Option<Text>,
    /// The body matches this regular expression.
    pub body_matches: Option<Text>,
    /// This header is present (or with equals, contains, matches: its value is).
    pub header: Option<Text>,
    /// An RFC 6901 pointer: present, or with equals/contains/matches.
    pub json: Option<Text>,
    /// `<500ms`, `<=1s`.
    pub duration: Option<Text>,
    /// With header or json: the value equals this.
    pub equals: Option<Text>,
    /// With header or json: the value contains this.
    pub contains: Option<Text>,
    /// With header or json: the value matches this regular expression.
    pub matches: Option<Text>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Workflows {
    /// The nodes; each pass starts at the first.
    pub nodes: Vec<Node>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Node {
    /// Unique; the first node is where each pass starts, edges name nodes by it.
    pub id: Text,
    /// action, wait or end.
    #[serde(rename = "type")]
    #[schemars(extend("default" = "action"))]
    pub kind: Option<Text>,
    /// The action this node runs (type action).
    pub action: Option<Text>,
    /// The original's scheduling priority (one node runs at a time per user here).
    pub priority: Option<i64>,
    /// A wait node's event.
    pub on: Option<WaitOn>,
    /// Where the pass goes after this node: the first edge whose trigger holds.
    pub edges: Option<Vec<Edge>>,
    /// Run this action in each user's first pass only (log in once, then loop); later
    /// passes follow its edges as that run ended, its exports kept. Default false.
    #[schemars(extend("default" = false))]
    pub once: Option<bool>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WaitOn {
    /// packet-rx (packet.rx).
    pub event: Text,
    /// The reply waited for, and what it must be.
    #[serde(rename = "match")]
    pub matching: Option<WaitMatch>,
}

/// The reply of a udp.send-reply action that lets a wait node go on.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct WaitMatch {
    /// The udp.send-reply action whose reply the node waits for.
    pub action_id: Option<Text>,
    /// The original's task id (its own objects), not used.
    pub task_id: Option<Text>,
    /// The original's socket id (its own objects), not used.
    pub sock_id: Option<u64>,
    #[serde(flatten)]
    pub expect: UdpExpect,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Edge {
    /// The node this edge leads to.
    pub to: Text,
    /// When the edge is taken; without one, always.
    pub trigger: Option<Trigger>,
    /// A name for the edge (the original's), not used.
    pub label: Option<Text>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Trigger {
    /// `{{login.status_code == 200}}`, `{{a.ok && !b.ok}}`, or the original's forms:
    /// `"{{tenant.id}} == tb"` (templates inside, bare-word literals), `a.body contains ok`.
    pub condition: Option<Text>,
    /// The outcome of the node's action this edge follows: `success` (an answer under 400, a
    /// matching UDP reply, or a skipped dry run), `failed` (`failure`) or `timeout`. With a
    /// condition, both must hold. A trigger with neither is never taken, as in the original.
    pub on: Option<Text>,
    /// The later generation's spelling of `on`.
    pub event: Option<Text>,
    /// The later generation's spelling of `on`.
    pub status: Option<Text>,
}

/// One expression, or several.
#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "an expression or a list of them")]
pub enum Thresholds {
    One(ThresholdItem),
    Many(Vec<ThresholdItem>),
}

#[derive(JsonSchema, Deserialize)]
#[serde(
    untagged,
    expecting = "an expression such as \"p(95)<500\", or {threshold, abortOnFail}"
)]
pub enum ThresholdItem {
    Expression(String),
    Full(Threshold),
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Threshold {
    /// The expression: `p(95)<500`, `rate<0.01`, `avg<200`, `count>100`.
    pub threshold: Text,
    /// Stop the run when it is crossed (exit 99).
    #[schemars(extend("default" = false))]
    pub abort_on_fail: Option<bool>,
    /// k6's spelling of abort_on_fail.
    #[serde(rename = "abortOnFail")]
    #[schemars(extend("default" = false))]
    pub abort_on_fail_k6: Option<bool>,
    /// Judge it for aborting only after this long into the run.
    pub delay_abort_eval: Option<Duration>,
    /// k6's spelling of delay_abort_eval.
    #[serde(rename = "delayAbortEval")]
    pub delay_abort_eval_k6: Option<Duration>,
}

/// TLS for https actions; files are relative to the scenario.
#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct Tls {
    #[serde(flatten)]
    pub settings: TlsSettings,
    /// Per tenant, over the run's.
    pub tenants: Option<BTreeMap<String, TlsSettings>>,
}

#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a proxy URL or its settings")]
pub enum Proxy {
    Url(Text),
    Settings(ProxySettings),
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct ProxySettings {
    /// The proxy URL; `""` for none.
    pub url: Option<Text>,
    /// Hosts reached without the proxy, as curl's `no_proxy`: commas, `*` for all, domains
    /// (and their subdomains), addresses and CIDR blocks.
    pub no_proxy: Option<Text>,
    /// Per tenant: its proxy URL, `""` for none.
    pub tenants: Option<BTreeMap<String, Text>>,
}

#[derive(JsonSchema, Deserialize)]
#[schemars(deny_unknown_fields)]
pub struct TlsSettings {
    /// A PEM file of CA certificates, or several.
    pub ca_file: Option<Files>,
    /// Accept any certificate (curl's -k).
    #[schemars(extend("default" = false))]
    pub insecure_skip_verify: Option<bool>,
    /// A PEM certificate (chain) to present, with client_key.
    pub client_cert: Option<Text>,
    /// The client certificate's PEM private key.
    pub client_key: Option<Text>,
    /// "1.2" or "1.3".
    pub min_version: Option<Text>,
    /// "1.2" or "1.3".
    pub max_version: Option<Text>,
    /// The name sent (SNI) and verified, in place of the URL's host.
    pub server_name: Option<Text>,
}

#[derive(JsonSchema, Deserialize)]
#[serde(untagged, expecting = "a file name or a list of them")]
pub enum Files {
    One(Text),
    Many(Vec<Text>),
}

/// The schema, as `scheduler schema` prints it.
pub fn json() -> String {
    let mut s = schemars::schema_for!(Scenario);
    s.insert(
        "$id".into(),
        "https://scheduler.invalid/scenario.schema.json".into(),
    );
    serde_json::to_string_pretty(&s).expect("a schema is JSON") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn fields_are_the_mappings_keys() {
        let mut edge = fields::<Edge>().to_vec();
        edge.sort();
        assert_eq!(edge, ["label", "to", "trigger"]);
        assert!(fields::<Tls>().contains(&"tenants"));
        assert!(fields::<Tls>().contains(&"ca_file"), "flattened settings");
        assert!(fields::<Threshold>().contains(&"abortOnFail"));
    }

    /// One source for every field: each property the schema has carries its description.
    #[test]
    fn every_field_is_described() {
        let schema: Value = serde_json::from_str(&json()).unwrap();
        let mut bare = Vec::new();
        let defs = schema["$defs"].as_object().cloned().unwrap_or_default();
        let types = std::iter::once(("Scenario".to_string(), schema.clone())).chain(defs);
        for (name, t) in types {
            for (field, v) in t["properties"].as_object().into_iter().flatten() {
                if v.get("description").is_none() {
                    bare.push(format!("{name}.{field}"));
                }
            }
        }
        assert!(bare.is_empty(), "fields without a description: {bare:?}");
    }

    /// The copy editors use is what the types generate (`just schema` writes it).
    #[test]
    fn checked_in_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenario.schema.json");
        let file = std::fs::read_to_string(path).unwrap_or_default();
        assert!(file == json(), "{path} is stale: run `just schema`");
    }
}
