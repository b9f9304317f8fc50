//! A UDP action's `with`, and what its reply must be.

use super::*;

/// A UDP action's `with`: `target` (`host:port`) or `peer_ip` and `peer_port` (else the one
/// `udp-endpoint` resource's), `payload` or `payload_hex`, `bind_ip`, `timeout_ms` (the
/// original's `timeout-ms` too, or `timeout` as a duration; 3 s by default), `retry: {max,
/// backoff_ms}` (or `retries`), `expect: {equals, contains, matches, payload_hex, len}`,
/// `max_reply`.
pub(super) fn udp_with(
    w: &mut Walker,
    v: &Value,
    path: &str,
    reply: bool,
    resources: &[Resource],
) -> Option<Udp> {
    if v.is_null() {
        w.problem(path, "required (a target and a payload)");
        return None;
    }
    let m = w.typed::<schema::UdpWith>(v, path)?;
    let at = |k: &str| join(path, k);
    let target = udp_target(w, &m, path, resources)?;
    let payload = match (opt_text(&m.payload), opt_text(&m.payload_hex)) {
        (Some(t), None) => UdpPayload::Text(t),
        (None, Some(h)) => UdpPayload::Bytes(hex_at(w, &h, &at("payload_hex"))?),
        (None, None) => UdpPayload::Bytes(Vec::new()),
        (Some(_), Some(_)) => {
            w.problem(&at("payload"), "either payload or payload_hex");
            return None;
        }
    };
    let mut timeout_ms = m.timeout_ms_original.or(m.timeout_ms).unwrap_or(3000);
    if let Some(d) = w.dur(m.timeout.as_ref(), &at("timeout")) {
        timeout_ms = d.as_millis() as u64;
    }
    if timeout_ms == 0 || timeout_ms > 3_600_000 {
        w.problem(&at("timeout_ms"), "from 1 ms to an hour");
    }
    // The original's max may be negative (none).
    let retries = match &m.retry {
        Some(schema::UdpRetry { max: Some(n), .. }) => (*n).max(0) as u64,
        _ => m.retries.unwrap_or(0),
    };
    let backoff_ms = m.retry.as_ref().and_then(|r| r.backoff_ms).unwrap_or(0);
    if retries > 100 || backoff_ms > 600_000 {
        w.problem(&at("retry"), "at most 100 retries and 10 minutes between");
    }
    let expect = match &m.expect {
        None => UdpExpect::default(),
        Some(e) => udp_expect(w, e, &at("expect"))?,
    };
    if !reply && (expect.text.is_some() || expect.bytes.is_some() || expect.len.is_some()) {
        w.problem(
            &at("expect"),
            "udp.send waits for no reply (use udp.send-reply)",
        );
    }
    Some(Udp {
        reply,
        target,
        payload,
        bind_ip: opt_text(&m.bind_ip),
        timeout_ms: timeout_ms.clamp(1, 3_600_000),
        retries: retries.min(100) as u32,
        backoff_ms: backoff_ms.min(600_000),
        expect,
        max_reply: m.max_reply.unwrap_or(65_535).clamp(1, 65_535) as u32,
    })
}

/// `target`, or `peer_ip` and `peer_port`, or the one `udp-endpoint` resource's; one without
/// templates is checked now.
fn udp_target(
    w: &mut Walker,
    m: &schema::UdpWith,
    path: &str,
    resources: &[Resource],
) -> Option<UdpTarget> {
    let at = join(path, "target");
    let target = match (
        opt_text(&m.target),
        opt_text(&m.peer_ip),
        opt_text(&m.peer_port),
    ) {
        (Some(t), None, None) => UdpTarget::Addr(t),
        (None, Some(ip), Some(port)) => UdpTarget::Parts(ip, port),
        (None, None, None) => {
            let eps: Vec<&Resource> = resources
                .iter()
                .filter(|r| r.kind.as_deref() == Some("udp-endpoint"))
                .collect();
            let [r] = eps[..] else {
                w.problem(
                    &at,
                    format!(
                        "required: host:port, or peer_ip and peer_port ({} udp-endpoint \
                         resources to take it from; one is needed)",
                        eps.len()
                    ),
                );
                return None;
            };
            UdpTarget::Parts(
                format!("{{{{{}.peer_ip}}}}", r.id),
                format!("{{{{{}.peer_port}}}}", r.id),
            )
        }
        _ => {
            w.problem(&at, "either target, or peer_ip and peer_port");
            return None;
        }
    };
    let fixed = match &target {
        UdpTarget::Addr(t) if !t.contains("{{") => Some(t.parse::<std::net::SocketAddr>().is_ok()),
        UdpTarget::Parts(ip, port) if !ip.contains("{{") && !port.contains("{{") => Some(
            ip.trim().parse::<std::net::IpAddr>().is_ok() && port.trim().parse::<u16>().is_ok(),
        ),
        _ => None,
    };
    if fixed == Some(false) {
        w.problem(
            &at,
            "not an address: host:port with an IP literal ([::1]:7 for IPv6), port 0-65535",
        );
    }
    Some(target)
}

/// `{equals | contains | matches, payload_hex, len}` of a reply (a UDP action's `expect`, a
/// wait node's `match`).
pub(super) fn udp_expect(w: &mut Walker, e: &schema::UdpExpect, path: &str) -> Option<UdpExpect> {
    let matched = match matcher(w, [&e.equals, &e.contains, &e.matches], path)? {
        Match::Exists => None,
        other => Some(other),
    };
    let bytes = match opt_text(&e.payload_hex) {
        Some(h) => Some(hex_at(w, &h, &join(path, "payload_hex"))?),
        None => None,
    };
    Some(UdpExpect {
        text: matched,
        bytes,
        len: e.len.map(|n| n as usize),
    })
}

/// Hex digits (spaces and `:` between bytes allowed) as bytes.
pub(super) fn hex_at(w: &mut Walker, text: &str, path: &str) -> Option<Vec<u8>> {
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
