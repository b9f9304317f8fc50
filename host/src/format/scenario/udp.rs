//! A UDP action's `with`, and what its reply must be.

use super::*;

/// A UDP action's `with`: `target` (`host:port`) or `peer_ip` and `peer_port` (else the one
/// `udp-endpoint` resource's), `payload` or `payload_hex`, `bind_ip`, `timeout_ms` (the
/// original's `timeout-ms` too, or `timeout` as a duration; 3 s by default), `retry: {max,
/// backoff_ms}` (or `retries`), `expect: {equals, contains, matches, payload_hex, len}`,
/// `max_reply`.
pub(super) fn udp_with(
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
pub(super) fn udp_expect(w: &mut Walker, m: &serde_yaml::Mapping, path: &str) -> Option<UdpExpect> {
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
