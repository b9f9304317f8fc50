//! Scenarios: the YAML format of the scheduler these components came from, read into a typed
//! model by a walker that collects every problem with its field path (and the line, where the
//! YAML parser gives one) instead of stopping at the first.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde_yaml::Value;

use crate::format::schema;
use crate::format::template;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
    pub line: Option<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{} (line {l}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Sequential,
    RoundRobin,
    Random,
}

#[derive(Debug, Clone)]
pub struct PoolSpec {
    pub id: String,
    pub name: String,
    pub ranges: Vec<String>,
    pub strategy: Strategy,
    /// Keep the network and broadcast addresses of IPv4 CIDRs (/30 and wider) out; by
    /// default every address is given, as the original gives them.
    pub reserve_network_broadcast: bool,
    /// `segment: I`: the pool's addresses exist only where segment I runs (one host's
    /// interfaces): that segment's process has all of it, the others none.
    pub segment: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub id: String,
    /// `type` (`http_endpoint`, `udp-endpoint`): a UDP action without a target sends to the
    /// one `udp-endpoint` resource's `peer_ip`:`peer_port`.
    pub kind: Option<String>,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub at: Duration,
    pub users: u32,
    pub tenant: Option<String>,
    pub pool: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Once,
    Loop,
}

#[derive(Debug, Clone)]
pub struct Lifetime {
    pub mode: Mode,
    /// 0 with loop: until `duration` or Ctrl-C.
    pub iterations: u32,
    pub think_time: Duration,
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindStrategy {
    PerUser,
    Shared,
    PerTask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOn {
    TaskEnd,
    UserExit,
}

#[derive(Debug, Clone)]
pub struct IpBinding {
    pub enabled: bool,
    pub pool: Option<String>,
    pub strategy: BindStrategy,
    pub release_on: ReleaseOn,
    pub wait_on_exhaustion: bool,
    pub wait_timeout: Duration,
    /// `capacity_management.fallback_pool`: where an address comes from when the user's pool
    /// has none.
    pub fallback_pool: Option<String>,
}

/// The open model: iterations start on a schedule, each in a free user.
#[derive(Debug, Clone)]
pub struct ArrivalRate {
    /// (iterations per second at the stage's end, the stage's length); a constant rate is one
    /// stage from that rate to itself.
    pub stages: Vec<(f64, Duration)>,
    /// The rate at time 0 (the constant rate, or `start_rate` for stages).
    pub start_rate: f64,
    pub pre_allocated_users: u32,
    pub max_users: u32,
    pub tenant: Option<String>,
}

impl ArrivalRate {
    /// The whole schedule's length.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.1).sum()
    }

    /// When each iteration starts (offsets from the run's start), one at a time.
    pub fn schedule(&self) -> Schedule<'_> {
        Schedule {
            stages: &self.stages,
            stage: 0,
            from: self.start_rate,
            t0: 0.0,
            done: 0.0,
            next: 1.0,
        }
    }
}

/// Iteration start times, the rate ramping linearly within each stage (k6's
/// ramping-arrival-rate; a constant rate is one flat stage). Iteration `n` starts when the
/// integral of the rate reaches `n`.
pub struct Schedule<'a> {
    stages: &'a [(f64, Duration)],
    stage: usize,
    /// The rate at the current stage's start, and that start (seconds).
    from: f64,
    t0: f64,
    /// Iterations due by the current stage's start.
    done: f64,
    /// The next iteration's number.
    next: f64,
}

impl Iterator for Schedule<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let &(to, len) = self.stages.get(self.stage)?;
            let len = len.as_secs_f64();
            let total = self.done + (self.from + to) / 2.0 * len;
            if self.next <= total + 1e-9 {
                // Solve a*x^2 + b*x = next - done for x in [0, len].
                let (a, b, c) = (
                    (to - self.from) / (2.0 * len.max(1e-9)),
                    self.from,
                    self.next - self.done,
                );
                let x = if a.abs() < 1e-12 {
                    if b > 0.0 { c / b } else { len }
                } else {
                    (-b + (b * b + 4.0 * a * c).max(0.0).sqrt()) / (2.0 * a)
                };
                self.next += 1.0;
                return seconds(self.t0 + x.clamp(0.0, len));
            }
            self.done = total;
            self.t0 += len;
            self.from = to;
            self.stage += 1;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Concurrency {
    /// `max_concurrent_users`: users alive at once; `None` (the default) for no cap beyond
    /// what the machine allows (the run's up-front check refuses what cannot fit).
    pub max_users: Option<u32>,
    /// Users per second; `None` for no limit.
    pub spawn_rate: Option<f64>,
    /// `action_rate_limit`: actions started per second, over all users; `None` for no limit.
    pub action_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportKind {
    StatusCode,
    Body,
    Header(String),
    JsonPointer(String),
}

#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub kind: ExportKind,
    /// The value when extraction fails (the original's `default`): the action does not fail.
    pub default: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Action {
    pub id: String,
    pub call: String,
    /// The `with` block as JSON, templates not yet rendered.
    pub with: serde_json::Value,
    pub exports: Vec<Export>,
    /// Assertions on the answer, recorded as pass rates; they do not route the workflow.
    pub checks: Vec<Check>,
    /// `with.dynamic_tasks`: follow-up tasks added when the action succeeds.
    pub dynamic: Vec<DynamicTask>,
    /// A UDP action (`with` is then the UDP one, not the executor's).
    pub udp: Option<Udp>,
}

/// A follow-up task an action adds when it succeeds (the original's `with.dynamic_tasks`,
/// its `docs/HTTP_DYNAMIC_TASKS.md`): it runs right after the action, before the workflow
/// goes on (its `outgoing` targets come after it, as the original's edges say). At most
/// `MAX_DYNAMIC` an action; a task id (rendered: `dyn-{{user.id}}-{{user.iteration}}`) runs
/// once per user.
#[derive(Debug, Clone)]
pub struct DynamicTask {
    pub id: String,
    /// The action it runs; `None` for `kind: end` (nothing to run).
    pub action: Option<String>,
}

/// Dynamic tasks taken from one action's success, as the original drains at most 8.
pub const MAX_DYNAMIC: usize = 8;

/// The most workflow nodes a scenario may have, and the most one pass may run: a pass
/// without a cycle runs each node at most once, so only a cycle reaches it (and a pass that
/// does ends its user with an error saying so).
pub const MAX_NODES: usize = 10_000;

/// The pool the original's UDP scenarios bind to without declaring it: its host's resources
/// pool, the host's own addresses. Undeclared here, it means no binding.
pub const HOST_POOL: &str = "default";

/// The tenant of users whose phase (or load model) names none, as in the original.
pub const DEFAULT_TENANT: &str = "default-tenant";

/// One check of an action's answer.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
}

#[derive(Debug, Clone)]
pub enum CheckKind {
    /// The status is one of these.
    Status(Vec<u16>),
    BodyContains(String),
    BodyMatches(regex::Regex),
    /// A header: present, equal to, containing, or matching.
    Header(String, Match),
    /// A JSON pointer's value in the body (strings as they are, others as JSON text).
    Json(String, Match),
    /// The request's duration compared with this many milliseconds (`<500ms`).
    Duration(&'static str, f64),
}

#[derive(Debug, Clone)]
pub enum Match {
    Exists,
    Equals(String),
    Contains(String),
    Matches(regex::Regex),
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub to: String,
    /// `None` (no `trigger:`): always taken. A trigger with neither a condition nor an
    /// outcome (`trigger: {}`) is never taken, as the original skips it.
    pub trigger: Option<Trigger>,
}

impl Edge {
    pub fn condition(&self) -> Option<&str> {
        self.trigger.as_ref()?.condition.as_deref()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Trigger {
    pub condition: Option<String>,
    /// `on:` (or the later generation's `event:`/`status:`): the action's outcome it follows.
    pub on: Option<Outcome>,
}

/// How a node's action ended, as edges route on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its answer was a success (HTTP < 400, a matching UDP reply), or it was skipped as a dry
    /// run.
    Success,
    /// It failed, other than by a timeout.
    Failed,
    /// It timed out.
    Timeout,
}

impl Outcome {
    /// `success`, `failed` (`failure`), `timeout`, with the later generation's `action.`
    /// prefix, `_` and `-` as `.`; `packet.rx` (a UDP reply came) is a success.
    pub fn parse(text: &str) -> Option<Outcome> {
        let t = text.trim().to_ascii_lowercase().replace(['_', '-'], ".");
        match t.strip_prefix("action.").unwrap_or(&t) {
            "success" | "packet.rx" => Some(Outcome::Success),
            "failed" | "failure" => Some(Outcome::Failed),
            "timeout" => Some(Outcome::Timeout),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Action(String),
    /// The original's `wait` node (`on: {event: packet-rx, match: {action_id, ...}}`): goes on
    /// when that UDP action's last reply matches, else the pass ends here.
    Wait(Wait),
    End,
}

#[derive(Debug, Clone)]
pub struct Wait {
    /// The UDP action whose reply it waits on (`match.action_id`; the node's previous action
    /// without one).
    pub action: Option<String>,
    pub expect: UdpExpect,
}

/// A UDP action (`call: udp.send` or `udp.send-reply`, the original's `udp-send-reply`):
/// one datagram from the user's address, and for send-reply a reply from the target within
/// the timeout, with retries; through the user's own socket component.
#[derive(Debug, Clone)]
pub struct Udp {
    pub reply: bool,
    pub target: UdpTarget,
    /// Text (templates rendered per user), or bytes.
    pub payload: UdpPayload,
    /// A template: the address to send from when no pool binding is in force.
    pub bind_ip: Option<String>,
    pub timeout_ms: u64,
    pub retries: u32,
    pub backoff_ms: u64,
    pub expect: UdpExpect,
    pub max_reply: u32,
}

#[derive(Debug, Clone)]
pub enum UdpTarget {
    /// `host:port` (`[::1]:7`), templates rendered.
    Addr(String),
    /// `peer_ip` and `peer_port`, templates rendered.
    Parts(String, String),
}

#[derive(Debug, Clone)]
pub enum UdpPayload {
    Text(String),
    Bytes(Vec<u8>),
}

/// What a reply must be: text (`equals`, `contains`, `matches`), bytes (`payload_hex`), a
/// length; all that are given.
#[derive(Debug, Clone, Default)]
pub struct UdpExpect {
    pub text: Option<Match>,
    pub bytes: Option<Vec<u8>>,
    pub len: Option<usize>,
}

impl UdpExpect {
    pub fn holds(&self, reply: &[u8]) -> bool {
        let text = || String::from_utf8_lossy(reply);
        self.len.is_none_or(|n| n == reply.len())
            && self.bytes.as_deref().is_none_or(|b| b == reply)
            && self.text.as_ref().is_none_or(|m| match m {
                Match::Exists => true,
                Match::Equals(x) => text() == x.as_str(),
                Match::Contains(x) => reply.windows(x.len().max(1)).any(|w| w == x.as_bytes()),
                Match::Matches(r) => r.is_match(&text()),
            })
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub pools: Vec<PoolSpec>,
    pub resources: Vec<Resource>,
    pub phases: Vec<Phase>,
    pub lifetime: Lifetime,
    pub ip_binding: IpBinding,
    pub concurrency: Concurrency,
    pub actions: Vec<Action>,
    pub nodes: Vec<Node>,
    pub thresholds: Vec<crate::format::threshold::Threshold>,
    /// `load.arrival_rate`: the open model, instead of ramp-up phases.
    pub arrival: Option<ArrivalRate>,
    /// `load.stages`: users ramped up and down (k6's ramping-vus), instead of phases.
    pub stages: Option<UserStages>,
    /// `tls:`: trust, client identity and versions for `https` actions.
    pub tls: ScenarioTls,
    /// Template names nothing in the scenario declares (`{{tenant.token}}`): left as written
    /// when rendered, as the original scheduler leaves them (`validate` warns).
    pub undeclared: BTreeSet<String>,
    /// Where each action and node is, by id (the first of a duplicated id).
    pub index: Index,
}

/// Actions and nodes by id: a pass looks one up at every step.
#[derive(Debug, Clone, Default)]
pub struct Index {
    actions: HashMap<String, usize>,
    nodes: HashMap<String, usize>,
}

impl Index {
    fn of(actions: &[Action], nodes: &[Node]) -> Index {
        let mut index = Index::default();
        for (i, a) in actions.iter().enumerate() {
            index.actions.entry(a.id.clone()).or_insert(i);
        }
        for (i, n) in nodes.iter().enumerate() {
            index.nodes.entry(n.id.clone()).or_insert(i);
        }
        index
    }
}

/// The scenario's `tls:` block: the run's settings, and per tenant what differs (a client
/// identity of its own, mostly). Relative file names are the scenario file's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScenarioTls {
    pub settings: compose::tls::TlsSettings,
    pub tenants: Vec<(String, compose::tls::TlsSettings)>,
}

impl ScenarioTls {
    /// Files named relative to `dir` (the scenario file's directory).
    pub fn relative_to(&mut self, dir: &std::path::Path) {
        let fix = |p: &mut std::path::PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        let all =
            std::iter::once(&mut self.settings).chain(self.tenants.iter_mut().map(|t| &mut t.1));
        for s in all {
            s.ca_files.iter_mut().for_each(fix);
            if let Some((c, k)) = &mut s.client_identity {
                fix(c);
                fix(k);
            }
        }
    }
}

/// Users ramped linearly to each stage's target over its duration; a user leaves (the newest
/// first) at the end of its current iteration.
#[derive(Debug, Clone)]
pub struct UserStages {
    pub start_users: u32,
    pub stages: Vec<(u32, Duration)>,
    pub tenant: Option<String>,
}

impl UserStages {
    /// How many users should be running `t` into the run (`None` after the last stage).
    pub fn target(&self, t: Duration) -> Option<u32> {
        let (mut from, mut t0) = (f64::from(self.start_users), Duration::ZERO);
        for &(to, len) in &self.stages {
            if t < t0 + len {
                let x = (t - t0).as_secs_f64() / len.as_secs_f64().max(1e-9);
                return Some((from + (f64::from(to) - from) * x).round() as u32);
            }
            from = f64::from(to);
            t0 += len;
        }
        None
    }

    pub fn max_users(&self) -> u32 {
        self.stages
            .iter()
            .map(|s| s.0)
            .chain([self.start_users])
            .max()
            .unwrap_or(0)
    }
}

impl Scenario {
    /// Where the action `id` is in `actions`.
    pub fn action_index(&self, id: &str) -> Option<usize> {
        self.index.actions.get(id).copied()
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.nodes.get(id).map(|&i| &self.nodes[i])
    }

    /// The workflow starts at the node called `start`, else at the first node.
    pub fn start_node(&self) -> Option<&Node> {
        self.node("start").or_else(|| self.nodes.first())
    }

    /// Make this scenario the `index`-th of `count` shares (`--segment I/N`), as k6's
    /// execution segments: users are striped by their global id at run time (user k runs in
    /// share (k-1) mod N); rates and user limits are divided; and each pool is cut into N
    /// contiguous slices, this share taking its own, so no address can be held by two
    /// processes at once without any coordination.
    pub fn segment(&mut self, index: u32, count: u32) -> Result<(), String> {
        if count == 0 || index >= count {
            return Err(format!(
                "segment {index}/{count}: expected I/N with 0 <= I < N"
            ));
        }
        let n = f64::from(count);
        let share = |x: u32| x.div_ceil(count).max(1);
        if let Some(r) = self.concurrency.spawn_rate.as_mut() {
            *r /= n;
        }
        if let Some(r) = self.concurrency.action_rate.as_mut() {
            *r /= n;
        }
        self.concurrency.max_users = self.concurrency.max_users.map(share);
        if let Some(a) = self.arrival.as_mut() {
            a.start_rate /= n;
            for s in &mut a.stages {
                s.0 /= n;
            }
            a.pre_allocated_users = share(a.pre_allocated_users);
            a.max_users = share(a.max_users);
        }
        for p in &mut self.pools {
            if let Some(s) = p.segment {
                if s >= count {
                    return Err(format!(
                        "pool {} is bound to segment {s}, but there are {count} segments",
                        p.id
                    ));
                }
                // Bound to one segment: whole there, nothing elsewhere.
                if s != index {
                    p.ranges.clear();
                }
                continue;
            }
            let mut intervals = Vec::new();
            for r in &p.ranges {
                intervals.push(
                    check_cidr(r, p.reserve_network_broadcast)
                        .map_err(|e| format!("pool {}: {e}", p.id))?,
                );
            }
            let total: u128 = intervals.iter().map(|(a, b)| b - a + 1).sum();
            let (from, to) = (
                total * u128::from(index) / u128::from(count),
                total * (u128::from(index) + 1) / u128::from(count),
            );
            if from == to {
                return Err(format!(
                    "pool {} has {total} addresses, fewer than the {count} segments",
                    p.id
                ));
            }
            // Walk the intervals in order, keeping the part of each within [from, to).
            let mut ranges = Vec::new();
            let mut at = 0u128;
            for (a, b) in intervals {
                let len = b - a + 1;
                let (lo, hi) = (from.max(at), to.min(at + len));
                if lo < hi {
                    ranges.push(format!(
                        "{}-{}",
                        key_ip(a + (lo - at)),
                        key_ip(a + (hi - at) - 1)
                    ));
                }
                at += len;
            }
            p.ranges = ranges;
        }
        Ok(())
    }

    /// Users over every phase (at most `MAX_TOTAL_USERS`, which `parse` checks).
    pub fn total_users(&self) -> u64 {
        self.phases.iter().map(|p| u64::from(p.users)).sum()
    }
}

/// The longest duration, offset or think time a scenario may give: a year.
pub const MAX_SECONDS: f64 = 86_400.0 * 365.0;

/// Users over all phases of one run (user ids are 32-bit).
pub const MAX_TOTAL_USERS: u64 = 100_000_000;

/// The largest scenario file read (bytes).
pub const MAX_INPUT: usize = 4 << 20;

/// How deeply YAML flow collections (`[`, `{`) may nest. The parser's cost grows with the
/// square of the nesting; no scenario nests more than a few levels.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Spawn rates, users per second: from one a day to a million a second.
pub const MIN_RATE: f64 = 1.0 / 86_400.0;
pub const MAX_RATE: f64 = 1e6;

/// A non-negative number of seconds as a duration, within `MAX_SECONDS`.
pub fn seconds(n: f64) -> Option<Duration> {
    if !(0.0..=MAX_SECONDS).contains(&n) {
        return None;
    }
    Duration::try_from_secs_f64(n).ok()
}

/// `1s`, `500ms`, `1.5m`, `1h`, a bare number of seconds, or a compound humantime duration
/// (`1m30s`, `1h 5m`); at most a year.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let simple = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .and_then(|n| match unit {
            "ms" => Some(n / 1000.0),
            "s" | "sec" => Some(n),
            "m" | "min" => Some(n * 60.0),
            "h" => Some(n * 3600.0),
            _ => None,
        });
    match simple {
        Some(secs) => seconds(secs),
        None => humantime::parse_duration(s)
            .ok()
            .filter(|d| d.as_secs_f64() <= MAX_SECONDS),
    }
}

struct Walker {
    problems: Vec<Problem>,
    /// What is accepted but worth saying: fields this format does not use (ignored, as the
    /// original scheduler ignores what it does not know).
    warnings: Vec<Problem>,
    /// `validate --strict`: unknown fields are problems.
    strict: bool,
}

impl Walker {
    fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_string(),
            message: message.into(),
            line: None,
        });
    }

    /// The mapping at `path`, with unknown keys reported.
    fn map<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
        known: &[&str],
    ) -> Option<&'a serde_yaml::Mapping> {
        let Some(m) = v.as_mapping() else {
            self.problem(path, "expected a mapping");
            return None;
        };
        for k in m.keys() {
            match k.as_str() {
                Some(k) if known.contains(&k) => {}
                Some(k) if self.strict => self.problem(
                    &join(path, k),
                    format!("unknown field (expected one of: {})", known.join(", ")),
                ),
                Some(k) => self.warnings.push(Problem {
                    path: join(path, k),
                    message: format!(
                        "unknown field, ignored (expected one of: {})",
                        known.join(", ")
                    ),
                    line: None,
                }),
                None => self.problem(path, "keys must be strings"),
            }
        }
        Some(m)
    }

    fn string(&mut self, v: Option<&Value>, path: &str, required: bool) -> Option<String> {
        match v {
            None | Some(Value::Null) => {
                if required {
                    self.problem(path, "required");
                }
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(_) => {
                self.problem(path, "expected a string");
                None
            }
        }
    }

    fn uint(&mut self, v: Option<&Value>, path: &str) -> Option<u64> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(_) => {
                self.problem(path, "expected a non-negative integer");
                None
            }
        }
    }

    fn boolean(&mut self, v: Option<&Value>, path: &str) -> Option<bool> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.problem(path, "expected true or false");
                None
            }
        }
    }

    fn duration(&mut self, v: Option<&Value>, path: &str) -> Option<Duration> {
        let s = match v {
            None | Some(Value::Null) => return None,
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.problem(path, "expected a duration such as 1s or 500ms");
                return None;
            }
        };
        let d = parse_duration(&s);
        if d.is_none() {
            self.problem(
                path,
                format!("bad duration {s:?} (use e.g. 1s, 500ms, 2m, 1m30s; at most a year)"),
            );
        }
        d
    }

    fn list<'a>(&mut self, v: Option<&'a Value>, path: &str) -> &'a [Value] {
        match v {
            None | Some(Value::Null) => &[],
            Some(Value::Sequence(s)) => s,
            Some(_) => {
                self.problem(path, "expected a list");
                &[]
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn get<'a>(m: &'a serde_yaml::Mapping, k: &str) -> Option<&'a Value> {
    m.get(Value::String(k.to_string()))
}

fn yaml_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                serde_json::Value::from(u)
            } else if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else {
                serde_json::Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(s) => serde_json::Value::Array(s.iter().map(yaml_to_json).collect()),
        Value::Mapping(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("{k:?}")),
                        yaml_to_json(v),
                    )
                })
                .collect(),
        ),
        Value::Tagged(t) => yaml_to_json(&t.value),
    }
}

/// The first and last address of a range as the pool reads it (the pool has the last word when
/// the scenario runs).
/// The addresses a range gives, first and last: every address of a CIDR, as the original
/// gives them (a /30 serves 4 users), unless `reserve` keeps an IPv4 CIDR's network and
/// broadcast addresses out (/30 and wider). Every mode (one process, segments, etcd) takes
/// its addresses from here.
pub(crate) fn check_cidr(text: &str, reserve: bool) -> Result<(u128, u128), String> {
    let mut pools = ip_pool::IpPools::new();
    pools
        .create_pool("check", Default::default())
        .map_err(|e| e.to_string())?;
    let r = match text.split_once('-') {
        Some((a, b)) if !text.contains('/') => pools.add_range("check", a.trim(), b.trim()),
        _ => pools.add_cidr("check", text, false),
    };
    let (first, last) = r
        .map(|i| (key(i.first), key(i.last)))
        .map_err(|e| e.to_string())?;
    let v4_wide = text.contains('/')
        && key_ip(first).is_ipv4()
        && text
            .rsplit_once('/')
            .and_then(|(_, n)| n.trim().parse::<u8>().ok())
            .is_some_and(|n| n <= 30);
    Ok(if reserve && v4_wide {
        (first + 1, last - 1)
    } else {
        (first, last)
    })
}

/// The address of a key (`key`'s inverse).
pub(crate) fn key_ip(k: u128) -> std::net::IpAddr {
    let v6 = std::net::Ipv6Addr::from(k);
    match v6.to_ipv4_mapped() {
        Some(v4) => v4.into(),
        None => v6.into(),
    }
}

/// Addresses in one order, IPv4 as IPv4-mapped IPv6.
fn key(ip: std::net::IpAddr) -> u128 {
    match ip {
        std::net::IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        std::net::IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Ranges of different pools that share an address: each address has one pool, so that no
/// two users can hold it at once through two pools.
fn check_overlaps(w: &mut Walker, ranges: &mut [(u128, u128, usize, String, String)]) {
    ranges.sort_by_key(|r| (r.0, r.1));
    // The range reaching furthest so far: (last, pool, path, text).
    let mut reach: Option<(u128, usize, String, String)> = None;
    for (first, last, pool, path, text) in ranges.iter() {
        if let Some((end, p, other_path, other_text)) = &reach
            && *first <= *end
            && *p != *pool
        {
            w.problem(
                path,
                format!("{text} overlaps {other_text} of another pool ({other_path}); an address can be in one pool only"),
            );
        }
        if reach.as_ref().is_none_or(|r| *last > r.0) {
            reach = Some((*last, *pool, path.clone(), text.clone()));
        }
    }
}

/// How deeply flow collections nest, outside quoted scalars and comments, and the line of the
/// deepest. An over-estimate at worst (a plain scalar holding brackets counts them).
fn flow_depth(text: &str) -> (usize, usize) {
    let (mut depth, mut max, mut line, mut at_line) = (0usize, 0usize, 1usize, 1usize);
    let mut quote: Option<char> = None;
    let mut prev = '\n';
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match quote {
            Some('\'') if c == '\'' => quote = None,
            Some('"') if c == '\\' => {
                chars.next();
            }
            Some('"') if c == '"' => quote = None,
            Some(_) => {}
            None => match c {
                '#' if prev.is_whitespace() => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            line += 1;
                            break;
                        }
                    }
                }
                '\'' | '"' if prev.is_whitespace() || "[{,:".contains(prev) => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    if depth > max {
                        (max, at_line) = (depth, line);
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = c;
    }
    (max, at_line)
}

/// Read a scenario, ignoring fields it does not know.
pub fn parse(text: &str) -> Result<Scenario, Vec<Problem>> {
    parse_checked(text, false).map(|(s, _)| s)
}

/// Read a scenario: it and the warnings (unknown fields, ignored), or every problem (with the
/// warnings after them). With `strict`, every warning is a problem.
pub fn parse_checked(text: &str, strict: bool) -> Result<(Scenario, Vec<Problem>), Vec<Problem>> {
    let doc = |message: String, line: Option<usize>| {
        vec![Problem {
            path: "(document)".into(),
            message,
            line,
        }]
    };
    if text.len() > MAX_INPUT {
        return Err(doc(
            format!("{} bytes; a scenario is at most {MAX_INPUT}", text.len()),
            None,
        ));
    }
    let (depth, line) = flow_depth(text);
    if depth > MAX_FLOW_DEPTH {
        return Err(doc(
            format!("[ and {{ nested {depth} deep; at most {MAX_FLOW_DEPTH}"),
            Some(line),
        ));
    }
    let root: Value = serde_yaml::from_str(text).map_err(|e| {
        vec![Problem {
            path: "(document)".into(),
            message: e.to_string(),
            line: e.location().map(|l| l.line()),
        }]
    })?;
    let mut w = Walker {
        problems: Vec::new(),
        warnings: Vec::new(),
        strict,
    };
    let scenario = walk(&mut w, &root);
    if strict {
        // `--strict`: whatever is worth a warning is a problem.
        w.problems.append(&mut w.warnings);
    }
    if w.problems.is_empty() {
        Ok((scenario, w.warnings))
    } else {
        w.problems.append(&mut w.warnings);
        Err(w.problems)
    }
}

/// One set of TLS settings at `path`, over `base` (a tenant's over the run's).
fn tls_settings(
    w: &mut Walker,
    m: &serde_yaml::Mapping,
    path: &str,
    base: &compose::tls::TlsSettings,
) -> compose::tls::TlsSettings {
    use compose::tls::TlsVersion;
    let mut s = base.clone();
    match get(m, "ca_file") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(files)) => {
            for (i, f) in files.iter().enumerate() {
                if let Some(f) = w.string(Some(f), &format!("{path}.ca_file[{i}]"), true) {
                    s.ca_files.push(f.into());
                }
            }
        }
        v => {
            if let Some(f) = w.string(v, &join(path, "ca_file"), false) {
                s.ca_files.push(f.into());
            }
        }
    }
    if let Some(b) = w.boolean(
        get(m, "insecure_skip_verify"),
        &join(path, "insecure_skip_verify"),
    ) {
        s.insecure = b;
    }
    let cert = w.string(get(m, "client_cert"), &join(path, "client_cert"), false);
    let key = w.string(get(m, "client_key"), &join(path, "client_key"), false);
    match (cert, key) {
        (Some(c), Some(k)) => s.client_identity = Some((c.into(), k.into())),
        (None, None) => {}
        (Some(_), None) => w.problem(&join(path, "client_key"), "required with client_cert"),
        (None, Some(_)) => w.problem(&join(path, "client_cert"), "required with client_key"),
    }
    for (field, slot) in [
        ("min_version", &mut s.min_version),
        ("max_version", &mut s.max_version),
    ] {
        if let Some(v) = w.string(get(m, field), &join(path, field), false) {
            match TlsVersion::parse(&v) {
                Some(v) => *slot = Some(v),
                None => w.problem(
                    &join(path, field),
                    format!("unknown TLS version {v:?} (expected \"1.2\" or \"1.3\")"),
                ),
            }
        }
    }
    if let (Some(min), Some(max)) = (s.min_version, s.max_version)
        && min > max
    {
        w.problem(&join(path, "min_version"), "above max_version");
    }
    if let Some(n) = w.string(get(m, "server_name"), &join(path, "server_name"), false) {
        if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c == '/') {
            w.problem(
                &join(path, "server_name"),
                format!("not a host name: {n:?}"),
            );
        } else {
            s.server_name = Some(n);
        }
    }
    s
}

/// `tls:`: the run's TLS settings, and `tenants:` with per-tenant ones.
fn scenario_tls(w: &mut Walker, v: Option<&Value>) -> ScenarioTls {
    let mut out = ScenarioTls::default();
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return out;
    };
    let Some(m) = w.map(v, "tls", schema::fields::<schema::Tls>()) else {
        return out;
    };
    out.settings = tls_settings(w, m, "tls", &compose::tls::TlsSettings::default());
    if let Some(t) = get(m, "tenants").filter(|t| !t.is_null()) {
        let Some(tm) = t.as_mapping() else {
            w.problem(
                "tls.tenants",
                "expected a mapping of tenant to TLS settings",
            );
            return out;
        };
        for (k, v) in tm {
            let tenant = k.as_str().unwrap_or_default().to_string();
            let path = join("tls.tenants", &tenant);
            if let Some(m) = w.map(v, &path, schema::fields::<schema::TlsSettings>()) {
                let s = tls_settings(w, m, &path, &out.settings);
                out.tenants.push((tenant, s));
            }
        }
    }
    out
}

/// `thresholds:`: metric (with an optional `{tag:value}` filter) -> a list of expressions,
/// each a string or `{threshold, abort_on_fail, delay_abort_eval}` (k6's camelCase names too).
fn thresholds(w: &mut Walker, v: Option<&Value>) -> Vec<crate::format::threshold::Threshold> {
    let mut out = Vec::new();
    let Some(m) = v.and_then(|v| {
        if v.is_null() {
            return None;
        }
        let m = v.as_mapping();
        if m.is_none() {
            w.problem("thresholds", "expected a mapping of metric to expressions");
        }
        m
    }) else {
        return out;
    };
    for (k, exprs) in m {
        let name = k.as_str().unwrap_or_default().to_string();
        let path = join("thresholds", &name);
        let (metric, action, tenant) = match crate::format::threshold::parse_name(&name) {
            Ok(x) => x,
            Err(e) => {
                w.problem(&path, e);
                continue;
            }
        };
        let items: Vec<Value> = match exprs {
            Value::Sequence(s) => s.clone(),
            other => vec![other.clone()],
        };
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}[{i}]");
            let (expr, abort, delay) = match item {
                Value::String(e) => (Some(e.clone()), false, Duration::ZERO),
                Value::Mapping(_) => {
                    let Some(im) = w.map(item, &ip, schema::fields::<schema::Threshold>()) else {
                        continue;
                    };
                    let e = w.string(get(im, "threshold"), &join(&ip, "threshold"), true);
                    let abort = w
                        .boolean(
                            get(im, "abort_on_fail").or(get(im, "abortOnFail")),
                            &join(&ip, "abort_on_fail"),
                        )
                        .unwrap_or(false);
                    let delay = w
                        .duration(
                            get(im, "delay_abort_eval").or(get(im, "delayAbortEval")),
                            &join(&ip, "delay_abort_eval"),
                        )
                        .unwrap_or_default();
                    (e, abort, delay)
                }
                _ => {
                    w.problem(&ip, "expected an expression such as \"p(95)<500\"");
                    continue;
                }
            };
            let Some(expr) = expr else { continue };
            match crate::format::threshold::parse_expr(metric, &expr) {
                Ok((agg, op, value)) => out.push(crate::format::threshold::Threshold {
                    name: name.clone(),
                    metric,
                    action: action.clone(),
                    tenant: tenant.clone(),
                    expr,
                    agg,
                    op,
                    value,
                    abort_on_fail: abort,
                    delay_abort: delay,
                }),
                Err(e) => w.problem(&ip, e),
            }
        }
    }
    out
}

fn regex_at(w: &mut Walker, text: &str, path: &str) -> Option<regex::Regex> {
    // A size limit keeps a hostile pattern from taking the process's memory.
    match regex::RegexBuilder::new(text).size_limit(1 << 20).build() {
        Ok(r) => Some(r),
        Err(e) => {
            w.problem(path, format!("bad regular expression: {e}"));
            None
        }
    }
}

/// How a header or JSON value is matched: `equals`, `contains`, `matches` (a regex), or
/// present when none is given.
fn matcher(w: &mut Walker, m: &serde_yaml::Mapping, path: &str) -> Option<Match> {
    if let Some(v) = w.string(get(m, "equals"), &join(path, "equals"), false) {
        return Some(Match::Equals(v));
    }
    if let Some(v) = w.string(get(m, "contains"), &join(path, "contains"), false) {
        return Some(Match::Contains(v));
    }
    if let Some(v) = w.string(get(m, "matches"), &join(path, "matches"), false) {
        return regex_at(w, &v, &join(path, "matches")).map(Match::Matches);
    }
    Some(Match::Exists)
}

/// One entry of an action's `checks`: exactly one of `status`, `body_contains`,
/// `body_matches`, `header`, `json`, `duration`, with an optional `name`.
fn check(w: &mut Walker, v: &Value, path: &str) -> Option<Check> {
    const KINDS: [&str; 6] = [
        "status",
        "body_contains",
        "body_matches",
        "header",
        "json",
        "duration",
    ];
    let m = w.map(v, path, schema::fields::<schema::Check>())?;
    let kinds = KINDS;
    let given: Vec<&str> = kinds.into_iter().filter(|k| get(m, k).is_some()).collect();
    if given.len() != 1 {
        w.problem(
            path,
            format!(
                "give exactly one of {} (got {})",
                kinds.join(", "),
                given.len()
            ),
        );
        return None;
    }
    let what = given[0];
    let at = join(path, what);
    let kind = match what {
        "status" => {
            let codes: Vec<Value> = match get(m, "status") {
                Some(Value::Sequence(s)) => s.clone(),
                Some(other) => vec![other.clone()],
                None => vec![],
            };
            let mut out = Vec::new();
            for c in &codes {
                match c.as_u64().filter(|c| (100..=999).contains(c)) {
                    Some(c) => out.push(c as u16),
                    None => w.problem(&at, "expected a status code or a list of them"),
                }
            }
            CheckKind::Status(out)
        }
        "body_contains" => CheckKind::BodyContains(w.string(get(m, what), &at, true)?),
        "body_matches" => {
            let text = w.string(get(m, what), &at, true)?;
            CheckKind::BodyMatches(regex_at(w, &text, &at)?)
        }
        "header" => {
            let h = w.string(get(m, what), &at, true)?;
            CheckKind::Header(h, matcher(w, m, path)?)
        }
        "json" => {
            let p = w.string(get(m, what), &at, true)?;
            if !p.is_empty() && !p.starts_with('/') {
                w.problem(&at, format!("a JSON pointer starts with / (got {p:?})"));
                return None;
            }
            CheckKind::Json(p, matcher(w, m, path)?)
        }
        _ => {
            let text = w.string(get(m, what), &at, true)?;
            let t = text.trim();
            let op = ["<=", ">=", "<", ">"]
                .into_iter()
                .find(|o| t.starts_with(o));
            let parsed = op.and_then(|op| {
                let d = parse_duration(t[op.len()..].trim())?;
                Some((op, d.as_secs_f64() * 1000.0))
            });
            match parsed {
                Some((op, ms)) => CheckKind::Duration(op, ms),
                None => {
                    w.problem(&at, format!("expected e.g. \"<500ms\", got {text:?}"));
                    return None;
                }
            }
        }
    };
    let name = w
        .string(get(m, "name"), &join(path, "name"), false)
        .unwrap_or_else(|| {
            let detail = match get(m, what) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => serde_yaml::to_string(v)
                    .unwrap_or_default()
                    .trim()
                    .replace('\n', " "),
                None => String::new(),
            };
            format!("{what} {detail}")
        });
    Some(Check { name, kind })
}

/// Resource properties that name other resources' properties (`url: "{{base.scheme}}://..."`)
/// are resolved to a fixed point, a bounded number of rounds; what still names one after that
/// is a cycle, reported with the properties in it. Other templates (`{{user.id}}`) stay for
/// the run.
fn resolve_properties(w: &mut Walker, resources: &mut [Resource]) -> Vec<Cycle> {
    let mut cycles = Vec::new();
    const ROUNDS: usize = 32;
    let refers = |text: &str, resources: &[Resource]| -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("{{") {
            let after = &rest[i + 2..];
            let Some(j) = after.find("}}") else { break };
            let name = after[..j].trim();
            if let Some((r, p)) = name.split_once('.')
                && resources.iter().any(|x| x.id == r)
            {
                out.push(format!("{r}.{p}"));
            }
            rest = &after[j + 2..];
        }
        out
    };
    // A property may expand to at most a template's length: references that multiply (a
    // thousand of one that holds a thousand of another) stop there, refused with the path.
    let mut too_big: BTreeSet<(usize, String)> = BTreeSet::new();
    for _ in 0..ROUNDS {
        let mut changed = false;
        let snapshot: Vec<Resource> = resources.to_vec();
        for (i, r) in resources.iter_mut().enumerate() {
            for (k, value) in r.properties.iter_mut() {
                if too_big.contains(&(i, k.clone())) {
                    continue;
                }
                for name in refers(value, &snapshot) {
                    let (rid, prop) = name.split_once('.').unwrap_or_default();
                    let target = snapshot
                        .iter()
                        .find(|x| x.id == rid)
                        .and_then(|x| x.properties.get(prop));
                    // Only a resolved value is put in, so a round never copies a reference.
                    let Some(v) = target.filter(|v| refers(v, &snapshot).is_empty()) else {
                        continue;
                    };
                    for pattern in [format!("{{{{{name}}}}}"), format!("{{{{ {name} }}}}")] {
                        let n = value.matches(&pattern).count();
                        if n == 0 {
                            continue;
                        }
                        let grown = (value.len() - n * pattern.len())
                            .saturating_add(n.saturating_mul(v.len()));
                        if grown > template::MAX_LEN {
                            too_big.insert((i, k.clone()));
                            break;
                        }
                        *value = value.replace(&pattern, v);
                        changed = true;
                    }
                    if too_big.contains(&(i, k.clone())) {
                        break;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    for (i, k) in &too_big {
        w.problem(
            &format!("workbook.resources[{i}].properties.{k}"),
            format!(
                "expands to more than {} bytes (its references multiply)",
                template::MAX_LEN
            ),
        );
    }
    let snapshot: Vec<Resource> = resources.to_vec();
    // What reads, at any depth, a property too big to expand is told once, there.
    let reads = |set: &BTreeSet<(usize, String)>, names: &[String]| {
        names.iter().any(|n| {
            let (rid, prop) = n.split_once('.').unwrap_or_default();
            snapshot
                .iter()
                .position(|x| x.id == rid)
                .is_some_and(|j| set.contains(&(j, prop.to_string())))
        })
    };
    let mut blocked = too_big.clone();
    loop {
        let before = blocked.len();
        for (i, r) in snapshot.iter().enumerate() {
            for (k, v) in &r.properties {
                if reads(&blocked, &refers(v, &snapshot)) {
                    blocked.insert((i, k.clone()));
                }
            }
        }
        if blocked.len() == before {
            break;
        }
    }
    for (i, r) in snapshot.iter().enumerate() {
        for (k, v) in &r.properties {
            if blocked.contains(&(i, k.clone())) {
                continue;
            }
            let mut names = refers(v, &snapshot);
            names.sort();
            names.dedup();
            if names.is_empty() {
                continue;
            }
            let path = format!("workbook.resources[{i}].properties.{k}");
            let missing: Vec<&String> = names
                .iter()
                .filter(|n| {
                    let (rid, prop) = n.split_once('.').unwrap_or_default();
                    !snapshot
                        .iter()
                        .any(|x| x.id == rid && x.properties.contains_key(prop))
                })
                .collect();
            if let Some(m) = missing.first() {
                w.problem(&path, format!("{{{{{m}}}}}: no such property"));
            } else {
                cycles.push(Cycle {
                    path,
                    property: format!("{}.{k}", r.id),
                    message: format!(
                        "circular reference: {}.{k} -> {} never resolves",
                        r.id,
                        names.join(", ")
                    ),
                });
            }
        }
    }
    cycles
}

/// A property whose references never resolve: a problem when a template of an action or an
/// edge reads it, a warning otherwise (the original runs such a file: its
/// `http_circular_ref` scenario reads none of them).
struct Cycle {
    path: String,
    property: String,
    message: String,
}

fn judge_cycles(w: &mut Walker, cycles: Vec<Cycle>, read: &BTreeSet<String>) {
    for c in cycles {
        if read.contains(&c.property) {
            w.problem(&c.path, format!("{}, and a template reads it", c.message));
        } else {
            w.warnings.push(Problem {
                path: c.path,
                message: format!(
                    "{}; no template reads it, so it is left as it is",
                    c.message
                ),
                line: None,
            });
        }
    }
}

/// A UDP action's `with`: `target` (`host:port`) or `peer_ip` and `peer_port` (else the one
/// `udp-endpoint` resource's), `payload` or `payload_hex`, `bind_ip`, `timeout_ms` (the
/// original's `timeout-ms` too, or `timeout` as a duration; 3 s by default), `retry: {max,
/// backoff_ms}` (or `retries`), `expect: {equals, contains, matches, payload_hex, len}`,
/// `max_reply`.
fn udp_with(
    w: &mut Walker,
    v: Option<&Value>,
    path: &str,
    reply: bool,
    resources: &[Resource],
) -> Option<Udp> {
    let Some(v) = v else {
        w.problem(path, "required (a target and a payload)");
        return None;
    };
    let m = w.map(v, path, schema::fields::<schema::UdpWith>())?;
    let at = |k: &str| join(path, k);
    let target = match (
        w.string(get(m, "target"), &at("target"), false),
        w.string(get(m, "peer_ip"), &at("peer_ip"), false),
        w.string(get(m, "peer_port"), &at("peer_port"), false),
    ) {
        (Some(t), None, None) => UdpTarget::Addr(t),
        (None, Some(ip), Some(port)) => UdpTarget::Parts(ip, port),
        (None, None, None) => {
            let eps: Vec<&Resource> = resources
                .iter()
                .filter(|r| r.kind.as_deref() == Some("udp-endpoint"))
                .collect();
            match eps[..] {
                [r] => UdpTarget::Parts(
                    format!("{{{{{}.peer_ip}}}}", r.id),
                    format!("{{{{{}.peer_port}}}}", r.id),
                ),
                _ => {
                    w.problem(
                        &at("target"),
                        format!(
                            "required: host:port, or peer_ip and peer_port ({} udp-endpoint \
                             resources to take it from; one is needed)",
                            eps.len()
                        ),
                    );
                    return None;
                }
            }
        }
        _ => {
            w.problem(&at("target"), "either target, or peer_ip and peer_port");
            return None;
        }
    };
    // A target without templates is checked now.
    let fixed = match &target {
        UdpTarget::Addr(t) if !t.contains("{{") => Some(t.parse::<std::net::SocketAddr>().is_ok()),
        UdpTarget::Parts(ip, port) if !ip.contains("{{") && !port.contains("{{") => Some(
            ip.trim().parse::<std::net::IpAddr>().is_ok() && port.trim().parse::<u16>().is_ok(),
        ),
        _ => None,
    };
    if fixed == Some(false) {
        w.problem(
            &at("target"),
            "not an address: host:port with an IP literal ([::1]:7 for IPv6), port 0-65535",
        );
    }
    let payload = match (
        w.string(get(m, "payload"), &at("payload"), false),
        w.string(get(m, "payload_hex"), &at("payload_hex"), false),
    ) {
        (Some(t), None) => UdpPayload::Text(t),
        (None, Some(h)) => UdpPayload::Bytes(hex_at(w, &h, &at("payload_hex"))?),
        (None, None) => UdpPayload::Bytes(Vec::new()),
        (Some(_), Some(_)) => {
            w.problem(&at("payload"), "either payload or payload_hex");
            return None;
        }
    };
    let bind_ip = w.string(get(m, "bind_ip"), &at("bind_ip"), false);
    let mut timeout_ms = 3000;
    for key in ["timeout_ms", "timeout-ms"] {
        if let Some(ms) = w.uint(get(m, key), &at(key)) {
            timeout_ms = ms;
        }
    }
    if let Some(d) = w.duration(get(m, "timeout"), &at("timeout")) {
        timeout_ms = d.as_millis() as u64;
    }
    if timeout_ms == 0 || timeout_ms > 3_600_000 {
        w.problem(&at("timeout_ms"), "from 1 ms to an hour");
    }
    let (mut retries, mut backoff_ms) = (0u64, 0u64);
    if let Some(n) = w.uint(get(m, "retries"), &at("retries")) {
        retries = n;
    }
    if let Some(r) =
        get(m, "retry").and_then(|r| w.map(r, &at("retry"), schema::fields::<schema::UdpRetry>()))
    {
        // The original's max may be negative (none).
        if let Some(Value::Number(n)) = get(r, "max") {
            retries = n.as_i64().unwrap_or(0).max(0) as u64;
        } else if get(r, "max").is_some() {
            w.problem(&at("retry.max"), "expected a number");
        }
        backoff_ms = w
            .uint(get(r, "backoff_ms"), &at("retry.backoff_ms"))
            .unwrap_or(0);
    }
    if retries > 100 || backoff_ms > 600_000 {
        w.problem(&at("retry"), "at most 100 retries and 10 minutes between");
    }
    let expect = match get(m, "expect") {
        None | Some(Value::Null) => UdpExpect::default(),
        Some(e) => {
            let em = w.map(e, &at("expect"), schema::fields::<schema::UdpExpect>())?;
            udp_expect(w, em, &at("expect"))?
        }
    };
    if !reply && (expect.text.is_some() || expect.bytes.is_some() || expect.len.is_some()) {
        w.problem(
            &at("expect"),
            "udp.send waits for no reply (use udp.send-reply)",
        );
    }
    let max_reply = w
        .uint(get(m, "max_reply"), &at("max_reply"))
        .unwrap_or(65_535)
        .clamp(1, 65_535) as u32;
    Some(Udp {
        reply,
        target,
        payload,
        bind_ip,
        timeout_ms: timeout_ms.clamp(1, 3_600_000),
        retries: retries.min(100) as u32,
        backoff_ms: backoff_ms.min(600_000),
        expect,
        max_reply,
    })
}

/// `{equals | contains | matches, payload_hex, len}` of a reply.
fn udp_expect(w: &mut Walker, m: &serde_yaml::Mapping, path: &str) -> Option<UdpExpect> {
    let text = match matcher(w, m, path)? {
        Match::Exists => None,
        other => Some(other),
    };
    let bytes = match w.string(get(m, "payload_hex"), &join(path, "payload_hex"), false) {
        Some(h) => Some(hex_at(w, &h, &join(path, "payload_hex"))?),
        None => None,
    };
    let len = w
        .uint(get(m, "len"), &join(path, "len"))
        .map(|n| n as usize);
    Some(UdpExpect { text, bytes, len })
}

/// Hex digits (spaces and `:` between bytes allowed) as bytes.
fn hex_at(w: &mut Walker, text: &str, path: &str) -> Option<Vec<u8>> {
    // `0x` before the digits, in either case, as the original's matcher trims it.
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: Vec<u8> = t
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'-'))
        .collect();
    let value = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes: Option<Vec<u8>> = digits
        .len()
        .is_multiple_of(2)
        .then(|| {
            digits
                .chunks(2)
                .map(|p| Some(value(p[0])? << 4 | value(p[1])?))
                .collect()
        })
        .flatten();
    if bytes.is_none() {
        w.problem(path, format!("not hex bytes: {text:?}"));
    }
    bytes
}

/// `with.dynamic_tasks`: `[{id, action_id, kind: action|end, outgoing: [{target, label}]}]`.
fn dynamic_tasks(w: &mut Walker, v: Option<&Value>, path: &str) -> Vec<DynamicTask> {
    let mut out = Vec::new();
    let items = w.list(v, path);
    if items.len() > MAX_DYNAMIC {
        w.warnings.push(Problem {
            path: path.to_string(),
            message: format!(
                "{} tasks; the first {MAX_DYNAMIC} run (as the original drains at most {MAX_DYNAMIC})",
                items.len()
            ),
            line: None,
        });
    }
    for (i, t) in items.iter().enumerate() {
        let tp = format!("{path}[{i}]");
        let Some(m) = w.map(t, &tp, schema::fields::<schema::DynamicTask>()) else {
            continue;
        };
        let id = w
            .string(get(m, "id"), &join(&tp, "id"), true)
            .unwrap_or_default();
        if let Err(e) = template::check(&id) {
            w.problem(&join(&tp, "id"), e);
        }
        let action = w.string(get(m, "action_id"), &join(&tp, "action_id"), false);
        let action = match w
            .string(get(m, "kind"), &join(&tp, "kind"), false)
            .as_deref()
        {
            None | Some("action") => {
                if action.is_none() {
                    w.problem(&join(&tp, "action_id"), "required (kind action)");
                }
                action
            }
            Some("end") => None,
            Some(other) => {
                w.problem(
                    &join(&tp, "kind"),
                    format!("unknown kind {other:?} (action, end)"),
                );
                None
            }
        };
        for (j, o) in w
            .list(get(m, "outgoing"), &join(&tp, "outgoing"))
            .iter()
            .enumerate()
        {
            let op = format!("{tp}.outgoing[{j}]");
            if let Some(om) = w.map(o, &op, schema::fields::<schema::Outgoing>()) {
                w.string(get(om, "target"), &join(&op, "target"), true);
                w.string(get(om, "label"), &join(&op, "label"), false);
            }
        }
        out.push(DynamicTask { id, action });
    }
    out.truncate(MAX_DYNAMIC);
    out
}

/// An action's `with` checked by the executor's own parameter rules (`http_core::params`, the
/// code the http-actions component runs), as far as it is known before the run: templates over
/// resources are rendered; the rest (`{{user.allocated_ip}}`, exports) stand in as `1`, and a
/// `url`, `bind_ip` or `release` that is a template from its start is left to the run.
fn check_with(
    w: &mut Walker,
    path: &str,
    id: &str,
    call: &str,
    with: &serde_json::Value,
    vars: &template::Vars,
) {
    use http_core::Method;
    let method = match call.to_ascii_lowercase().as_str() {
        "get" => Method::Get,
        "post" => Method::Post,
        "put" => Method::Put,
        "delete" => Method::Delete,
        "patch" => Method::Patch,
        "head" => Method::Head,
        "options" => Method::Options,
        _ => return,
    };
    fn known(v: &serde_json::Value, vars: &template::Vars) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) if s.contains("{{") => {
                serde_json::Value::String(template::render(s, vars).unwrap_or_else(|_| {
                    let mut out = String::new();
                    let mut rest = s.as_str();
                    while let Some(i) = rest.find("{{") {
                        out.push_str(&rest[..i]);
                        out.push('1');
                        rest = rest[i..].find("}}").map_or("", |j| &rest[i + j + 2..]);
                    }
                    out + rest
                }))
            }
            serde_json::Value::Array(a) => a.iter().map(|x| known(x, vars)).collect(),
            serde_json::Value::Object(o) => {
                o.iter().map(|(k, x)| (k.clone(), known(x, vars))).collect()
            }
            other => other.clone(),
        }
    }
    let Some(o) = with.as_object() else { return };
    let mut checked = serde_json::Map::new();
    for (k, v) in o {
        // `timeout` is the host's (checked above); it becomes `timeouts.total_ms`.
        if k == "timeout" {
            continue;
        }
        let dynamic = v.as_str().is_some_and(|s| {
            s.trim_start().starts_with("{{") && template::render(s, vars).is_err()
        });
        match k.as_str() {
            "url" if dynamic => {
                checked.insert(k.clone(), "http://127.0.0.1/".into());
            }
            "bind_ip" | "release" if dynamic => {}
            _ => {
                checked.insert(k.clone(), known(v, vars));
            }
        }
    }
    let text = serde_json::Value::Object(checked).to_string();
    if let Err(e) = http_core::params::parse(id, method, &text) {
        let field = if e.field == "with-params" {
            join(path, "with")
        } else {
            format!("{path}.with.{}", e.field)
        };
        w.problem(&field, e.message);
    }
}

/// Every name a template or condition reads should be something the run can have: a
/// resource's property, `user.{id,tenant,allocated_ip,iteration}`, `tenant.id`, or an action's
/// `status_code`, `ok`, `error` or export. One that nothing declares is a warning, and is left
/// as written when rendered, as the original scheduler does (an action whose URL keeps one is
/// skipped, the original's dry run); the names are returned. A resource nothing reads is a
/// warning too.
fn check_references(
    w: &mut Walker,
    resources: &[Resource],
    actions: &[Action],
    nodes: &[Node],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut scopes: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    scopes.insert("user", ["id", "tenant", "allocated_ip", "iteration"].into());
    scopes.insert("tenant", ["id"].into());
    for r in resources {
        scopes.insert(&r.id, r.properties.keys().map(String::as_str).collect());
    }
    for a in actions {
        let mut names: BTreeSet<&str> = ["status_code", "ok", "error"].into();
        names.extend(a.exports.iter().map(|e| e.name.as_str()));
        scopes.insert(&a.id, names);
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    // Every name an action or an edge reads.
    let mut read: BTreeSet<String> = BTreeSet::new();
    let mut undeclared = BTreeSet::new();
    let mut check = |w: &mut Walker, path: &str, names: Vec<String>| {
        for n in names {
            let (scope, name) = n.split_once('.').unwrap_or((&n, ""));
            used.insert(scope.to_string());
            read.insert(n.clone());
            let why = match scopes.get(scope) {
                None => format!("no resource, action, user or tenant {scope:?}"),
                Some(known) if !known.contains(name) => format!(
                    "{scope:?} has no {name:?} (it has: {})",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                Some(_) => continue,
            };
            w.warnings.push(Problem {
                path: path.to_string(),
                message: format!("{n:?}: {why}; left as written, as the original does"),
                line: None,
            });
            undeclared.insert(n);
        }
    };
    for (i, a) in actions.iter().enumerate() {
        let mut strings = Vec::new();
        template::strings(&a.with, &format!("actions.actions[{i}].with"), &mut strings);
        // A UDP action's target taken from a udp-endpoint resource is a template too.
        let target = match a.udp.as_ref().map(|u| &u.target) {
            Some(UdpTarget::Parts(ip, port)) => vec![ip.as_str(), port.as_str()],
            Some(UdpTarget::Addr(t)) => vec![t.as_str()],
            None => vec![],
        };
        let at = format!("actions.actions[{i}].with.target");
        strings.extend(target.into_iter().map(|t| (at.clone(), t)));
        for (path, text) in strings {
            if let Ok(names) = template::names(text) {
                check(w, &path, names);
            }
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        for (j, e) in n.edges.iter().enumerate() {
            if let Some(c) = e.condition()
                && let Ok(names) = template::condition_names(c)
            {
                check(
                    w,
                    &format!("workflows.nodes[{i}].edges[{j}].trigger.condition"),
                    names,
                );
            }
        }
    }
    // Properties read by other properties count as read.
    for r in resources {
        for v in r.properties.values() {
            for n in template::names(v).unwrap_or_default() {
                used.insert(n.split_once('.').map_or(n.clone(), |(s, _)| s.to_string()));
            }
        }
    }
    for (i, r) in resources.iter().enumerate() {
        if !used.contains(&r.id) {
            w.warnings.push(Problem {
                path: format!("workbook.resources[{i}]"),
                message: format!("resource {:?} is not used by any template", r.id),
                line: None,
            });
        }
    }
    (undeclared, read)
}

/// A rate: `50/s`, `600/m`, `1/h`, or a number per second.
fn rate(w: &mut Walker, v: Option<&Value>, path: &str) -> Option<f64> {
    let text = w.string(v, path, true)?;
    let t = text.trim();
    let (n, per) = match t.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some((n, "h")) => (n, 3600.0),
        Some(_) => ("x", 1.0),
        None => (t, 1.0),
    };
    let r = n
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n / per)
        .filter(|r| (0.0..=MAX_RATE).contains(r));
    if r.is_none() {
        w.problem(
            path,
            format!("bad rate {text:?} (e.g. 50/s, 600/m; at most 1000000/s)"),
        );
    }
    r
}

/// `load.arrival_rate`: `{rate, duration}` or `{stages: [{target, duration}], start_rate}`,
/// with `pre_allocated_users`, `max_users` and `tenant_id`.
fn arrival_rate(w: &mut Walker, v: &Value) -> Option<ArrivalRate> {
    let p = "load.arrival_rate";
    let m = w.map(v, p, schema::fields::<schema::ArrivalRate>())?;
    let (start_rate, stages) = if get(m, "stages").is_some() {
        let start = if get(m, "start_rate").is_some() {
            rate(w, get(m, "start_rate"), &join(p, "start_rate"))?
        } else {
            0.0
        };
        let mut stages = Vec::new();
        for (i, st) in w
            .list(get(m, "stages"), &join(p, "stages"))
            .iter()
            .enumerate()
        {
            let sp = format!("{p}.stages[{i}]");
            let Some(sm) = w.map(st, &sp, schema::fields::<schema::RateStage>()) else {
                continue;
            };
            let target = rate(w, get(sm, "target"), &join(&sp, "target"));
            let d = w.duration(get(sm, "duration"), &join(&sp, "duration"));
            if d.is_none() && get(sm, "duration").is_none() {
                w.problem(&join(&sp, "duration"), "required");
            }
            if let (Some(t), Some(d)) = (target, d) {
                stages.push((t, d));
            }
        }
        if stages.is_empty() {
            w.problem(&join(p, "stages"), "at least one stage is required");
            return None;
        }
        (start, stages)
    } else {
        let r = rate(w, get(m, "rate"), &join(p, "rate"))?;
        let Some(d) = w.duration(get(m, "duration"), &join(p, "duration")) else {
            w.problem(&join(p, "duration"), "required");
            return None;
        };
        (r, vec![(r, d)])
    };
    let pre = w
        .uint(
            get(m, "pre_allocated_users"),
            &join(p, "pre_allocated_users"),
        )
        .unwrap_or(10);
    let max = w
        .uint(get(m, "max_users"), &join(p, "max_users"))
        .unwrap_or(pre);
    if pre == 0 || max < pre || max > 100_000 {
        w.problem(
            p,
            "pre_allocated_users from 1, max_users from pre_allocated_users to 100000",
        );
        return None;
    }
    let tenant = w.string(get(m, "tenant_id"), &join(p, "tenant_id"), false);
    Some(ArrivalRate {
        stages,
        start_rate,
        pre_allocated_users: pre as u32,
        max_users: max as u32,
        tenant,
    })
}

fn walk(w: &mut Walker, root: &Value) -> Scenario {
    let empty = serde_yaml::Mapping::new();
    let top = w
        .map(root, "", schema::fields::<schema::Scenario>())
        .unwrap_or(&empty);
    // Any 1.x, as the original reads it ("1", "1.0", "v1").
    if let Some(v) = w.string(get(top, "version"), "version", false)
        && v.trim_start_matches(['v', 'V']).split('.').next() != Some("1")
    {
        w.problem(
            "version",
            format!("unsupported version {v:?} (expected 1.x, such as \"1.0\" or \"v1\")"),
        );
    }
    let name = w
        .string(get(top, "name"), "name", false)
        .unwrap_or_else(|| "scenario".into());

    // workbook
    let mut pools = Vec::new();
    let mut cycles = Vec::new();
    let mut resources = Vec::new();
    let mut all_ranges = Vec::new();
    if let Some(wb) = get(top, "workbook")
        .and_then(|v| w.map(v, "workbook", schema::fields::<schema::Workbook>()))
    {
        for (i, p) in w
            .list(get(wb, "ip_pools"), "workbook.ip_pools")
            .iter()
            .enumerate()
        {
            let path = format!("workbook.ip_pools[{i}]");
            let Some(m) = w.map(p, &path, schema::fields::<schema::IpPool>()) else {
                continue;
            };
            let id = w
                .string(get(m, "id"), &join(&path, "id"), true)
                .unwrap_or_default();
            let pname = w
                .string(get(m, "name"), &join(&path, "name"), false)
                .unwrap_or_else(|| id.clone());
            let reserve = w
                .boolean(
                    get(m, "reserve_network_broadcast"),
                    &join(&path, "reserve_network_broadcast"),
                )
                .unwrap_or(false);
            let mut ranges = Vec::new();
            let rpath = join(&path, "ranges");
            let items = w.list(get(m, "ranges"), &rpath);
            if items.is_empty() {
                w.problem(&rpath, "at least one range is required");
            }
            for (j, r) in items.iter().enumerate() {
                let rp = format!("{rpath}[{j}]");
                if let Some(text) = w.string(Some(r), &rp, true) {
                    match check_cidr(&text, reserve) {
                        Ok((first, last)) => all_ranges.push((first, last, i, rp, text.clone())),
                        Err(e) => w.problem(&rp, e),
                    }
                    ranges.push(text);
                }
            }
            let spath = join(&path, "allocation_strategy");
            let strategy = match w
                .string(get(m, "allocation_strategy"), &spath, false)
                .as_deref()
            {
                None | Some("sequential") => Strategy::Sequential,
                Some("round_robin") => Strategy::RoundRobin,
                Some("random") => Strategy::Random,
                Some(other) => {
                    w.problem(
                        &spath,
                        format!("unknown strategy {other:?} (sequential, round_robin, random)"),
                    );
                    Strategy::Sequential
                }
            };
            if pools.iter().any(|p: &PoolSpec| p.id == id) {
                w.problem(&join(&path, "id"), format!("duplicate pool id {id:?}"));
            }
            let segment = w
                .uint(get(m, "segment"), &join(&path, "segment"))
                .map(|n| n.min(u64::from(u32::MAX)) as u32);
            pools.push(PoolSpec {
                id,
                name: pname,
                ranges,
                strategy,
                segment,
                reserve_network_broadcast: reserve,
            });
        }
        check_overlaps(w, &mut all_ranges);
        for (i, r) in w
            .list(get(wb, "resources"), "workbook.resources")
            .iter()
            .enumerate()
        {
            let path = format!("workbook.resources[{i}]");
            let Some(m) = w.map(r, &path, schema::fields::<schema::Resource>()) else {
                continue;
            };
            let id = w
                .string(get(m, "id"), &join(&path, "id"), true)
                .unwrap_or_default();
            if id == "user" || id == "tenant" {
                w.problem(
                    &join(&path, "id"),
                    format!("\"{id}\" is reserved for {{{{{id}.*}}}}"),
                );
            }
            let kind = w.string(get(m, "type"), &join(&path, "type"), false);
            let mut properties = BTreeMap::new();
            if let Some(pm) = get(m, "properties") {
                let ppath = join(&path, "properties");
                if let Some(pm) = pm.as_mapping() {
                    for (k, v) in pm {
                        let key = k.as_str().unwrap_or_default().to_string();
                        if let Some(val) = w.string(Some(v), &join(&ppath, &key), true) {
                            properties.insert(key, val);
                        }
                    }
                } else {
                    w.problem(&ppath, "expected a mapping");
                }
            }
            resources.push(Resource {
                id,
                kind,
                properties,
            });
        }
        cycles = resolve_properties(w, &mut resources);
    }

    // load
    let mut phases = Vec::new();
    let mut lifetime = Lifetime {
        mode: Mode::Once,
        iterations: 1,
        think_time: Duration::ZERO,
        duration: None,
    };
    let mut ip_binding = IpBinding {
        enabled: false,
        pool: None,
        strategy: BindStrategy::PerUser,
        release_on: ReleaseOn::UserExit,
        wait_on_exhaustion: false,
        wait_timeout: Duration::from_secs(30),
        fallback_pool: None,
    };
    let mut concurrency = Concurrency {
        max_users: None,
        spawn_rate: None,
        action_rate: None,
    };
    let mut arrival = None;
    let mut user_stages = None;
    match get(top, "load").and_then(|v| w.map(v, "load", schema::fields::<schema::Load>())) {
        None => w.problem("load", "required"),
        Some(load) => {
            if let Some(a) = get(load, "arrival_rate") {
                arrival = arrival_rate(w, a);
            }
            if get(load, "stages").is_some() {
                let mut stages = Vec::new();
                for (i, st) in w
                    .list(get(load, "stages"), "load.stages")
                    .iter()
                    .enumerate()
                {
                    let sp = format!("load.stages[{i}]");
                    let Some(sm) = w.map(st, &sp, schema::fields::<schema::Stage>()) else {
                        continue;
                    };
                    let target = w.uint(get(sm, "target"), &join(&sp, "target"));
                    let d = w.duration(get(sm, "duration"), &join(&sp, "duration"));
                    match (target, d) {
                        (Some(t), Some(d)) if t <= 100_000 => stages.push((t as u32, d)),
                        (Some(_), Some(_)) => {
                            w.problem(&join(&sp, "target"), "at most 100000 users")
                        }
                        _ => w.problem(&sp, "target (users) and duration are required"),
                    }
                }
                let start = w
                    .uint(get(load, "start_users"), "load.start_users")
                    .unwrap_or(0)
                    .min(100_000) as u32;
                if stages.is_empty() {
                    w.problem("load.stages", "at least one stage is required");
                } else {
                    user_stages = Some(UserStages {
                        start_users: start,
                        stages,
                        tenant: None,
                    });
                }
            }
            if let Some(ru) = get(load, "ramp_up")
                .and_then(|v| w.map(v, "load.ramp_up", schema::fields::<schema::RampUp>()))
            {
                for (i, p) in w
                    .list(get(ru, "phases"), "load.ramp_up.phases")
                    .iter()
                    .enumerate()
                {
                    let path = format!("load.ramp_up.phases[{i}]");
                    let Some(m) = w.map(p, &path, schema::fields::<schema::Phase>()) else {
                        continue;
                    };
                    let at = match get(m, "at_second") {
                        None => Duration::ZERO,
                        Some(Value::Number(n)) if n.as_f64().and_then(seconds).is_some() => {
                            n.as_f64().and_then(seconds).unwrap_or_default()
                        }
                        Some(_) => {
                            w.problem(
                                &join(&path, "at_second"),
                                "expected a number of seconds from 0 to 31536000 (a year)",
                            );
                            Duration::ZERO
                        }
                    };
                    let users = w
                        .uint(get(m, "spawn_users"), &join(&path, "spawn_users"))
                        .unwrap_or(0);
                    if users > 100_000 {
                        w.problem(
                            &join(&path, "spawn_users"),
                            "at most 100000 users per phase",
                        );
                    }
                    let tenant = w.string(get(m, "tenant_id"), &join(&path, "tenant_id"), false);
                    let pool = w.string(
                        get(m, "ip_pool_override"),
                        &join(&path, "ip_pool_override"),
                        false,
                    );
                    if let Some(p) = &pool
                        && !pools.iter().any(|x| &x.id == p)
                    {
                        w.problem(
                            &join(&path, "ip_pool_override"),
                            format!("no ip pool {p:?}"),
                        );
                    }
                    phases.push(Phase {
                        at,
                        users: users as u32,
                        tenant,
                        pool,
                    });
                }
            }
            if let Some(m) = get(load, "user_lifetime").and_then(|v| {
                w.map(
                    v,
                    "load.user_lifetime",
                    schema::fields::<schema::UserLifetime>(),
                )
            }) {
                lifetime.mode = match w
                    .string(get(m, "mode"), "load.user_lifetime.mode", false)
                    .as_deref()
                {
                    None | Some("once") => Mode::Once,
                    Some("loop") => Mode::Loop,
                    Some(other) => {
                        w.problem(
                            "load.user_lifetime.mode",
                            format!("unknown mode {other:?} (once, loop)"),
                        );
                        Mode::Once
                    }
                };
                let iterations = w
                    .uint(get(m, "iterations"), "load.user_lifetime.iterations")
                    .map(|n| n.min(u32::MAX as u64) as u32);
                lifetime.think_time = w
                    .duration(get(m, "think_time"), "load.user_lifetime.think_time")
                    .unwrap_or_default();
                lifetime.duration = w.duration(get(m, "duration"), "load.user_lifetime.duration");
                // Without a count, a loop with a duration loops until it ends.
                lifetime.iterations = match (iterations, lifetime.duration) {
                    (Some(n), _) => n,
                    (None, Some(_)) => 0,
                    (None, None) => {
                        if lifetime.mode == Mode::Loop && get(load, "stages").is_none() {
                            w.warnings.push(Problem {
                                path: "load.user_lifetime".into(),
                                message: "mode loop with neither iterations nor duration: each \
                                          user runs once (give iterations, or a duration)"
                                    .into(),
                                line: None,
                            });
                        }
                        1
                    }
                };
                if w.uint(
                    get(m, "max_concurrency"),
                    "load.user_lifetime.max_concurrency",
                )
                .is_some_and(|n| n > 1)
                {
                    w.warnings.push(Problem {
                        path: "load.user_lifetime.max_concurrency".into(),
                        message: "each user runs one task at a time here".into(),
                        line: None,
                    });
                }
                if lifetime.mode == Mode::Once {
                    lifetime.iterations = 1;
                }
            }
            // The original's UDP scenarios put user_resources at the top.
            let (ur_path, ur_value) =
                match (get(load, "user_resources"), get(top, "user_resources")) {
                    (Some(v), None) => ("load.user_resources", Some(v)),
                    (None, Some(v)) => ("user_resources", Some(v)),
                    (None, None) => ("load.user_resources", None),
                    (Some(v), Some(_)) => {
                        w.problem("user_resources", "given twice: here and in load");
                        ("load.user_resources", Some(v))
                    }
                };
            if let Some(ur) =
                ur_value.and_then(|v| w.map(v, ur_path, schema::fields::<schema::UserResources>()))
                && let Some(m) = get(ur, "ip_binding").and_then(|v| {
                    w.map(
                        v,
                        &join(ur_path, "ip_binding"),
                        schema::fields::<schema::IpBinding>(),
                    )
                })
            {
                let p = &join(ur_path, "ip_binding");
                ip_binding.enabled = w
                    .boolean(get(m, "enabled"), &join(p, "enabled"))
                    .unwrap_or(true);
                ip_binding.pool = w.string(get(m, "pool_id"), &join(p, "pool_id"), false);
                // The original looks the pool up only when the binding is enabled.
                if let Some(id) = ip_binding.pool.clone()
                    && ip_binding.enabled
                    && !pools.iter().any(|x| x.id == id)
                {
                    if id == HOST_POOL {
                        // The original's host resources pool: the host's own address.
                        w.warnings.push(Problem {
                            path: join(p, "pool_id"),
                            message: format!(
                                "{HOST_POOL:?} is not declared: users send from the host's own \
                                 address (the original's host resources pool)"
                            ),
                            line: None,
                        });
                        ip_binding.enabled = false;
                        ip_binding.pool = None;
                    } else {
                        w.problem(&join(p, "pool_id"), format!("no ip pool {id:?}"));
                    }
                }
                ip_binding.strategy = match w
                    .string(get(m, "strategy"), &join(p, "strategy"), false)
                    .as_deref()
                {
                    None | Some("per_user") => BindStrategy::PerUser,
                    Some("shared") => BindStrategy::Shared,
                    Some("per_task") => BindStrategy::PerTask,
                    Some(other) => {
                        w.problem(
                            &join(p, "strategy"),
                            format!("unknown strategy {other:?} (per_user, shared, per_task)"),
                        );
                        BindStrategy::PerUser
                    }
                };
                ip_binding.release_on = match w
                    .string(get(m, "release_on"), &join(p, "release_on"), false)
                    .as_deref()
                {
                    None | Some("user_exit") => ReleaseOn::UserExit,
                    Some("task_end") => ReleaseOn::TaskEnd,
                    Some(other) => {
                        w.problem(
                            &join(p, "release_on"),
                            format!("unknown value {other:?} (task_end, user_exit)"),
                        );
                        ReleaseOn::UserExit
                    }
                };
                ip_binding.wait_on_exhaustion = w
                    .boolean(get(m, "wait_on_exhaustion"), &join(p, "wait_on_exhaustion"))
                    .unwrap_or(false);
                if let Some(d) = w.duration(get(m, "wait_timeout"), &join(p, "wait_timeout")) {
                    ip_binding.wait_timeout = d;
                }
                if ip_binding.enabled
                    && ip_binding.pool.is_none()
                    && phases.iter().any(|ph| ph.pool.is_none())
                {
                    w.problem(&join(p, "pool_id"), "required when ip_binding is enabled (or give every phase an ip_pool_override)");
                }
            }
            if let Some(m) = get(load, "concurrency").and_then(|v| {
                w.map(
                    v,
                    "load.concurrency",
                    schema::fields::<schema::Concurrency>(),
                )
            }) {
                if let Some(n) = w.uint(
                    get(m, "max_concurrent_users"),
                    "load.concurrency.max_concurrent_users",
                ) {
                    if n == 0 || n > 100_000 {
                        w.problem(
                            "load.concurrency.max_concurrent_users",
                            "between 1 and 100000",
                        );
                    }
                    concurrency.max_users = Some(n.clamp(1, 100_000) as u32);
                }
                if let Some(s) = w.string(
                    get(m, "spawn_rate_limit"),
                    "load.concurrency.spawn_rate_limit",
                    false,
                ) {
                    let rate = s
                        .trim_end_matches("/s")
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (MIN_RATE..=MAX_RATE).contains(r));
                    if rate.is_none() {
                        w.problem(
                            "load.concurrency.spawn_rate_limit",
                            format!(
                                "bad rate {s:?} (use e.g. 100/s; from one a day, 0.0000116/s, to 1000000/s)"
                            ),
                        );
                    }
                    concurrency.spawn_rate = rate;
                }
                if get(m, "action_rate_limit").is_some_and(|v| !v.is_null()) {
                    let p = "load.concurrency.action_rate_limit";
                    concurrency.action_rate = rate(w, get(m, "action_rate_limit"), p);
                    if concurrency.action_rate.is_some_and(|r| r < MIN_RATE) {
                        w.problem(p, "at least one a day (0.0000116/s)");
                    }
                }
            }
            // The original's `capacity_management`, beside ip_binding: the same waiting (it
            // wins where both say), and a fallback pool.
            if let Some(m) = ur_value
                .and_then(Value::as_mapping)
                .and_then(|ur| get(ur, "capacity_management"))
                .and_then(|v| {
                    w.map(
                        v,
                        &join(ur_path, "capacity_management"),
                        schema::fields::<schema::CapacityManagement>(),
                    )
                })
            {
                let p = &join(ur_path, "capacity_management");
                if let Some(b) =
                    w.boolean(get(m, "wait_on_exhaustion"), &join(p, "wait_on_exhaustion"))
                {
                    ip_binding.wait_on_exhaustion = b;
                }
                if let Some(d) = w.duration(get(m, "wait_timeout"), &join(p, "wait_timeout")) {
                    ip_binding.wait_timeout = d;
                }
                ip_binding.fallback_pool =
                    w.string(get(m, "fallback_pool"), &join(p, "fallback_pool"), false);
                if let Some(id) = &ip_binding.fallback_pool
                    && ip_binding.enabled
                    && !pools.iter().any(|x| &x.id == id)
                {
                    w.problem(&join(p, "fallback_pool"), format!("no ip pool {id:?}"));
                }
            }
        }
    }
    if let Some(st) = &user_stages {
        if !phases.is_empty() || arrival.is_some() {
            w.problem(
                "load.stages",
                "give one load model: ramp_up phases, stages or arrival_rate",
            );
        }
        phases.push(Phase {
            at: Duration::ZERO,
            users: st.max_users(),
            tenant: None,
            pool: None,
        });
    } else if let Some(a) = &arrival {
        if !phases.is_empty() {
            w.problem(
                "load.arrival_rate",
                "give ramp_up phases (closed model) or arrival_rate (open model), not both",
            );
        }
        // The users of the open model, as phases: one tenant, spawned as iterations need them.
        phases.push(Phase {
            at: Duration::ZERO,
            users: a.max_users,
            tenant: a.tenant.clone(),
            pool: None,
        });
    } else if phases.is_empty() {
        w.problem("load.ramp_up.phases", "at least one phase is required");
    }
    let total: u64 = phases.iter().map(|p| u64::from(p.users)).sum();
    if total > MAX_TOTAL_USERS {
        w.problem(
            "load.ramp_up.phases",
            format!("{total} users in all; at most {MAX_TOTAL_USERS}"),
        );
    }
    if lifetime.mode == Mode::Loop && lifetime.iterations == 0 && lifetime.duration.is_none() {
        // Allowed: runs until Ctrl-C. Nothing to report.
    }

    // actions
    let mut actions = Vec::new();
    // What templates can know before the run: the resources' properties.
    let static_vars: template::Vars = resources
        .iter()
        .map(|r| (r.id.clone(), r.properties.clone()))
        .collect();
    if let Some(am) =
        get(top, "actions").and_then(|v| w.map(v, "actions", schema::fields::<schema::Actions>()))
    {
        for (i, a) in w
            .list(get(am, "actions"), "actions.actions")
            .iter()
            .enumerate()
        {
            let path = format!("actions.actions[{i}]");
            let Some(m) = w.map(a, &path, schema::fields::<schema::Action>()) else {
                continue;
            };
            let id = w
                .string(get(m, "id"), &join(&path, "id"), true)
                .unwrap_or_default();
            if actions.iter().any(|x: &Action| x.id == id) {
                w.problem(&join(&path, "id"), format!("duplicate action id {id:?}"));
            }
            let call = w
                .string(get(m, "call"), &join(&path, "call"), true)
                .unwrap_or_default();
            let udp_reply = match call.to_ascii_lowercase().as_str() {
                "udp.send-reply" | "udp-send-reply" => Some(true),
                "udp.send" | "udp-send" => Some(false),
                _ => None,
            };
            if !call.is_empty()
                && udp_reply.is_none()
                && !["get", "post", "put", "delete", "patch", "head", "options"]
                    .contains(&call.to_ascii_lowercase().as_str())
            {
                w.problem(
                    &join(&path, "call"),
                    format!(
                        "unknown call {call:?} (get, post, put, delete, patch, head, options, \
                         udp.send, udp.send-reply)"
                    ),
                );
            }
            let mut with = get(m, "with")
                .map(yaml_to_json)
                .unwrap_or(serde_json::Value::Null);
            // `dynamic_tasks` is the host's (the executor never sees it).
            let dynamic = dynamic_tasks(
                w,
                get(m, "with")
                    .and_then(Value::as_mapping)
                    .and_then(|wm| get(wm, "dynamic_tasks")),
                &join(&path, "with.dynamic_tasks"),
            );
            if let Some(o) = with.as_object_mut() {
                o.remove("dynamic_tasks");
            }
            let mut bad = Vec::new();
            template::check_json(&with, &join(&path, "with"), &mut bad);
            for (p, e) in bad {
                w.problem(&p, e);
            }
            if let Some(t) = with.get("timeout")
                && !template::has_template(t)
            {
                let text = match t {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if parse_duration(&text).is_none_or(|d| d.is_zero()) {
                    w.problem(
                        &join(&path, "with.timeout"),
                        format!("{text:?} is not a duration (5s, 500ms, 1m)"),
                    );
                }
            }
            let udp = udp_reply.and_then(|reply| {
                udp_with(w, get(m, "with"), &join(&path, "with"), reply, &resources)
            });
            match &with {
                _ if udp_reply.is_some() => {}
                serde_json::Value::Object(o) if o.contains_key("url") => {
                    check_with(w, &path, &id, &call, &with, &static_vars)
                }
                serde_json::Value::Object(_) => w.problem(&join(&path, "with.url"), "required"),
                _ => w.problem(&join(&path, "with"), "expected a mapping with at least url"),
            }
            let mut exports = Vec::new();
            for (j, e) in w
                .list(get(m, "export"), &join(&path, "export"))
                .iter()
                .enumerate()
            {
                let ep = format!("{path}.export[{j}]");
                let Some(em) = w.map(e, &ep, schema::fields::<schema::Export>()) else {
                    continue;
                };
                let name = w
                    .string(get(em, "name"), &join(&ep, "name"), true)
                    .unwrap_or_default();
                let kind = match w
                    .string(get(em, "type"), &join(&ep, "type"), false)
                    .as_deref()
                {
                    None | Some("content") if name == "status_code" => ExportKind::StatusCode,
                    // `assert`: the original declares it and never runs it; read as content.
                    None | Some("content") | Some("body") | Some("assert") => ExportKind::Body,
                    Some("status_code") | Some("status") => ExportKind::StatusCode,
                    Some("header") => ExportKind::Header(
                        w.string(get(em, "header"), &join(&ep, "header"), false)
                            .unwrap_or_else(|| name.clone()),
                    ),
                    Some("json") => match w.string(get(em, "pointer"), &join(&ep, "pointer"), true)
                    {
                        Some(p) if p.is_empty() || p.starts_with('/') => ExportKind::JsonPointer(p),
                        Some(p) => {
                            w.problem(
                                &join(&ep, "pointer"),
                                format!("a JSON pointer starts with / (got {p:?})"),
                            );
                            ExportKind::Body
                        }
                        None => ExportKind::Body,
                    },
                    Some(other) => {
                        w.problem(
                            &join(&ep, "type"),
                            format!(
                                "unknown export type {other:?} (content, status_code, header, json, assert)"
                            ),
                        );
                        ExportKind::Body
                    }
                };
                // `scope` is accepted as the original declares it; exports are the user's
                // (every later action of the user sees them) whatever it says.
                w.string(get(em, "scope"), &join(&ep, "scope"), false);
                let default = match get(em, "default") {
                    None | Some(Value::Null) => None,
                    Some(v) => w.string(Some(v), &join(&ep, "default"), false),
                };
                exports.push(Export {
                    name,
                    kind,
                    default,
                });
            }
            let mut checks = Vec::new();
            for (j, c) in w
                .list(get(m, "checks"), &join(&path, "checks"))
                .iter()
                .enumerate()
            {
                if let Some(c) = check(w, c, &format!("{path}.checks[{j}]")) {
                    checks.push(c);
                }
            }
            if udp_reply.is_some() {
                // A UDP reply has a body and a time, nothing else.
                for (j, c) in checks.iter().enumerate() {
                    if matches!(
                        c.kind,
                        CheckKind::Status(_) | CheckKind::Header(..) | CheckKind::Json(..)
                    ) {
                        w.problem(
                            &format!("{path}.checks[{j}]"),
                            "a UDP action takes body_contains, body_matches and duration checks",
                        );
                    }
                }
                for (j, e) in exports.iter().enumerate() {
                    if e.kind != ExportKind::Body {
                        w.problem(
                            &format!("{path}.export[{j}].type"),
                            "a UDP action exports its reply (type content)",
                        );
                    }
                }
            }
            actions.push(Action {
                id,
                call: call.to_ascii_lowercase(),
                with,
                exports,
                checks,
                dynamic,
                udp,
            });
        }
    }
    if actions.is_empty() {
        w.problem("actions.actions", "at least one action is required");
    }

    // workflows
    let mut nodes = Vec::new();
    let mut truncated = false;
    match get(top, "workflows")
        .and_then(|v| w.map(v, "workflows", schema::fields::<schema::Workflows>()))
    {
        None => w.problem("workflows", "required"),
        Some(wf) => {
            let items = w.list(get(wf, "nodes"), "workflows.nodes");
            truncated = items.len() > MAX_NODES;
            if truncated {
                // Refused before each node is read: the limit bounds the work too.
                w.problem(
                    "workflows.nodes",
                    format!("{} nodes; at most {MAX_NODES}", items.len()),
                );
            }
            let mut seen: HashSet<String> = HashSet::new();
            for (i, n) in items.iter().take(MAX_NODES).enumerate() {
                let path = format!("workflows.nodes[{i}]");
                let Some(m) = w.map(n, &path, schema::fields::<schema::Node>()) else {
                    continue;
                };
                // The original's scheduling priority: one node runs at a time per user here,
                // so it orders nothing; read for its type.
                if let Some(p) = get(m, "priority")
                    && !p.is_null()
                    && p.as_i64().is_none()
                {
                    w.problem(&join(&path, "priority"), "expected an integer");
                }
                let id = w
                    .string(get(m, "id"), &join(&path, "id"), true)
                    .unwrap_or_default();
                let kind = match w
                    .string(get(m, "type"), &join(&path, "type"), false)
                    .as_deref()
                {
                    Some("end") => NodeKind::End,
                    Some("wait") => {
                        let on = get(m, "on").and_then(|v| {
                            w.map(v, &join(&path, "on"), schema::fields::<schema::WaitOn>())
                        });
                        let mut wait = Wait {
                            action: None,
                            expect: UdpExpect::default(),
                        };
                        match on {
                            None => w.problem(&join(&path, "on"), "required (event and match)"),
                            Some(on) => {
                                let ev = w.string(get(on, "event"), &join(&path, "on.event"), true);
                                if let Some(ev) = ev
                                    && ev != "packet-rx"
                                    && ev != "packet.rx"
                                {
                                    w.problem(
                                        &join(&path, "on.event"),
                                        format!("unknown event {ev:?} (packet-rx)"),
                                    );
                                }
                                if let Some(mm) = get(on, "match").and_then(|v| {
                                    w.map(
                                        v,
                                        &join(&path, "on.match"),
                                        schema::fields::<schema::WaitMatch>(),
                                    )
                                }) {
                                    let mp = join(&path, "on.match");
                                    wait.action = w.string(
                                        get(mm, "action_id"),
                                        &join(&mp, "action_id"),
                                        false,
                                    );
                                    // The original's task and socket ids name its own objects.
                                    w.string(get(mm, "task_id"), &join(&mp, "task_id"), false);
                                    w.uint(get(mm, "sock_id"), &join(&mp, "sock_id"));
                                    if let Some(e) = udp_expect(w, mm, &mp) {
                                        wait.expect = e;
                                    }
                                }
                            }
                        }
                        if let Some(a) = &wait.action
                            && !actions
                                .iter()
                                .any(|x| x.id == *a && x.udp.as_ref().is_some_and(|u| u.reply))
                        {
                            w.problem(
                                &join(&path, "on.match.action_id"),
                                format!("no udp.send-reply action {a:?}"),
                            );
                        }
                        NodeKind::Wait(wait)
                    }
                    None | Some("action") => {
                        let a = w
                            .string(get(m, "action"), &join(&path, "action"), true)
                            .unwrap_or_default();
                        if !a.is_empty() && !actions.iter().any(|x| x.id == a) {
                            w.problem(&join(&path, "action"), format!("unknown action {a:?}"));
                        }
                        NodeKind::Action(a)
                    }
                    Some(other) => {
                        w.problem(
                            &join(&path, "type"),
                            format!("unknown node type {other:?} (action, wait, end)"),
                        );
                        NodeKind::End
                    }
                };
                let mut edges = Vec::new();
                for (j, e) in w
                    .list(get(m, "edges"), &join(&path, "edges"))
                    .iter()
                    .enumerate()
                {
                    let ep = format!("{path}.edges[{j}]");
                    let Some(em) = w.map(e, &ep, schema::fields::<schema::Edge>()) else {
                        continue;
                    };
                    let to = w
                        .string(get(em, "to"), &join(&ep, "to"), true)
                        .unwrap_or_default();
                    let trigger = get(em, "trigger").map(|t| trigger(w, t, &ep));
                    w.string(get(em, "label"), &join(&ep, "label"), false);
                    edges.push(Edge { to, trigger });
                }
                if !seen.insert(id.clone()) {
                    w.problem(&join(&path, "id"), format!("duplicate node id {id:?}"));
                }
                nodes.push(Node { id, kind, edges });
            }
        }
    }
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    // Past the limit the rest was not read: edges into it are not problems of their own.
    let read_all = !truncated;
    for (i, n) in nodes.iter().enumerate().filter(|_| read_all) {
        for (j, e) in n.edges.iter().enumerate() {
            if !e.to.is_empty() && !ids.contains(e.to.as_str()) {
                w.problem(
                    &format!("workflows.nodes[{i}].edges[{j}].to"),
                    format!("no node {:?}", e.to),
                );
            }
        }
    }
    if nodes.is_empty() {
        w.problem("workflows.nodes", "at least one node is required");
    }
    for (i, a) in actions.iter().enumerate() {
        for (j, t) in a.dynamic.iter().enumerate() {
            if let Some(id) = &t.action
                && !actions.iter().any(|x| x.id == *id)
            {
                w.problem(
                    &format!("actions.actions[{i}].with.dynamic_tasks[{j}].action_id"),
                    format!("unknown action {id:?}"),
                );
            }
        }
    }
    let index = Index::of(&actions, &nodes);
    let (undeclared, read) = check_references(w, &resources, &actions, &nodes);
    judge_cycles(w, cycles, &read);
    let thresholds = thresholds(w, get(top, "thresholds"));
    let tls = scenario_tls(w, get(top, "tls"));
    let sc = Scenario {
        tls,
        stages: user_stages,
        arrival,
        thresholds,
        name,
        pools,
        resources,
        phases,
        lifetime,
        ip_binding,
        concurrency,
        actions,
        index,
        nodes,
        undeclared,
    };
    check_threshold_filters(w, &sc);
    sc
}

/// An edge's `trigger:` at `ep`: a condition, an outcome, both (both must hold), or neither
/// (never taken, as in the original; worth a warning).
fn trigger(w: &mut Walker, t: &Value, ep: &str) -> Trigger {
    let path = join(ep, "trigger");
    let mut out = Trigger::default();
    if t.is_null() {
        return out;
    }
    let Some(m) = w.map(t, &path, schema::fields::<schema::Trigger>()) else {
        return out;
    };
    out.condition = w.string(get(m, "condition"), &join(&path, "condition"), false);
    if let Some(c) = &out.condition
        && let Err(e) = template::parse_condition(c)
    {
        w.problem(&join(&path, "condition"), e);
    }
    for key in ["on", "event", "status"] {
        let at = join(&path, key);
        if let Some(text) = w.string(get(m, key), &at, false) {
            match Outcome::parse(&text) {
                Some(o) => out.on = Some(o),
                None => w.problem(
                    &at,
                    format!("{text:?}: expected success, failed or timeout"),
                ),
            }
        }
    }
    if out.condition.is_none() && out.on.is_none() {
        w.warnings.push(Problem {
            path,
            message: "a trigger with neither condition nor on: the edge is never taken (as in \
                      the original; leave trigger out for an edge always taken)"
                .into(),
            line: None,
        });
    }
    out
}

/// The tenants users of this scenario can have.
fn tenants(sc: &Scenario) -> BTreeSet<&str> {
    let named = sc.phases.iter().map(|p| p.tenant.as_deref());
    let named = named
        .chain(sc.arrival.iter().map(|a| a.tenant.as_deref()))
        .chain(sc.stages.iter().map(|s| s.tenant.as_deref()));
    named.map(|t| t.unwrap_or(DEFAULT_TENANT)).collect()
}

/// A threshold whose tag filter names no action or tenant of the scenario can see no sample:
/// a typo that would pass (or fail) silently.
fn check_threshold_filters(w: &mut Walker, sc: &Scenario) {
    let tenants = tenants(sc);
    for t in &sc.thresholds {
        let path = join("thresholds", &t.name);
        if let Some(a) = &t.action
            && sc.action_index(a).is_none()
        {
            let known: Vec<&str> = sc.actions.iter().map(|a| a.id.as_str()).collect();
            w.problem(
                &path,
                format!("no action {a:?} (actions: {})", known.join(", ")),
            );
        }
        if let Some(x) = &t.tenant
            && !tenants.contains(x.as_str())
        {
            let known: Vec<&str> = tenants.iter().copied().collect();
            w.problem(
                &path,
                format!("no tenant {x:?} (tenants: {})", known.join(", ")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(stages: Vec<(f64, Duration)>, start: f64) -> Vec<f64> {
        let a = ArrivalRate {
            stages,
            start_rate: start,
            pre_allocated_users: 1,
            max_users: 1,
            tenant: None,
        };
        a.schedule().map(|d| d.as_secs_f64()).collect()
    }

    /// A scenario with one action whose `with` is `with` and one edge condition.
    fn one_action(with: &str, condition: &str) -> String {
        format!(
            r#"
workbook:
  resources:
    - {{ id: base, properties: {{ scheme: http, host: "127.0.0.1", url: "{{{{base.scheme}}}}://{{{{base.host}}}}:8080" }} }}
    - {{ id: spare, properties: {{ x: "1" }} }}
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 1 }} ] }} }}
actions:
  actions:
    - id: a
      call: get
      with: {with}
      export: [ {{ type: json, name: token, pointer: /t }} ]
workflows:
  nodes:
    - {{ id: n, action: a, edges: [ {{ to: end, trigger: {{ condition: "{condition}" }} }} ] }}
    - {{ id: end, type: end }}
"#
        )
    }

    fn problems(text: &str) -> Vec<String> {
        match parse_checked(text, false) {
            Ok(_) => Vec::new(),
            Err(p) => p
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        }
    }

    /// `validate` refuses what the executor would refuse on every request, with the field's
    /// path, by the executor's own rules; and every template name must be something the run
    /// has.
    #[test]
    fn validate_checks_with_and_template_references() {
        let ok = one_action(
            r#"{ url: "{{base.url}}/x?u={{user.id}}&t={{a.token}}", bind_ip: "{{user.allocated_ip}}", timeouts: { total_ms: 100 } }"#,
            "{{a.status_code == 200 && a.ok && tenant.id != user.tenant}}",
        );
        assert_eq!(problems(&ok), Vec::<String>::new());
        let (_, warnings) = parse_checked(&ok, false).unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.path == "workbook.resources[1]" && w.message.contains("not used")),
            "{warnings:?}"
        );
        for (with, want) in [
            (
                r#"{ url: "ftp://127.0.0.1/" }"#,
                "actions.actions[0].with.url: ",
            ),
            (r#"{ url: "{{base.scheme}}s://{{base.host}}:0/" }"#, ""),
            (
                r#"{ url: "http://x/", timeouts: { total: 5 } }"#,
                "with.timeouts.total: unknown timeout",
            ),
            (
                r#"{ url: "http://x/", timeouts: { total_ms: 0 } }"#,
                "with.timeouts.total_ms: must be at least 1 ms",
            ),
            (
                r#"{ url: "http://x/", retries: "3" }"#,
                "with.retries: expected a number or an object",
            ),
            (
                r#"{ url: "http://x/", keep_alive: "{{user.id}}" }"#,
                "with.keep_alive: expected true or false",
            ),
            (
                r#"{ url: "http://x/", bind_ip: "10.0.0.300" }"#,
                "with.bind_ip: not an IP address",
            ),
            (
                r#"{ url: "http://x/", release: never }"#,
                "with.release: expected after_action or keep",
            ),
            (
                r#"{ url: "http://x/", color: red }"#,
                "with.color: unknown parameter",
            ),
            (
                r#"{ url: "http://x/", headers: { a: [1] } }"#,
                "with.headers.a: expected a string",
            ),
        ] {
            let p = problems(&one_action(with, "true"));
            assert!(
                p.iter().any(|p| p.contains(want)) && !p.is_empty(),
                "{with}: {p:?}"
            );
        }
        // A url whose start is a template of the run (an export) is left to the run.
        assert_eq!(
            problems(&one_action(r#"{ url: "{{a.token}}" }"#, "true")),
            Vec::<String>::new()
        );
        // Names nothing declares: warnings naming what the scope has; the run leaves them as
        // written (as the original does).
        for (with, condition, want) in [
            (
                r#"{ url: "http://x/{{base.prot}}" }"#,
                "true",
                r#"with.url: "base.prot": "base" has no "prot""#,
            ),
            (
                r#"{ url: "http://x/{{b.url}}" }"#,
                "true",
                r#"with.url: "b.url": no resource, action, user or tenant "b""#,
            ),
            (
                r#"{ url: "http://x/{{a.tokn}}" }"#,
                "true",
                r#""a" has no "tokn" (it has: error, ok, status_code, token)"#,
            ),
            (
                r#"{ url: "http://x/", headers: { a: "{{user.name}}" } }"#,
                "true",
                r#"with.headers.a: "user.name": "user" has no "name""#,
            ),
            (
                r#"{ url: "http://x/" }"#,
                "{{a.code == 200}}",
                r#"workflows.nodes[0].edges[0].trigger.condition: "a.code": "a" has no "code""#,
            ),
        ] {
            let text = one_action(with, condition);
            let (s, warnings) =
                parse_checked(&text, false).unwrap_or_else(|p| panic!("{with}: {p:?}"));
            let warnings: Vec<String> = warnings
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect();
            assert!(
                warnings.iter().any(|w| w.contains(want)),
                "{with}: {warnings:?}"
            );
            assert_eq!(s.undeclared.len(), 1, "{with}");
        }
    }

    #[test]
    fn arrival_schedules_follow_the_rate() {
        // 10/s for 2 s: 20 iterations, 0.1 s apart.
        let t = times(vec![(10.0, Duration::from_secs(2))], 10.0);
        assert_eq!(t.len(), 20);
        assert!(
            (t[0] - 0.1).abs() < 1e-9 && (t[19] - 2.0).abs() < 1e-9,
            "{t:?}"
        );
        // 0 -> 20/s over 2 s, then 20/s for 1 s: 20 + 20 iterations, denser as it ramps.
        let t = times(
            vec![
                (20.0, Duration::from_secs(2)),
                (20.0, Duration::from_secs(1)),
            ],
            0.0,
        );
        assert_eq!(t.len(), 40);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert!((t[19] - 2.0).abs() < 1e-6, "{}", t[19]);
        assert!(t[1] - t[0] > t[19] - t[18]);
        // A stage at rate 0 schedules nothing.
        assert!(times(vec![(0.0, Duration::from_secs(5))], 0.0).is_empty());
    }

    #[test]
    fn user_stages_ramp_linearly() {
        let s = UserStages {
            start_users: 0,
            stages: vec![
                (10, Duration::from_secs(10)),
                (10, Duration::from_secs(5)),
                (0, Duration::from_secs(5)),
            ],
            tenant: None,
        };
        let at = |ms: u64| s.target(Duration::from_millis(ms));
        assert_eq!(at(0), Some(0));
        assert_eq!(at(5_000), Some(5));
        assert_eq!(at(12_000), Some(10));
        assert_eq!(at(17_500), Some(5));
        assert_eq!(at(20_000), None);
        assert_eq!(s.max_users(), 10);
    }
}
