//! Recording a run with memory that does not grow with its length: counters and
//! HdrHistograms of latency per action, tenant, source address and (action, tenant, status),
//! fed in batches from users' samples.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hdrhistogram::Histogram;

/// One request as a user saw it (kept only until its batch is recorded).
#[derive(Debug, Clone)]
pub struct Sample {
    pub action: Arc<str>,
    pub tenant: Arc<str>,
    pub user: u32,
    /// The source address the request went out from ("-" when unknown).
    pub source: Arc<str>,
    /// Something went on the wire (a connection was tried): a request. An error before that
    /// (a template, a parameter, the policy, the pool) is an error of its kind, with no latency.
    pub sent: bool,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_us: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub error: Option<String>,
    /// A WebSocket action's own figures (its opening, steps and messages).
    pub ws: Option<Box<crate::results::ws::WsRecord>>,
}

/// Latencies, microseconds; auto-resizing, so a histogram is as large as its longest value
/// needs (about 20 KB up to 10 s at 3 significant figures).
fn histogram(sigfig: u8) -> Histogram<u64> {
    // `new` refuses only more than 5 significant figures.
    let mut h = Histogram::new(sigfig.min(5)).expect("at most 5 significant figures");
    h.auto(true);
    h
}

/// Counters and a latency histogram for one group of requests.
#[derive(Clone)]
pub struct Stats {
    pub count: u64,
    pub ok: u64,
    pub failed: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub latency: Histogram<u64>,
}

impl Stats {
    pub fn new(sigfig: u8) -> Stats {
        Stats {
            count: 0,
            ok: 0,
            failed: 0,
            bytes_sent: 0,
            bytes_received: 0,
            latency: histogram(sigfig),
        }
    }

    fn add(&mut self, s: &Sample) {
        self.add_one(s.latency_us, s.ok);
        self.bytes_sent += s.bytes_sent;
        self.bytes_received += s.bytes_received;
    }

    /// One event of `latency_us`, which went well or not.
    pub fn add_one(&mut self, latency_us: u64, ok: bool) {
        self.count += 1;
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        let _ = self.latency.record(latency_us.max(1));
    }

    /// Several groups' requests as one (their histograms added); `None` for none.
    pub fn sum(parts: &[&Stats]) -> Option<Stats> {
        let (first, rest) = parts.split_first()?;
        let mut out = (*first).clone();
        for p in rest {
            out.count += p.count;
            out.ok += p.ok;
            out.failed += p.failed;
            out.bytes_sent += p.bytes_sent;
            out.bytes_received += p.bytes_received;
            let _ = out.latency.add(&p.latency);
        }
        Some(out)
    }

    /// Quantile `q` of the latencies, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.mean() / 1000.0
        }
    }

    pub fn max_ms(&self) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.max() as f64 / 1000.0
        }
    }

    pub fn min_ms(&self) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.min() as f64 / 1000.0
        }
    }
}

/// Everything recorded of a run's requests.
#[derive(Clone)]
pub struct Recorder {
    pub totals: Stats,
    pub by_action: BTreeMap<String, Stats>,
    pub by_tenant: BTreeMap<String, Stats>,
    /// Per source address: two significant figures (there may be tens of thousands).
    pub by_source: HashMap<Arc<str>, Stats>,
    /// (action, tenant, status or "error"): request counts, for the metrics.
    pub by_status: BTreeMap<StatusKey, u64>,
    /// (action, tenant): the latencies, for tag-filtered thresholds.
    pub by_action_tenant: BTreeMap<(Arc<str>, Arc<str>), Stats>,
    /// By status class (`2xx` ... `5xx`, `error` for no answer).
    pub by_status_class: BTreeMap<String, Stats>,
    /// Errors by kind, those before anything was sent included.
    pub errors: BTreeMap<String, u64>,
    /// Per action: errors before anything was sent (not requests, no latency).
    pub not_sent: BTreeMap<String, u64>,
    /// Per action: actions skipped, not sent and not failed (a URL keeping a template nothing
    /// declares: the original's dry run).
    pub skipped: BTreeMap<String, u64>,
    /// The source addresses each user sent from, in order of first use.
    pub user_sources: BTreeMap<u32, Vec<String>>,
    /// The tenants each source address sent for (usually one; in order of first use).
    pub source_tenants: HashMap<Arc<str>, Vec<Arc<str>>>,
    /// Per check (in scenario order over all actions): [passed, failed].
    pub checks: Vec<[u64; 2]>,
    /// What came in since the last interval was taken (`take_interval`), in all and per
    /// action and tenant.
    pub window: Stats,
    pub window_by_action: BTreeMap<String, Stats>,
    pub window_by_tenant: BTreeMap<String, Stats>,
    /// Errors since the last interval, at most `ERRORS_PER_INTERVAL` of them kept.
    pub window_errors: Vec<ErrorEvent>,
    pub window_errors_dropped: u64,
    /// WebSocket sessions, steps and messages.
    pub ws: crate::results::ws::WsStats,
}

/// (action, tenant, status; `None`: no answer).
pub type StatusKey = (Arc<str>, Arc<str>, Option<u16>);

/// A sample's status class: `2xx` ... `5xx`; `udp` for a UDP exchange that went well (it has
/// no status); `error` for no answer.
fn status_class(s: &Sample) -> &'static str {
    match s.status.map(|c| c / 100) {
        None if s.ok => "udp",
        None => "error",
        Some(1) => "1xx",
        Some(2) => "2xx",
        Some(3) => "3xx",
        Some(4) => "4xx",
        Some(5) => "5xx",
        Some(_) => "other",
    }
}

/// A status as the metrics and result files write it (`error`: no answer).
pub fn status_text(status: Option<u16>) -> String {
    status.map_or_else(|| "error".into(), |c| c.to_string())
}

/// Errors kept per interval for the event stream; the rest are counted.
pub const ERRORS_PER_INTERVAL: usize = 100;

/// The groups a batch of samples is sorted into at once: past that many, those so far are
/// recorded and the sorting starts again.
const GROUPS_PER_BATCH: usize = 16;

/// One error, for the event stream.
#[derive(Debug, Clone)]
pub struct ErrorEvent {
    pub action: Arc<str>,
    pub tenant: Arc<str>,
    pub user: u32,
    pub source: Arc<str>,
    pub error: String,
}

/// One second (or so) of the run, for the event stream and the charts.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Seconds since the run started, at the interval's end.
    pub t: f64,
    pub requests: u64,
    pub failed: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub users_active: u64,
    /// Per action, then per tenant.
    pub by_action: Groups,
    pub by_tenant: Groups,
    /// Per tag (`name:value`): the requests of the actions that carry it.
    pub by_tag: Vec<TagRow>,
}

/// One tag's requests in an interval.
#[derive(Debug, Clone)]
pub struct TagRow {
    pub tag: String,
    pub requests: u64,
    pub failed: u64,
    /// p50, p90, p95, p99 and max (ms).
    pub ms: [f64; 5],
}

/// Each tag (`name:value`) and the actions that carry it.
pub type TagIndex = Vec<(String, Vec<String>)>;

/// (name, requests, p90 ms) of each group in an interval.
pub type Groups = Vec<(String, u64, f64)>;

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            totals: Stats::new(3),
            by_action: BTreeMap::new(),
            by_tenant: BTreeMap::new(),
            by_source: HashMap::new(),
            by_status: BTreeMap::new(),
            by_action_tenant: BTreeMap::new(),
            by_status_class: BTreeMap::new(),
            errors: BTreeMap::new(),
            not_sent: BTreeMap::new(),
            skipped: BTreeMap::new(),
            user_sources: BTreeMap::new(),
            source_tenants: HashMap::new(),
            checks: Vec::new(),
            window: Stats::new(3),
            window_by_action: BTreeMap::new(),
            window_by_tenant: BTreeMap::new(),
            window_errors: Vec::new(),
            window_errors_dropped: 0,
            ws: Default::default(),
        }
    }
}

impl Recorder {
    /// The interval ending now, and its errors; the window starts again.
    pub fn take_interval(
        &mut self,
        t: f64,
        users_active: u64,
        tags: &TagIndex,
    ) -> (Interval, Vec<ErrorEvent>, u64) {
        let w = std::mem::replace(&mut self.window, Stats::new(3));
        let by_tag = tags
            .iter()
            .filter_map(|(tag, actions)| {
                let parts: Vec<&Stats> = actions
                    .iter()
                    .filter_map(|a| self.window_by_action.get(a))
                    .collect();
                Stats::sum(&parts).map(|s| TagRow {
                    tag: tag.clone(),
                    requests: s.count,
                    failed: s.failed,
                    ms: [0.5, 0.9, 0.95, 0.99]
                        .map(|q| s.quantile_ms(q))
                        .into_iter()
                        .chain([s.max_ms()])
                        .collect::<Vec<_>>()
                        .try_into()
                        .unwrap_or_default(),
                })
            })
            .collect();
        let per = |m: BTreeMap<String, Stats>| -> Groups {
            m.into_iter()
                .map(|(k, g)| {
                    let p90 = g.quantile_ms(0.9);
                    (k, g.count, p90)
                })
                .collect()
        };
        let by_action = per(std::mem::take(&mut self.window_by_action));
        let by_tenant = per(std::mem::take(&mut self.window_by_tenant));
        let errors = std::mem::take(&mut self.window_errors);
        let dropped = std::mem::take(&mut self.window_errors_dropped);
        (
            Interval {
                t,
                requests: w.count,
                failed: w.failed,
                p50_ms: w.quantile_ms(0.5),
                p90_ms: w.quantile_ms(0.9),
                p95_ms: w.quantile_ms(0.95),
                p99_ms: w.quantile_ms(0.99),
                max_ms: w.max_ms(),
                users_active,
                by_action,
                by_tenant,
                by_tag,
            },
            errors,
            dropped,
        )
    }

    /// Add a user's check counts (indexed as `checks`).
    pub fn add_checks(&mut self, counts: &[[u64; 2]]) {
        if self.checks.len() < counts.len() {
            self.checks.resize(counts.len(), [0, 0]);
        }
        for (total, c) in self.checks.iter_mut().zip(counts) {
            total[0] += c[0];
            total[1] += c[1];
        }
    }

    /// Samples in the order taken. Those that fall in the same groups (a user's action
    /// repeated from one source with one status: most of a batch) have their groups looked up
    /// once; each sample is still counted, and its latency recorded, in every group.
    pub fn add_all(&mut self, samples: &[Sample]) {
        samples.iter().for_each(|s| self.add_events(s));
        let mut groups: Vec<Vec<&Sample>> = Vec::new();
        for s in samples {
            if let Some(g) = groups.iter_mut().find(|g| same_groups(g[0], s)) {
                g.push(s);
                continue;
            }
            // Many different groups in one batch (a new source each request): those so far
            // first, so that each source is still listed in the order it was first used.
            if groups.len() == GROUPS_PER_BATCH {
                groups.drain(..).for_each(|g| self.add_group(&g));
            }
            groups.push(vec![s]);
        }
        groups.into_iter().for_each(|g| self.add_group(&g));
    }

    /// Samples that all fall in the groups of the first (see [`same_groups`]).
    fn add_group(&mut self, group: &[&Sample]) {
        match group.first() {
            Some(s) if s.sent => self.add_sent(s, group),
            Some(_) => group.iter().for_each(|s| self.add_not_sent(s)),
            None => {}
        }
    }

    /// A sample's WebSocket figures and its error, if any.
    fn add_events(&mut self, s: &Sample) {
        if let Some(ws) = &s.ws {
            self.ws.add(&s.action, ws);
        }
        let Some(e) = &s.error else {
            return;
        };
        *self.errors.entry(e.clone()).or_insert(0) += 1;
        if self.window_errors.len() < ERRORS_PER_INTERVAL {
            self.window_errors.push(ErrorEvent {
                action: s.action.clone(),
                tenant: s.tenant.clone(),
                user: s.user,
                source: s.source.clone(),
                error: e.clone(),
            });
        } else {
            self.window_errors_dropped += 1;
        }
    }

    /// A sample that put nothing on the wire: skipped, or failed before sending.
    fn add_not_sent(&mut self, s: &Sample) {
        let m = if s.ok && s.error.is_none() {
            &mut self.skipped
        } else {
            &mut self.not_sent
        };
        *m.entry(s.action.to_string()).or_insert(0) += 1;
    }

    /// Requests that all fall in the groups of `s` (the first of them).
    fn add_sent(&mut self, s: &Sample, group: &[&Sample]) {
        add_each(&mut self.totals, group);
        add_each(&mut self.window, group);
        add_named(&mut self.by_action, &s.action, group);
        add_named(&mut self.window_by_action, &s.action, group);
        add_named(&mut self.window_by_tenant, &s.tenant, group);
        add_named(&mut self.by_status_class, status_class(s), group);
        add_named(&mut self.by_tenant, &s.tenant, group);
        let source = self.by_source.entry(s.source.clone());
        add_each(source.or_insert_with(|| Stats::new(2)), group);
        let pair = self
            .by_action_tenant
            .entry((s.action.clone(), s.tenant.clone()));
        add_each(pair.or_insert_with(|| Stats::new(3)), group);
        // Keyed by the samples' shared names: no allocation per request (this runs under the
        // run's lock).
        *self
            .by_status
            .entry((s.action.clone(), s.tenant.clone(), s.status))
            .or_insert(0) += group.len() as u64;
        match self.source_tenants.get_mut(&s.source) {
            Some(ts) if ts.contains(&s.tenant) => {}
            Some(ts) => ts.push(s.tenant.clone()),
            None => {
                self.source_tenants
                    .insert(s.source.clone(), vec![s.tenant.clone()]);
            }
        }
        let v = self.user_sources.entry(s.user).or_default();
        if !v.iter().any(|x| **x == *s.source) {
            v.push(s.source.to_string());
        }
    }
}

fn add_each(stats: &mut Stats, group: &[&Sample]) {
    group.iter().for_each(|s| stats.add(s));
}

/// `group` added to the stats named `k` in `m`, made if new (the name is copied only then).
fn add_named(m: &mut BTreeMap<String, Stats>, k: &str, group: &[&Sample]) {
    match m.get_mut(k) {
        Some(stats) => add_each(stats, group),
        None => {
            let mut stats = Stats::new(3);
            add_each(&mut stats, group);
            m.insert(k.to_string(), stats);
        }
    }
}

/// Whether `b` is counted in the same groups as `a`: the same action, tenant, user and source,
/// the same status (and status class), both on the wire or neither.
fn same_groups(a: &Sample, b: &Sample) -> bool {
    a.sent == b.sent
        && a.user == b.user
        && a.status == b.status
        && status_class(a) == status_class(b)
        && a.action == b.action
        && a.tenant == b.tenant
        && a.source == b.source
}

/// One check's pass count over the run.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub action: String,
    pub name: String,
    pub pass: u64,
    pub fail: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples over three actions, two tenants, two users and 40 sources (more groups than a
    /// batch sorts at once), with failures, errors and actions that sent nothing.
    fn samples() -> Vec<Sample> {
        let names = |prefix: &str, n: usize| -> Vec<Arc<str>> {
            (0..n).map(|i| format!("{prefix}{i}").into()).collect()
        };
        let (actions, tenants, sources) = (names("a", 3), names("t", 2), names("10.0.0.", 40));
        let mut x = 7u64;
        (0..2_000)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let pick = |n: usize, shift: u32| (x >> shift) as usize % n;
                let status = [200, 200, 201, 404, 410, 503][pick(6, 8)];
                let sent = pick(10, 12) != 0;
                Sample {
                    action: actions[if i < 600 { 0 } else { pick(3, 16) }].clone(),
                    tenant: tenants[pick(2, 20)].clone(),
                    user: pick(2, 24) as u32,
                    source: sources[if i < 900 { 0 } else { pick(40, 28) }].clone(),
                    sent,
                    ok: sent && status < 400,
                    status: sent.then_some(status),
                    latency_us: 50 + (x >> 40) % 100_000,
                    bytes_sent: 100,
                    bytes_received: (x >> 36) % 5_000,
                    error: (status >= 400 || !sent).then(|| format!("e{}", pick(3, 32))),
                    ws: None,
                }
            })
            .collect()
    }

    /// Everything a recorder holds, as text.
    fn summary(r: &Recorder) -> String {
        let stats = |s: &Stats| {
            format!(
                "{} {} {} {} {} {:?}",
                s.count,
                s.ok,
                s.failed,
                s.bytes_sent,
                s.bytes_received,
                [0.5, 0.99, 1.0].map(|q| s.latency.value_at_quantile(q))
            )
        };
        let named = |m: &BTreeMap<String, Stats>| {
            m.iter()
                .map(|(k, s)| format!("{k}: {}", stats(s)))
                .collect::<Vec<_>>()
        };
        let mut sources: Vec<_> = r.by_source.iter().map(|(k, s)| (k, stats(s))).collect();
        sources.sort();
        let mut tenants: Vec<_> = r.source_tenants.iter().collect();
        tenants.sort();
        let errors: Vec<_> = r
            .window_errors
            .iter()
            .map(|e| (&e.action, &e.tenant, e.user, &e.source, &e.error))
            .collect();
        format!(
            "{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{sources:?}\n{tenants:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{errors:?} {}\n{:?}\n{:?}",
            stats(&r.totals),
            named(&r.by_action),
            named(&r.by_tenant),
            named(&r.by_status_class),
            named(&r.window_by_action),
            named(&r.window_by_tenant),
            r.by_status,
            r.by_action_tenant
                .iter()
                .map(|(k, s)| (k, stats(s)))
                .collect::<Vec<_>>(),
            r.user_sources,
            r.errors,
            r.window_errors_dropped,
            r.not_sent,
            r.skipped,
        )
    }

    #[test]
    fn a_batch_is_recorded_as_its_samples_one_by_one() {
        let samples = samples();
        let mut batched = Recorder::default();
        for batch in samples.chunks(256) {
            batched.add_all(batch);
        }
        let mut single = Recorder::default();
        for s in &samples {
            single.add_all(std::slice::from_ref(s));
        }
        assert_eq!(summary(&batched), summary(&single));
        let sent = samples.iter().filter(|s| s.sent).count() as u64;
        assert_eq!(batched.totals.count, sent);
        assert_eq!(
            batched.user_sources.values().map(Vec::len).sum::<usize>(),
            80
        );
    }
}
