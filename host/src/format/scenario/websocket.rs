//! A WebSocket action (`call: websocket`): the session it opens or continues, and its steps.

use super::*;

/// `call: websocket`: a session of the user's, opened from `with` (url, headers,
/// subprotocols, ...) unless one of that name is open, then the steps in order.
#[derive(Debug, Clone)]
pub struct WebSocket {
    /// The session's name (`with.session`, the action's id by default).
    pub session: String,
    /// Keep the session open after the steps (for later actions and iterations of the user);
    /// otherwise it is closed (1000) unless a step closed it.
    pub keep_open: bool,
    /// What the session is opened with (templates not yet rendered): the executor's
    /// parameters less the host's (`session`, `keep_open`, `steps`). `None` without a `url`:
    /// the action only continues an open session.
    pub open: Option<serde_json::Value>,
    pub steps: Vec<WsStep>,
}

#[derive(Debug, Clone)]
pub enum WsStep {
    /// Text (templates rendered).
    Send(String),
    SendHex(Vec<u8>),
    Receive(WsReceive),
    Ping {
        payload: String,
        timeout_ms: u64,
    },
    Sleep(Duration),
    Close {
        code: u16,
        reason: String,
        timeout_ms: u64,
    },
}

impl WsStep {
    /// The step's kind as the report names it.
    pub fn kind(&self) -> &'static str {
        match self {
            WsStep::Send(_) | WsStep::SendHex(_) => "send",
            WsStep::Receive(_) => "receive",
            WsStep::Ping { .. } => "ping",
            WsStep::Sleep(_) => "sleep",
            WsStep::Close { .. } => "close",
        }
    }
}

/// What a received message must be (all that are given), and what is exported from it.
#[derive(Debug, Clone)]
pub struct WsReceive {
    pub timeout_ms: u64,
    /// On the message as text: `equals` and `contains` may hold templates.
    pub text: Option<Match>,
    /// `json: {pointer, equals | contains | matches}` on the message parsed as JSON.
    pub json: Option<(String, Match)>,
    /// `hex`: the message's exact bytes.
    pub bytes: Option<Vec<u8>>,
    /// `ACTION.NAME` from the message (its text, or the value at a JSON pointer).
    pub export: Vec<(String, Option<String>)>,
}

/// Keys of `with` that are the host's, not the executor's.
const HOST_KEYS: [&str; 4] = ["session", "keep_open", "steps", "timeout"];

/// What a receive, ping or close waits unless its step says.
const STEP_TIMEOUT_MS: u64 = 10_000;

pub(super) fn ws_with(w: &mut Walker, v: &Value, path: &str, id: &str) -> Option<WebSocket> {
    if v.is_null() {
        w.problem(path, "required (a url and steps)");
        return None;
    }
    let m = w.typed::<schema::WebSocketWith>(v, path)?;
    let at = |k: &str| join(path, k);
    let mut open = yaml_to_json(v);
    if let Some(o) = open.as_object_mut() {
        HOST_KEYS.iter().for_each(|k| {
            o.remove(*k);
        });
    }
    if let Some(d) = w.dur(m.timeout.as_ref(), &at("timeout")) {
        open["timeouts"]["total_ms"] = (d.as_millis().max(1) as u64).into();
    }
    match m.url.as_deref() {
        Some(u) if !template::has_template(&serde_json::Value::String(u.into())) => {
            let lower = u.to_ascii_lowercase();
            if !lower.starts_with("ws://") && !lower.starts_with("wss://") {
                w.problem(&at("url"), format!("{u:?}: expected ws:// or wss://"));
            }
        }
        Some(_) => {}
        None if open.as_object().is_some_and(|o| !o.is_empty()) => {
            w.problem(
                &at("url"),
                "required to open a session (parameters were given)",
            );
        }
        None => {}
    }
    let steps = m
        .steps
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| step(w, s, &format!("{path}.steps[{i}]")))
        .collect();
    Some(WebSocket {
        session: m.session.map_or_else(|| id.to_string(), |s| s.text()),
        keep_open: m.keep_open.unwrap_or(false),
        open: m.url.is_some().then_some(open),
        steps,
    })
}

fn step(w: &mut Walker, s: schema::WsStep, path: &str) -> Option<WsStep> {
    let given = [
        ("send", s.send.is_some()),
        ("send_hex", s.send_hex.is_some()),
        ("receive", s.receive.is_some()),
        ("ping", s.ping.is_some()),
        ("sleep", s.sleep.is_some()),
        ("close", s.close.is_some()),
    ];
    let kinds: Vec<&str> = given.iter().filter(|g| g.1).map(|g| g.0).collect();
    let [kind] = kinds[..] else {
        let all: Vec<&str> = given.iter().map(|g| g.0).collect();
        w.problem(
            path,
            format!(
                "give exactly one of {} (got {})",
                all.join(", "),
                kinds.len()
            ),
        );
        return None;
    };
    let at = join(path, kind);
    let timeout_ms = w
        .dur(s.timeout.as_ref(), &join(path, "timeout"))
        .map_or(STEP_TIMEOUT_MS, |d| {
            d.as_millis().clamp(1, 3_600_000) as u64
        });
    if s.timeout.is_some() && !matches!(kind, "receive" | "ping" | "close") {
        w.problem(
            &join(path, "timeout"),
            "only a receive, ping or close waits",
        );
    }
    Some(match kind {
        "send" => WsStep::Send(opt_text(&s.send)?),
        "send_hex" => WsStep::SendHex(hex_at(w, &opt_text(&s.send_hex)?, &at)?),
        "receive" => WsStep::Receive(receive(w, s.receive?, &at, timeout_ms)?),
        "ping" => WsStep::Ping {
            payload: opt_text(&s.ping).unwrap_or_default(),
            timeout_ms,
        },
        "sleep" => WsStep::Sleep(w.dur(s.sleep.as_ref(), &at)?),
        _ => close(w, s.close?, &at, timeout_ms)?,
    })
}

fn receive(w: &mut Walker, m: schema::WsReceive, path: &str, timeout_ms: u64) -> Option<WsReceive> {
    let mut r = WsReceive {
        timeout_ms,
        text: None,
        json: None,
        bytes: None,
        export: Vec::new(),
    };
    if m.equals.is_some() || m.contains.is_some() || m.matches.is_some() {
        r.text = matcher(w, [&m.equals, &m.contains, &m.matches], path);
    }
    if let Some(j) = &m.json {
        let jp = join(path, "json");
        let pointer = j.pointer.text();
        if !pointer.is_empty() && !pointer.starts_with('/') {
            w.problem(
                &join(&jp, "pointer"),
                format!("a JSON pointer starts with / (got {pointer:?})"),
            );
        }
        r.json = Some((
            pointer,
            matcher(w, [&j.equals, &j.contains, &j.matches], &jp)?,
        ));
    }
    if let Some(h) = &m.hex {
        r.bytes = Some(hex_at(w, &h.text(), &join(path, "hex"))?);
    }
    r.export = match m.export {
        None => Vec::new(),
        Some(schema::WsExports::One(x)) => vec![export(x)],
        Some(schema::WsExports::Many(xs)) => xs.into_iter().map(export).collect(),
    };
    Some(r)
}

/// `export: NAME` (the message's text), or `{name, pointer}`.
fn export(x: schema::WsExportItem) -> (String, Option<String>) {
    match x {
        schema::WsExportItem::Name(name) => (name, None),
        schema::WsExportItem::Full(e) => (e.name, e.pointer),
    }
}

/// `close: 1000` or `close: {code, reason}` (1000 and no reason by default).
fn close(w: &mut Walker, c: schema::WsCloseStep, path: &str, timeout_ms: u64) -> Option<WsStep> {
    let (code, reason) = match c {
        schema::WsCloseStep::Code(c) => (c, None),
        schema::WsCloseStep::Full(f) => (f.code.unwrap_or(1000), f.reason),
    };
    let code = u16::try_from(code)
        .ok()
        .filter(|c| matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999));
    let reason = reason.unwrap_or_default();
    if code.is_none() || reason.len() > 123 {
        w.problem(
            path,
            "a code of 1000-1003, 1007-1014 or 3000-4999, and a reason of at most 123 bytes",
        );
        return None;
    }
    Some(WsStep::Close {
        code: code?,
        reason,
        timeout_ms,
    })
}
