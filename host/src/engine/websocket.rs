//! A WebSocket action: the user's session opened (or continued), its steps run in order, the
//! session closed or kept; one sample for the action, with its opening, steps and messages.

use super::*;
use crate::format::scenario::{WebSocket, WsStep};
use crate::results::ws::WsRecord;
use crate::runtime::websocket::{self as rws, ws};

/// A session the user keeps open: its id in the instance, and its counters when last read.
pub(super) struct Kept {
    id: u32,
    seen: ws::Traffic,
}

/// Why the action stopped: its error's kind and text, and whether the session is over.
struct Failure {
    kind: String,
    text: String,
    ended: bool,
}

fn ws_failure(e: &ws::WsError) -> Failure {
    Failure {
        kind: rws::error_kind(e),
        text: rws::error_text(e),
        ended: !matches!(e, ws::WsError::Timeout),
    }
}

fn trapped(e: String) -> Failure {
    Failure {
        kind: format!("trap: {e}"),
        text: e,
        ended: true,
    }
}

const NO_TRAFFIC: ws::Traffic = ws::Traffic {
    messages_sent: 0,
    messages_received: 0,
    bytes_sent: 0,
    bytes_received: 0,
};

pub(super) async fn run_websocket(
    st: &mut UserState<'_>,
    inst: &mut Instance,
    policy: &Policy,
    ip: Option<&str>,
    index: usize,
    spec: &WebSocket,
    vars: &mut Vars,
) -> Sample {
    let shared = st.shared;
    let action = &shared.scenario.actions[index];
    let mut sample = st.sample(index, ip);
    let mut rec = WsRecord::default();
    if shared.uses_vars {
        vars.entry(action.id.clone()).or_default().clear();
    }
    shared.action_turn().await;
    let start = Instant::now();
    st.in_flight = Some((index, sample.source.clone(), start));
    let (failure, handshake) =
        match session(st, inst, policy, ip, spec, vars, &mut sample, &mut rec).await {
            Ok((kept, opened)) => {
                let ctx = StepCtx {
                    action_id: &action.id,
                    uses_vars: shared.uses_vars,
                    stop: &shared.stop,
                };
                let r = steps(inst, kept.id, spec, &ctx, vars, &mut rec).await;
                let ended = match &r {
                    Ok(closed) => *closed,
                    Err(f) => f.ended,
                };
                settle(st, inst, spec, kept, ended, &mut sample, &mut rec).await;
                (r.err(), opened)
            }
            Err(f) => (Some(f), None),
        };
    st.in_flight = None;
    sample.latency_us = start.elapsed().as_micros() as u64;
    sample.ok = sample.sent && failure.is_none();
    let outcome = handshake.as_ref().map(|h| outcome_of(h, &sample));
    finish_scope(st, index, outcome.as_ref(), failure.as_ref(), &sample, vars);
    sample.error = failure.map(|f| f.kind);
    sample.ws = Some(Box::new(rec));
    sample
}

/// The action's checks counted, and its variables set: ok, status_code, the handshake's
/// exports, the error.
fn finish_scope(
    st: &mut UserState<'_>,
    index: usize,
    outcome: Option<&exec::Outcome>,
    failure: Option<&Failure>,
    sample: &Sample,
    vars: &mut Vars,
) {
    super::action::count_checks(st, index, outcome, sample.latency_us);
    let shared = st.shared;
    if !shared.uses_vars {
        return;
    }
    let action = &shared.scenario.actions[index];
    let scope = vars.entry(action.id.clone()).or_default();
    scope.insert("ok".into(), sample.ok.to_string());
    if let Some(f) = failure {
        scope.insert("error".into(), f.text.clone());
    }
    if let Some(o) = outcome {
        scope.insert("status_code".into(), o.status.to_string());
    }
    for e in &action.exports {
        let v = outcome.and_then(|o| super::action::export_or(&e.kind, o));
        if let Some(v) = v.or_else(|| e.default.clone()) {
            scope.insert(e.name.clone(), v);
        }
    }
}

/// The handshake's answer as an outcome, for the action's checks and exports.
fn outcome_of(o: &ws::Opened, sample: &Sample) -> exec::Outcome {
    exec::Outcome {
        status: o.status,
        reason: String::new(),
        headers: o
            .headers
            .iter()
            .map(|h| exec::Header {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect(),
        trailers: Vec::new(),
        body: Vec::new(),
        body_length: 0,
        timings: exec::Timings {
            dns_us: o.timings.dns_us,
            connect_us: o.timings.connect_us,
            tls_us: o.timings.tls_us,
            first_byte_us: o.timings.first_byte_us,
            total_us: o.timings.total_us,
        },
        bytes_sent: sample.bytes_sent,
        bytes_received: sample.bytes_received,
        source_address: o.source_address.clone(),
        attempts: 1,
        redirects: 0,
        final_url: String::new(),
        reused_connection: false,
        exports: Vec::new(),
    }
}

/// The session the action runs in: the user's open one of its name, or a new one opened
/// from `with` (and then the handshake's answer).
#[allow(clippy::too_many_arguments)]
async fn session(
    st: &mut UserState<'_>,
    inst: &mut Instance,
    policy: &Policy,
    ip: Option<&str>,
    spec: &WebSocket,
    vars: &Vars,
    sample: &mut Sample,
    rec: &mut WsRecord,
) -> Result<(Kept, Option<ws::Opened>), Failure> {
    if let Some(kept) = st.ws_sessions.remove(&spec.session) {
        // Still the connection the server switched (101): the status classes say so.
        sample.sent = true;
        sample.status = Some(101);
        return Ok((kept, None));
    }
    let Some(open) = &spec.open else {
        return Err(Failure {
            kind: "ws-no-session".into(),
            text: format!(
                "no open session {:?} to continue, and no url to open one",
                spec.session
            ),
            ended: true,
        });
    };
    let params = params(open, policy, ip, vars).await.map_err(|e| Failure {
        kind: "invalid-params(with)".into(),
        text: e,
        ended: true,
    })?;
    let start = Instant::now();
    let r = inst.ws_open(&params).await.map_err(trapped)?;
    let us = start.elapsed().as_micros() as u64;
    match r {
        Ok(o) => {
            rec.connecting = Some((o.timings.total_us.max(1), true));
            sample.sent = true;
            sample.status = Some(o.status);
            sample.bytes_sent += o.bytes_sent;
            sample.bytes_received += o.bytes_received;
            if let Some(src) = o.source_address.as_deref().and_then(|s| st.source_of(s)) {
                sample.source = src;
            }
            let kept = Kept {
                id: o.session,
                seen: NO_TRAFFIC,
            };
            Ok((kept, Some(o)))
        }
        Err(e) => {
            opening_failed(&e, us, sample, rec);
            Err(ws_failure(&e))
        }
    }
}

/// What a failed opening counts as: a request unless it was refused before the connection
/// (a parameter, the policy); a handshake the server answered is a failed connecting.
fn opening_failed(e: &ws::WsError, us: u64, sample: &mut Sample, rec: &mut WsRecord) {
    use crate::runtime::websocket::bindings::exports::scheduler::executor::executor::ActionError as A;
    sample.sent = !matches!(
        e,
        ws::WsError::Open(A::InvalidParams(_) | A::AccessDenied(_))
    );
    if let ws::WsError::Handshake((status, _)) = e {
        rec.connecting = Some((us, false));
        sample.status = (*status != 0).then_some(*status);
    }
}

/// The opening's parameters rendered: the user's address as `bind_ip`, cookies on unless
/// said, and what it reaches allowed by the user's policy.
async fn params(
    open: &serde_json::Value,
    policy: &Policy,
    ip: Option<&str>,
    vars: &Vars,
) -> Result<String, String> {
    let mut with = template::render_json(open, vars).map_err(|e| format!("template: {e}"))?;
    let url = with
        .get("url")
        .and_then(|u| u.as_str())
        .unwrap_or_default()
        .to_string();
    if url.contains("{{") {
        return Err(format!("url {url:?} keeps a template nothing declares"));
    }
    super::action::put_bind_ip(&mut with, ip)?;
    if let Some(obj) = with.as_object_mut() {
        obj.entry("cookies").or_insert(true.into());
    }
    // The policy knows URLs as http and https: ws and wss are those (RFC 6455 section 3).
    let lower = url.to_ascii_lowercase();
    let as_http = match () {
        _ if lower.starts_with("wss:") => format!("https:{}", &url[4..]),
        _ if lower.starts_with("ws:") => format!("http:{}", &url[3..]),
        _ => url.clone(),
    };
    allow_url(policy, &as_http).await;
    for r in with["resolve"].as_array().into_iter().flatten() {
        allow_resolved(policy, r.as_str().unwrap_or_default(), false);
    }
    Ok(with.to_string())
}

/// What the steps need of their action and run.
struct StepCtx<'a> {
    action_id: &'a str,
    uses_vars: bool,
    /// The run's stop: a sleep step ends early when it is set.
    stop: &'a AtomicBool,
}

/// The steps in order, until one fails. `true` when a close step ended the session.
async fn steps(
    inst: &mut Instance,
    id: u32,
    spec: &WebSocket,
    ctx: &StepCtx<'_>,
    vars: &mut Vars,
    rec: &mut WsRecord,
) -> Result<bool, Failure> {
    for (i, step) in spec.steps.iter().enumerate() {
        let t = Instant::now();
        let r = step_run(inst, id, step, ctx, vars).await;
        rec.steps
            .push((i, step.kind(), t.elapsed().as_micros() as u64, r.is_ok()));
        r?;
        if matches!(step, WsStep::Close { .. }) {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn step_run(
    inst: &mut Instance,
    id: u32,
    step: &WsStep,
    ctx: &StepCtx<'_>,
    vars: &mut Vars,
) -> Result<(), Failure> {
    let called = |r: Result<Result<(), ws::WsError>, String>| match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ws_failure(&e)),
        Err(t) => Err(trapped(t)),
    };
    match step {
        WsStep::Send(t) => {
            let text = template::render(t, vars).map_err(|e| Failure {
                kind: "template".into(),
                text: e,
                ended: false,
            })?;
            called(inst.ws_send(id, &ws::Message::Text(text)).await)
        }
        WsStep::SendHex(b) => called(inst.ws_send(id, &ws::Message::Binary(b.clone())).await),
        WsStep::Ping {
            payload,
            timeout_ms,
        } => called(inst.ws_ping(id, payload.as_bytes(), *timeout_ms).await),
        WsStep::Sleep(d) => {
            // In slices, so a stopping run does not wait out a long sleep.
            let until = Instant::now() + *d;
            while Instant::now() < until && !ctx.stop.load(Ordering::SeqCst) {
                tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(50))).await;
            }
            Ok(())
        }
        WsStep::Close {
            code,
            reason,
            timeout_ms,
        } => match inst.ws_close(id, *code, reason, *timeout_ms).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ws_failure(&e)),
            Err(t) => Err(trapped(t)),
        },
        WsStep::Receive(r) => {
            let m = match inst.ws_receive(id, r.timeout_ms).await {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => return Err(ws_failure(&e)),
                Err(t) => return Err(trapped(t)),
            };
            super::ws_receive::check(r, &m, ctx.action_id, vars, ctx.uses_vars).map_err(
                |(kind, text)| Failure {
                    kind,
                    text,
                    ended: false,
                },
            )
        }
    }
}

/// After the steps: the session kept for later actions, or closed (1000, unless a step closed
/// it or it failed); the action's share of its traffic on the sample.
async fn settle(
    st: &mut UserState<'_>,
    inst: &mut Instance,
    spec: &WebSocket,
    kept: Kept,
    ended: bool,
    sample: &mut Sample,
    rec: &mut WsRecord,
) {
    let keep = spec.keep_open && !ended && !st.shared.scenario.ip_binding.per_task();
    if !keep && !ended {
        let _ = inst.ws_close(kept.id, 1000, "", CLOSE_WAIT_MS).await;
    }
    let now = match keep {
        true => inst.ws_counters(kept.id).await,
        false => inst.ws_finish(kept.id).await,
    };
    let now = now.ok().flatten().unwrap_or(kept.seen);
    sample.bytes_sent += now.bytes_sent.saturating_sub(kept.seen.bytes_sent);
    sample.bytes_received += now.bytes_received.saturating_sub(kept.seen.bytes_received);
    rec.msgs_sent += now.messages_sent.saturating_sub(kept.seen.messages_sent);
    rec.msgs_received += now
        .messages_received
        .saturating_sub(kept.seen.messages_received);
    if keep {
        st.ws_sessions.insert(
            spec.session.clone(),
            Kept {
                id: kept.id,
                seen: now,
            },
        );
    }
}

/// How long a close at the end of an action or a user waits for the server's.
const CLOSE_WAIT_MS: u64 = 2_000;

/// The user's kept sessions closed (1001, going away) as it ends.
pub(super) async fn close_kept(st: &mut UserState<'_>, inst: &mut Instance) {
    for (_, kept) in std::mem::take(&mut st.ws_sessions) {
        let _ = inst.ws_close(kept.id, 1001, "", CLOSE_WAIT_MS).await;
        let _ = inst.ws_finish(kept.id).await;
    }
}
