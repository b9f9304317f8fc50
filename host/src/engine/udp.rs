//! A UDP action of a user: its target and payload rendered, one exchange through the user's
//! own socket component from the user's address, the reply checked and exported.

use super::*;
use crate::format::scenario::Udp;
use crate::runtime::{UdpFailure, UdpOutcome};

/// A UDP action: recorded as HTTP's are (latency, bytes, errors by kind); `ACTION.ok`,
/// `ACTION.error` and `content` exports (the reply as text) for later templates; the reply
/// kept for wait nodes.
pub(super) async fn run_udp(
    st: &mut UserState<'_>,
    inst: &mut Instance,
    policy: &Policy,
    ip: Option<&str>,
    index: usize,
    udp: &Udp,
    vars: &mut Vars,
) -> Sample {
    let shared = st.shared;
    let mut sample = st.sample(index, ip);
    let (target, payload, bind) = match prepare(udp, ip, vars) {
        Ok(p) => p,
        Err(e) => {
            sample.error = Some(e);
            return sample;
        }
    };
    policy.allow_target(target);
    shared.action_turn().await;
    let start = Instant::now();
    st.in_flight = Some((index, sample.source.clone(), start));
    let result = inst
        .udp(&crate::runtime::UdpExchange {
            target,
            bind,
            payload: &payload,
            reply: udp.reply,
            timeout_ms: udp.timeout_ms,
            retries: udp.retries,
            backoff_ms: udp.backoff_ms,
            max_reply: udp.max_reply,
        })
        .await;
    st.in_flight = None;
    sample.latency_us = start.elapsed().as_micros() as u64;
    let (reply_text, error_text) = outcome(st, &mut sample, udp, index, result);
    checks(st, index, &sample, reply_text.as_deref());
    if shared.uses_vars {
        exports(st, index, vars, &sample, reply_text, error_text);
    }
    sample
}

/// The target, the payload and the source address, rendered; a `bind_ip` other than the
/// user's pool address is refused.
fn prepare(
    udp: &Udp,
    ip: Option<&str>,
    vars: &Vars,
) -> Result<(SocketAddr, Vec<u8>, Option<std::net::IpAddr>), String> {
    use crate::format::scenario::{UdpPayload, UdpTarget};
    let render = |t: &str| template::render(t, vars).map_err(|e| format!("template: {e}"));
    let target = match &udp.target {
        UdpTarget::Addr(t) => {
            let t = render(t)?;
            t.trim()
                .parse::<SocketAddr>()
                .map_err(|_| format!("udp target {t:?}: not host:port with an IP literal"))?
        }
        UdpTarget::Parts(host, port) => {
            let (host, port) = (render(host)?, render(port)?);
            let ip = host
                .trim()
                .trim_matches(['[', ']'])
                .parse()
                .map_err(|_| format!("udp peer_ip {host:?}: not an IP address"))?;
            let port = port
                .trim()
                .parse()
                .map_err(|_| format!("udp peer_port {port:?}: not a port"))?;
            SocketAddr::new(ip, port)
        }
    };
    let payload = match &udp.payload {
        UdpPayload::Text(t) => render(t)?.into_bytes(),
        UdpPayload::Bytes(b) => b.clone(),
    };
    let given = match &udp.bind_ip {
        Some(t) => {
            let t = render(t)?;
            (!t.trim().is_empty())
                .then(|| {
                    t.trim()
                        .parse()
                        .map_err(|_| format!("bind_ip {t:?}: not an IP"))
                })
                .transpose()?
        }
        None => None,
    };
    let bind = match (ip.and_then(|ip| ip.parse().ok()), given) {
        (Some(mine), Some(other)) if other != mine => {
            return Err(format!(
                "bind_ip: {other} is not the user's address from the pool ({mine})"
            ));
        }
        (Some(mine), _) => Some(mine),
        (None, given) => given,
    };
    Ok((target, payload, bind))
}

/// The exchange's outcome into the sample; the reply (as text) and the error's words.
fn outcome(
    st: &mut UserState<'_>,
    sample: &mut Sample,
    udp: &Udp,
    index: usize,
    result: Result<Result<UdpOutcome, UdpFailure>, String>,
) -> (Option<String>, Option<String>) {
    match result {
        Ok(Ok(o)) => {
            sample.sent = true;
            sample.bytes_sent = o.bytes_sent;
            sample.bytes_received = o.bytes_received;
            // The last try's send to its reply.
            sample.latency_us = o.latency_us;
            if let Some(src) = o.local.as_deref().and_then(|s| st.source_of(s)) {
                sample.source = src;
            }
            sample.ok = o.reply.as_deref().is_none_or(|r| udp.expect.holds(r));
            let mut error_text = None;
            if !sample.ok {
                sample.error = Some("udp-reply-mismatch".into());
                error_text = Some("the reply did not match expect".to_string());
            }
            let reply_text = o
                .reply
                .as_deref()
                .map(|r| String::from_utf8_lossy(r).into_owned());
            st.last_reply[index] = o.reply;
            (reply_text, error_text)
        }
        Ok(Err(f)) => {
            sample.sent = f.kind != "udp-socket" && f.kind != "udp-bind";
            sample.error = Some(f.kind.to_string());
            (None, Some(f.detail))
        }
        Err(trap) => {
            sample.sent = true;
            sample.error = Some(format!("trap: {trap}"));
            (None, None)
        }
    }
}

/// The action's checks on the reply: its text and the time.
fn checks(st: &mut UserState<'_>, index: usize, sample: &Sample, reply: Option<&str>) {
    let action = &st.shared.scenario.actions[index];
    let ms = sample.latency_us as f64 / 1000.0;
    let base = st.shared.check_base[index];
    for (i, c) in action.checks.iter().enumerate() {
        let pass = match (&c.kind, reply) {
            (CheckKind::Duration(..), _) if sample.sent => check_duration(&c.kind, ms),
            (CheckKind::BodyContains(x), Some(r)) => r.contains(x.as_str()),
            (CheckKind::BodyMatches(re), Some(r)) => re.is_match(r),
            _ => false,
        };
        st.checks[base + i][usize::from(!pass)] += 1;
    }
}

/// `ACTION.ok`, `ACTION.error` and the exports (the reply as text, or their defaults).
fn exports(
    st: &UserState<'_>,
    index: usize,
    vars: &mut Vars,
    sample: &Sample,
    reply: Option<String>,
    error: Option<String>,
) {
    let action = &st.shared.scenario.actions[index];
    let scope = vars.entry(action.id.clone()).or_default();
    scope.clear();
    scope.insert("ok".into(), sample.ok.to_string());
    if let Some(e) = error {
        scope.insert("error".into(), e);
    }
    for e in &action.exports {
        match (&e.kind, &reply) {
            (ExportKind::Body, Some(r)) => {
                scope.insert(e.name.clone(), r.clone());
            }
            _ => {
                if let Some(d) = &e.default {
                    scope.insert(e.name.clone(), d.clone());
                }
            }
        }
    }
}
