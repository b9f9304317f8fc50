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

const STEP_KINDS: [&str; 6] = ["send", "send_hex", "receive", "ping", "sleep", "close"];

/// Keys of `with` that are the host's, not the executor's.
const HOST_KEYS: [&str; 4] = ["session", "keep_open", "steps", "timeout"];

/// What a receive, ping or close waits unless its step says.
const STEP_TIMEOUT_MS: u64 = 10_000;

pub(super) fn ws_with(
    w: &mut Walker,
    v: Option<&Value>,
    path: &str,
    id: &str,
) -> Option<WebSocket> {
    let Some(v) = v else {
        w.problem(path, "required (a url and steps)");
        return None;
    };
    let m = w.map(v, path, schema::fields::<schema::WebSocketWith>())?;
    let at = |k: &str| join(path, k);
    let session = w
        .string(get(m, "session"), &at("session"), false)
        .unwrap_or_else(|| id.to_string());
    let keep_open = w
        .boolean(get(m, "keep_open"), &at("keep_open"))
        .unwrap_or(false);
    let mut open = yaml_to_json(v);
    if let Some(o) = open.as_object_mut() {
        HOST_KEYS.iter().for_each(|k| {
            o.remove(*k);
        });
    }
    if let Some(d) = w.duration(get(m, "timeout"), &at("timeout")) {
        open["timeouts"]["total_ms"] = (d.as_millis().max(1) as u64).into();
    }
    match open.get("url").and_then(|u| u.as_str()) {
        Some(u) if !template::has_template(&serde_json::Value::String(u.into())) => {
            let lower = u.to_ascii_lowercase();
            if !lower.starts_with("ws://") && !lower.starts_with("wss://") {
                w.problem(&at("url"), format!("{u:?}: expected ws:// or wss://"));
            }
        }
        Some(_) => {}
        None if open.as_object().is_some_and(|o| o.len() > 1) => {
            w.problem(
                &at("url"),
                "required to open a session (parameters were given)",
            );
        }
        None => {}
    }
    let open = open.get("url").is_some().then_some(open);
    let mut steps = Vec::new();
    for (i, s) in w.list(get(m, "steps"), &at("steps")).iter().enumerate() {
        if let Some(step) = step(w, s, &format!("{path}.steps[{i}]")) {
            steps.push(step);
        }
    }
    Some(WebSocket {
        session,
        keep_open,
        open,
        steps,
    })
}

fn step(w: &mut Walker, v: &Value, path: &str) -> Option<WsStep> {
    let m = w.map(v, path, schema::fields::<schema::WsStep>())?;
    let given: Vec<&str> = STEP_KINDS
        .into_iter()
        .filter(|k| get(m, k).is_some())
        .collect();
    let [kind] = given[..] else {
        w.problem(
            path,
            format!(
                "give exactly one of {} (got {})",
                STEP_KINDS.join(", "),
                given.len()
            ),
        );
        return None;
    };
    let at = join(path, kind);
    let timeout_ms = w
        .duration(get(m, "timeout"), &join(path, "timeout"))
        .map_or(STEP_TIMEOUT_MS, |d| {
            d.as_millis().clamp(1, 3_600_000) as u64
        });
    if get(m, "timeout").is_some() && !matches!(kind, "receive" | "ping" | "close") {
        w.problem(
            &join(path, "timeout"),
            "only a receive, ping or close waits",
        );
    }
    Some(match kind {
        "send" => WsStep::Send(w.string(get(m, kind), &at, true)?),
        "send_hex" => {
            let hex = w.string(get(m, kind), &at, true)?;
            WsStep::SendHex(hex_at(w, &hex, &at)?)
        }
        "receive" => WsStep::Receive(receive(w, get(m, kind), &at, timeout_ms)?),
        "ping" => WsStep::Ping {
            payload: w.string(get(m, kind), &at, false).unwrap_or_default(),
            timeout_ms,
        },
        "sleep" => WsStep::Sleep(w.duration(get(m, kind), &at)?),
        _ => close(w, get(m, kind), &at, timeout_ms)?,
    })
}

fn receive(w: &mut Walker, v: Option<&Value>, path: &str, timeout_ms: u64) -> Option<WsReceive> {
    let mut r = WsReceive {
        timeout_ms,
        text: None,
        json: None,
        bytes: None,
        export: Vec::new(),
    };
    let Some(m) = v
        .filter(|v| !v.is_null())
        .and_then(|v| w.map(v, path, schema::fields::<schema::WsReceive>()))
    else {
        return Some(r);
    };
    if ["equals", "contains", "matches"]
        .iter()
        .any(|k| get(m, k).is_some())
    {
        r.text = matcher(w, m, path);
    }
    if let Some(j) = get(m, "json") {
        let jp = join(path, "json");
        let jm = w.map(j, &jp, schema::fields::<schema::WsJson>())?;
        let pointer = w.string(get(jm, "pointer"), &join(&jp, "pointer"), true)?;
        if !pointer.is_empty() && !pointer.starts_with('/') {
            w.problem(
                &join(&jp, "pointer"),
                format!("a JSON pointer starts with / (got {pointer:?})"),
            );
        }
        r.json = Some((pointer, matcher(w, jm, &jp)?));
    }
    if let Some(h) = w.string(get(m, "hex"), &join(path, "hex"), false) {
        r.bytes = Some(hex_at(w, &h, &join(path, "hex"))?);
    }
    r.export = exports(w, get(m, "export"), &join(path, "export"));
    Some(r)
}

/// `export: NAME` (the message's text), or `{name, pointer}`, or a list of those.
fn exports(w: &mut Walker, v: Option<&Value>, path: &str) -> Vec<(String, Option<String>)> {
    let items: Vec<Value> = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Sequence(s)) => s.clone(),
        Some(one) => vec![one.clone()],
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match item {
            Value::String(name) => out.push((name.clone(), None)),
            Value::Mapping(_) => {
                let Some(m) = w.map(item, &p, schema::fields::<schema::WsExport>()) else {
                    continue;
                };
                let name = w.string(get(m, "name"), &join(&p, "name"), true);
                let pointer = w.string(get(m, "pointer"), &join(&p, "pointer"), false);
                if let Some(name) = name {
                    out.push((name, pointer));
                }
            }
            _ => w.problem(&p, "expected a name, or {name, pointer}"),
        }
    }
    out
}

/// `close: 1000` or `close: {code, reason}` (1000 and no reason by default).
fn close(w: &mut Walker, v: Option<&Value>, path: &str, timeout_ms: u64) -> Option<WsStep> {
    let (code, reason) = match v {
        None | Some(Value::Null) => (Some(1000), None),
        Some(Value::Mapping(_)) => {
            let m = w.map(v?, path, schema::fields::<schema::WsClose>())?;
            (
                w.uint(get(m, "code"), &join(path, "code")).or(Some(1000)),
                w.string(get(m, "reason"), &join(path, "reason"), false),
            )
        }
        Some(other) => (w.uint(Some(other), path), None),
    };
    let code = code
        .and_then(|c| u16::try_from(c).ok())
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
