//! The scenario as the run uses it: every type the parser fills.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
    pub line: Option<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}: {} (line {l})", self.path, self.message),
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
    pub think_time: super::think::Think,
    pub duration: Option<Duration>,
    /// k6's shared iterations (`run --iterations N`): the run's users take N iterations in
    /// all, each the next one free, instead of a count each.
    pub shared_iterations: Option<u64>,
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

impl IpBinding {
    /// Whether each task (workflow node) takes an address of its own and gives it back.
    pub fn per_task(&self) -> bool {
        self.enabled
            && (self.strategy == BindStrategy::PerTask || self.release_on == ReleaseOn::TaskEnd)
    }
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
    /// `--segment I/N`: this process starts the whole schedule's iterations k with
    /// k mod N = I (k6's striping), so the segments' union is exactly one run's schedule.
    pub stride: (u32, u32),
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
            stride: (u64::from(self.stride.0), u64::from(self.stride.1.max(1))),
            k: 0,
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
    /// (I, N): the iterations of this segment; `k` the whole schedule's next iteration.
    stride: (u64, u64),
    k: u64,
}

impl Iterator for Schedule<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let t = self.whole_next()?;
            let k = self.k;
            self.k += 1;
            if k % self.stride.1 == self.stride.0 {
                return Some(t);
            }
        }
    }
}

impl Schedule<'_> {
    /// The whole schedule's next iteration start.
    fn whole_next(&mut self) -> Option<Duration> {
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
    /// A WebSocket action (`call: websocket`).
    pub websocket: Option<WebSocket>,
    /// `with.redirects.any_port`: the user may reach any port of the URL's host, so a
    /// redirect to another port or scheme of it is followed.
    pub redirect_any_port: bool,
    /// `tags:`, in name order.
    pub tags: Vec<(String, String)>,
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
    /// Run in the user's first pass only (log in once, then loop): later passes go on
    /// through its edges as that run ended, with its exports.
    pub once: bool,
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
    /// `proxy:`: the HTTP proxy the run's requests go through, per tenant where it differs.
    pub proxy: super::ScenarioProxy,
    /// Template names nothing in the scenario declares (`{{tenant.token}}`): left as written
    /// when rendered, as the original scheduler leaves them (`validate` warns).
    pub undeclared: BTreeSet<String>,
    /// `workbook.data`: rows from files (filled by `load_data`).
    pub data: Vec<super::DataSource>,
    /// `setup:`: actions run once, in order, before any user starts (k6's setup()); their
    /// exports are every user's (`{{ACTION.NAME}}`). A failure ends the run before it starts.
    pub setup: Vec<String>,
    /// `teardown:`: actions run once after the last user ends (k6's teardown()).
    pub teardown: Vec<String>,
    /// Where each action and node is, by id (the first of a duplicated id).
    pub index: Index,
    /// The scenario file's directory: where `body_file` and a form's files are (set by
    /// `load_data`).
    pub dir: std::path::PathBuf,
    /// `servers:`: HTTP servers (the http-server component), each instance on its own address.
    pub servers: Vec<super::ServerSpec>,
}

/// Actions and nodes by id: a pass looks one up at every step, two a request (FxHash: the ids
/// are the scenario's own; SipHash made the two about 300 instructions).
#[derive(Debug, Clone, Default)]
pub struct Index {
    actions: rustc_hash::FxHashMap<String, usize>,
    nodes: rustc_hash::FxHashMap<String, usize>,
}

impl Index {
    pub(super) fn of(actions: &[Action], nodes: &[Node]) -> Index {
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
    /// k6's `--vus`, `--duration` and `--iterations` over the file's load: `users` users
    /// from the start (the first phase's tenant and pool), looping for `duration`, or taking
    /// `iterations` in all between them.
    pub fn override_load(
        &mut self,
        users: Option<u32>,
        duration: Option<Duration>,
        iterations: Option<u64>,
    ) {
        if let Some(n) = users {
            let first = self.phases.first().cloned();
            self.phases = vec![Phase {
                at: Duration::ZERO,
                users: n,
                tenant: first.as_ref().and_then(|p| p.tenant.clone()),
                pool: first.and_then(|p| p.pool),
            }];
            self.arrival = None;
            self.stages = None;
        }
        if duration.is_some() || iterations.is_some() {
            self.lifetime.mode = Mode::Loop;
            self.lifetime.iterations = 0;
            self.lifetime.duration = duration;
            self.lifetime.shared_iterations = iterations;
        }
    }

    pub fn segment(&mut self, index: u32, count: u32) -> Result<(), String> {
        if count == 0 || index >= count {
            return Err(format!(
                "segment {index}/{count}: expected I/N with 0 <= I < N"
            ));
        }
        let n = f64::from(count);
        // A count of users split as the users are striped (user k, from 0, runs in segment
        // k mod N): segment I takes ceil((x - I) / N), the first x mod N one more, so each
        // segment's cap is exactly the users it runs and the shares add up to x.
        let share = |x: u32| {
            let (x, i, c) = (u64::from(x), u64::from(index), u64::from(count));
            ((x + c - 1 - i) / c) as u32
        };
        let none_left = |what: &str, x: u32| {
            format!(
                "{what} {x} is fewer than the {count} segments: segment {index} would have none \
                 (give at least one per segment, or fewer segments)"
            )
        };
        if let Some(r) = self.concurrency.spawn_rate.as_mut() {
            *r /= n;
        }
        if let Some(r) = self.concurrency.action_rate.as_mut() {
            *r /= n;
        }
        for d in &mut self.data {
            d.stride = (index, count);
        }
        if let Some(total) = self.lifetime.shared_iterations.as_mut() {
            let (i, c) = (u64::from(index), u64::from(count));
            *total = (i + 1) * *total / c - i * *total / c;
        }
        if let Some(cap) = self.concurrency.max_users {
            if share(cap) == 0 {
                return Err(none_left("max_concurrent_users", cap));
            }
            self.concurrency.max_users = Some(share(cap));
        }
        if let Some(a) = self.arrival.as_mut() {
            a.stride = (index, count);
            if share(a.max_users) == 0 {
                return Err(none_left("arrival_rate max_users", a.max_users));
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
