//! A WebSocket receive step's checks on the message, and its exports.

use super::*;
use crate::format::scenario::WsReceive;
use crate::runtime::websocket::ws;

/// The message's text, when it is text (a binary message's bytes when they are UTF-8).
fn text_of(m: &ws::Message) -> Option<&str> {
    match m {
        ws::Message::Text(t) => Some(t),
        ws::Message::Binary(b) => std::str::from_utf8(b).ok(),
    }
}

fn bytes_of(m: &ws::Message) -> &[u8] {
    match m {
        ws::Message::Text(t) => t.as_bytes(),
        ws::Message::Binary(b) => b,
    }
}

/// Whether `v` matches, `equals` and `contains` rendered with the user's variables first.
fn holds(m: &Match, v: &str, vars: &Vars) -> Result<bool, String> {
    let render = |t: &str| template::render(t, vars).map_err(|e| format!("template: {e}"));
    Ok(match m {
        Match::Exists => true,
        Match::Equals(x) => v == render(x)?,
        Match::Contains(x) => v.contains(&render(x)?),
        Match::Matches(re) => re.is_match(v),
    })
}

fn pointed(text: &str, pointer: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.pointer(pointer).map(|x| match x {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A short view of a message for an error.
fn preview(m: &ws::Message) -> String {
    match text_of(m) {
        Some(t) if t.len() <= 80 => format!("{t:?}"),
        Some(t) => format!(
            "{:?}... ({} bytes)",
            &t[..t.floor_char_boundary(80)],
            t.len()
        ),
        None => format!("{} binary bytes", bytes_of(m).len()),
    }
}

/// Check `m` against the step, then export from it: `Err((kind, text))` on a mismatch or an
/// export not found.
pub(super) fn check(
    r: &WsReceive,
    m: &ws::Message,
    action_id: &str,
    vars: &mut Vars,
    uses_vars: bool,
) -> Result<(), (String, String)> {
    let text = text_of(m);
    let mismatch = |what: &str| {
        (
            "ws-receive-mismatch".to_string(),
            format!("{} {what}", preview(m)),
        )
    };
    if let Some(want) = &r.text {
        let ok = text.is_some_and(|t| holds(want, t, vars).unwrap_or(false));
        if !ok {
            return Err(mismatch("did not match the expected text"));
        }
    }
    if let Some((pointer, want)) = &r.json {
        let ok = text
            .and_then(|t| pointed(t, pointer))
            .is_some_and(|v| holds(want, &v, vars).unwrap_or(false));
        if !ok {
            return Err(mismatch(&format!("has no {pointer} that matches")));
        }
    }
    if r.bytes.as_deref().is_some_and(|b| b != bytes_of(m)) {
        return Err(mismatch("is not the expected bytes"));
    }
    if !uses_vars {
        return Ok(());
    }
    for (name, pointer) in &r.export {
        let value = match pointer {
            None => text.map(str::to_string),
            Some(p) => text.and_then(|t| pointed(t, p)),
        };
        let Some(value) = value else {
            return Err((
                format!("export-failed({name})"),
                format!("{} has nothing to export as {name}", preview(m)),
            ));
        };
        vars.entry(action_id.to_string())
            .or_default()
            .insert(name.clone(), value);
    }
    Ok(())
}
