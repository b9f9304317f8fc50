//! `actions.actions:`: each action read as the schema's `Action` (serde), its `with` left as
//! written for its call's own rules (the executor's parameters, UDP's, WebSocket's), then
//! judged: ids, calls, templates, exports, checks and tags.

use super::*;

/// The call's family, by its name.
#[derive(Clone, Copy, PartialEq)]
enum Family {
    Http,
    /// UDP; true when a reply is awaited.
    Udp(bool),
    WebSocket,
}

pub(super) fn actions(
    w: &mut Walker,
    top: &serde_yaml::Mapping,
    resources: &[Resource],
) -> Vec<Action> {
    // What templates can know before the run: the resources' properties.
    let static_vars: template::Vars = resources
        .iter()
        .map(|r| (r.id.clone(), r.properties.clone()))
        .collect();
    let mut actions: Vec<Action> = Vec::new();
    if let Some(am) =
        get(top, "actions").and_then(|v| w.map(v, "actions", schema::fields::<schema::Actions>()))
    {
        let discard = get(am, "discard_response_bodies")
            .and_then(|v| w.typed::<bool>(v, "actions.discard_response_bodies"))
            .unwrap_or(false);
        let list = w.list(get(am, "actions"), "actions.actions");
        for (i, raw) in list.iter().enumerate() {
            let path = format!("actions.actions[{i}]");
            let mut a = match w.typed::<schema::Action>(raw, &path) {
                Some(a) => action(w, &path, a, resources, &static_vars),
                // Kept by its id (the scenario is refused): what names it is not a problem too.
                None => unread(raw),
            };
            if discard {
                discard_by_default(&mut a);
            }
            if actions.iter().any(|x| x.id == a.id) {
                w.problem(
                    &join(&path, "id"),
                    format!("duplicate action id {:?}", a.id),
                );
            }
            actions.push(a);
        }
    }
    if actions.is_empty() {
        w.problem("actions.actions", "at least one action is required");
    }
    actions
}

/// `actions.discard_response_bodies`: an HTTP action's body is discarded unless its
/// `with.discard_body` is given or a check reads the body.
fn discard_by_default(a: &mut Action) {
    let http = a.udp.is_none() && a.websocket.is_none();
    let body_checked = a.checks.iter().any(|c| {
        matches!(
            c.kind,
            CheckKind::BodyContains(_) | CheckKind::BodyMatches(_) | CheckKind::Json(..)
        )
    });
    if let Some(o) = a.with.as_object_mut()
        && http
        && !body_checked
    {
        o.entry("discard_body").or_insert(true.into());
    }
}

/// An action that could not be read: its id, when it has one, and its `with` as written (for
/// the names its templates read).
fn unread(raw: &Value) -> Action {
    let with = raw.as_mapping().and_then(|m| get(m, "with"));
    Action {
        id: unread_id(raw),
        call: String::new(),
        with: with.map_or(serde_json::Value::Null, yaml_to_json),
        exports: Vec::new(),
        checks: Vec::new(),
        dynamic: Vec::new(),
        udp: None,
        websocket: None,
        redirect_any_port: false,
        tags: Vec::new(),
    }
}

fn action(
    w: &mut Walker,
    path: &str,
    a: schema::Action,
    resources: &[Resource],
    static_vars: &template::Vars,
) -> Action {
    let (id, call) = (a.id.text(), a.call.text());
    let family = family(w, &call, path);
    let mut with = yaml_to_json(&a.with);
    // `dynamic_tasks` is the host's (the executor never sees it).
    let dynamic = dynamic_tasks(
        w,
        a.with.as_mapping().and_then(|wm| get(wm, "dynamic_tasks")),
        &join(path, "with.dynamic_tasks"),
    );
    if let Some(o) = with.as_object_mut() {
        o.remove("dynamic_tasks");
    }
    let redirect_any_port = any_port(w, &mut with, path);
    common_with(w, &with, path);
    let wp = join(path, "with");
    let (udp, websocket) = match family {
        Family::Udp(reply) => (udp_with(w, &a.with, &wp, reply, resources), None),
        Family::WebSocket => (None, ws_with(w, &a.with, &wp, &id)),
        Family::Http => {
            match &with {
                serde_json::Value::Object(o) if o.contains_key("url") => {
                    check_with(w, path, &id, &call, &with, static_vars)
                }
                serde_json::Value::Object(_) => w.problem(&join(path, "with.url"), "required"),
                _ => w.problem(&wp, "expected a mapping with at least url"),
            }
            (None, None)
        }
    };
    let exports = enumerated(a.export)
        .map(|(j, e)| export(w, e, &format!("{path}.export[{j}]")))
        .collect::<Vec<_>>();
    let checks = enumerated(a.checks)
        .filter_map(|(j, c)| check(w, c, &format!("{path}.checks[{j}]")))
        .collect::<Vec<_>>();
    answer_limits(w, path, family, &checks, &exports);
    Action {
        id,
        call: call.to_ascii_lowercase(),
        with,
        exports,
        checks,
        dynamic,
        udp,
        websocket,
        redirect_any_port,
        tags: action_tags(w, a.tags, &join(path, "tags")),
    }
}

fn enumerated<T>(items: Option<Vec<T>>) -> impl Iterator<Item = (usize, T)> {
    items.unwrap_or_default().into_iter().enumerate()
}

/// The family of `call`: an HTTP method, a UDP send, or a WebSocket session.
fn family(w: &mut Walker, call: &str, path: &str) -> Family {
    match call.to_ascii_lowercase().as_str() {
        "udp.send-reply" | "udp-send-reply" => Family::Udp(true),
        "udp.send" | "udp-send" => Family::Udp(false),
        "websocket" => Family::WebSocket,
        "get" | "post" | "put" | "delete" | "patch" | "head" | "options" => Family::Http,
        _ => {
            w.problem(
                &join(path, "call"),
                format!(
                    "unknown call {call:?} (get, post, put, delete, patch, head, options, \
                     udp.send, udp.send-reply, websocket)"
                ),
            );
            Family::Http
        }
    }
}

/// What every family's `with` must hold to: uploads, templates, the whole request's timeout.
fn common_with(w: &mut Walker, with: &serde_json::Value, path: &str) {
    upload::check_upload(w, with, path);
    let mut bad = Vec::new();
    template::check_json(with, &join(path, "with"), &mut bad);
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
                &join(path, "with.timeout"),
                format!("{text:?} is not a duration (5s, 500ms, 1m)"),
            );
        }
    }
}

/// One of an action's `export`s at `ep`.
fn export(w: &mut Walker, e: schema::Export, ep: &str) -> Export {
    let name = e.name.text();
    let kind = match opt_text(&e.kind).as_deref() {
        None | Some("content") if name == "status_code" => ExportKind::StatusCode,
        // `assert`: the original declares it and never runs it; read as content.
        None | Some("content") | Some("body") | Some("assert") => ExportKind::Body,
        Some("status_code") | Some("status") => ExportKind::StatusCode,
        Some("header") => ExportKind::Header(opt_text(&e.header).unwrap_or_else(|| name.clone())),
        Some("json") => match opt_text(&e.pointer) {
            Some(p) if p.is_empty() || p.starts_with('/') => ExportKind::JsonPointer(p),
            Some(p) => {
                w.problem(
                    &join(ep, "pointer"),
                    format!("a JSON pointer starts with / (got {p:?})"),
                );
                ExportKind::Body
            }
            None => {
                w.problem(&join(ep, "pointer"), "required");
                ExportKind::Body
            }
        },
        Some(other) => {
            w.problem(
                &join(ep, "type"),
                format!(
                    "unknown export type {other:?} (content, status_code, header, json, assert)"
                ),
            );
            ExportKind::Body
        }
    };
    // `scope` is accepted as the original declares it; exports are the user's (every later
    // action of the user sees them) whatever it says.
    Export {
        name,
        kind,
        default: opt_text(&e.default),
    }
}

/// What a check or export may read of an action's answer.
type Reads<T> = fn(&T) -> bool;

/// A UDP action's reply has a body and a time; a WebSocket action's handshake a status,
/// headers and a time (its messages are checked and exported by its receive steps): their
/// checks and exports may read only those.
fn answer_limits(w: &mut Walker, path: &str, family: Family, checks: &[Check], exports: &[Export]) {
    let (check_ok, check_says, export_ok, export_says): (
        Reads<CheckKind>,
        &str,
        Reads<ExportKind>,
        &str,
    ) = match family {
        Family::Udp(_) => (
            |k| {
                !matches!(
                    k,
                    CheckKind::Status(_) | CheckKind::Header(..) | CheckKind::Json(..)
                )
            },
            "a UDP action takes body_contains, body_matches and duration checks",
            |e| *e == ExportKind::Body,
            "a UDP action exports its reply (type content)",
        ),
        Family::WebSocket => (
            |k| {
                !matches!(
                    k,
                    CheckKind::BodyContains(_) | CheckKind::BodyMatches(_) | CheckKind::Json(..)
                )
            },
            "a WebSocket action takes status, header and duration checks (messages are checked by its receive steps)",
            |e| matches!(e, ExportKind::StatusCode | ExportKind::Header(_)),
            "a WebSocket action exports its handshake's status_code or a header (messages are exported by its receive steps)",
        ),
        Family::Http => return,
    };
    for (j, _) in checks
        .iter()
        .enumerate()
        .filter(|(_, c)| !check_ok(&c.kind))
    {
        w.problem(&format!("{path}.checks[{j}]"), check_says);
    }
    for (j, _) in exports
        .iter()
        .enumerate()
        .filter(|(_, e)| !export_ok(&e.kind))
    {
        w.problem(&format!("{path}.export[{j}].type"), export_says);
    }
}

/// `with.redirects.any_port` (the host's policy: the executor never sees it).
fn any_port(w: &mut Walker, with: &mut serde_json::Value, path: &str) -> bool {
    let Some(r) = with.get_mut("redirects").and_then(|r| r.as_object_mut()) else {
        return false;
    };
    match r.remove("any_port") {
        None | Some(serde_json::Value::Bool(false)) => false,
        Some(serde_json::Value::Bool(true)) => true,
        Some(_) => {
            w.problem(
                &join(path, "with.redirects.any_port"),
                "expected true or false",
            );
            false
        }
    }
}

/// An action's `tags:`: names usable as metric labels and threshold filters.
fn action_tags(
    w: &mut Walker,
    tags: Option<BTreeMap<String, schema::Text>>,
    path: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in tags.unwrap_or_default() {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || ["action", "name", "tenant", "status"].contains(&name.as_str()) {
            w.problem(&join(path, &name), format!("{name:?} cannot be a tag name (letters, digits and _; not action, name, tenant or status)"));
            continue;
        }
        out.push((name, value.text()));
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use crate::format::scenario::parse;

    fn scenario(discard: &str) -> String {
        format!(
            r#"
version: "1.0"
name: discard
load: {{ ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 1 }} ] }} }}
actions:
  {discard}
  actions:
    - {{ id: plain, call: get, with: {{ url: "http://127.0.0.1:1/" }} }}
    - {{ id: kept, call: get, with: {{ url: "http://127.0.0.1:1/", discard_body: false }} }}
    - id: checked
      call: get
      with: {{ url: "http://127.0.0.1:1/" }}
      checks: [ {{ name: says hi, body_contains: hi }} ]
    - id: headers
      call: get
      with: {{ url: "http://127.0.0.1:1/" }}
      checks: [ {{ name: typed, header: content-type }} ]
    - {{ id: ws, call: websocket, with: {{ url: "ws://127.0.0.1:1/", steps: [ {{ close: {{}} }} ] }} }}
workflows:
  nodes: [ {{ id: start, action: plain, edges: [ {{ to: end }} ] }}, {{ id: end, type: end }} ]
"#
        )
    }

    /// What each action's `with` says of its body: `Some(true)` discarded.
    fn discarding(discard: &str) -> Vec<(String, Option<bool>)> {
        let s = parse(&scenario(discard)).unwrap_or_else(|p| panic!("{p:?}"));
        s.actions
            .iter()
            .map(|a| (a.id.clone(), a.with["discard_body"].as_bool()))
            .collect()
    }

    #[test]
    fn discard_response_bodies_is_every_http_actions_default() {
        let on = discarding("discard_response_bodies: true");
        let want = [
            ("plain", Some(true)),
            ("kept", Some(false)),
            ("checked", None),
            ("headers", Some(true)),
            ("ws", None),
        ];
        let want: Vec<(String, Option<bool>)> =
            want.iter().map(|(i, d)| (i.to_string(), *d)).collect();
        assert_eq!(on, want);
        // Off (or not given), nothing is added.
        for off in ["discard_response_bodies: false", ""] {
            assert!(
                discarding(off)
                    .iter()
                    .all(|(id, d)| id == "kept" || d.is_none()),
                "{off}"
            );
        }
        let bad = parse(&scenario("discard_response_bodies: maybe")).unwrap_err();
        assert!(
            format!("{bad:?}").contains("actions.discard_response_bodies"),
            "{bad:?}"
        );
    }
}
