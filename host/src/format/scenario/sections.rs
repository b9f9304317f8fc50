//! The scenario file's sections, each read by the walker into the model.

use super::*;

/// `actions.actions:`.
pub(super) fn actions(
    w: &mut Walker,
    top: &serde_yaml::Mapping,
    resources: &[Resource],
) -> Vec<Action> {
    let mut actions = Vec::new();
    // What templates can know before the run: the resources' properties.
    let static_vars: template::Vars = resources
        .iter()
        .map(|r| (r.id.clone(), r.properties.clone()))
        .collect();
    if let Some(am) =
        get(top, "actions").and_then(|v| w.map(v, "actions", schema::fields::<schema::Actions>()))
    {
        for (i, a) in w
            .list(get(am, "actions"), "actions.actions")
            .iter()
            .enumerate()
        {
            let path = format!("actions.actions[{i}]");
            let Some(m) = w.map(a, &path, schema::fields::<schema::Action>()) else {
                continue;
            };
            let id = w
                .string(get(m, "id"), &join(&path, "id"), true)
                .unwrap_or_default();
            if actions.iter().any(|x: &Action| x.id == id) {
                w.problem(&join(&path, "id"), format!("duplicate action id {id:?}"));
            }
            let call = w
                .string(get(m, "call"), &join(&path, "call"), true)
                .unwrap_or_default();
            let udp_reply = match call.to_ascii_lowercase().as_str() {
                "udp.send-reply" | "udp-send-reply" => Some(true),
                "udp.send" | "udp-send" => Some(false),
                _ => None,
            };
            let is_ws = call.eq_ignore_ascii_case("websocket");
            if !call.is_empty()
                && udp_reply.is_none()
                && !is_ws
                && !["get", "post", "put", "delete", "patch", "head", "options"]
                    .contains(&call.to_ascii_lowercase().as_str())
            {
                w.problem(
                    &join(&path, "call"),
                    format!(
                        "unknown call {call:?} (get, post, put, delete, patch, head, options, \
                         udp.send, udp.send-reply, websocket)"
                    ),
                );
            }
            let mut with = get(m, "with")
                .map(yaml_to_json)
                .unwrap_or(serde_json::Value::Null);
            // `dynamic_tasks` is the host's (the executor never sees it).
            let dynamic = dynamic_tasks(
                w,
                get(m, "with")
                    .and_then(Value::as_mapping)
                    .and_then(|wm| get(wm, "dynamic_tasks")),
                &join(&path, "with.dynamic_tasks"),
            );
            if let Some(o) = with.as_object_mut() {
                o.remove("dynamic_tasks");
            }
            let redirect_any_port = any_port(w, &mut with, &path);
            upload::check_upload(w, &with, &path);
            let mut bad = Vec::new();
            template::check_json(&with, &join(&path, "with"), &mut bad);
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
                        &join(&path, "with.timeout"),
                        format!("{text:?} is not a duration (5s, 500ms, 1m)"),
                    );
                }
            }
            let udp = udp_reply.and_then(|reply| {
                udp_with(w, get(m, "with"), &join(&path, "with"), reply, resources)
            });
            let websocket = is_ws
                .then(|| ws_with(w, get(m, "with"), &join(&path, "with"), &id))
                .flatten();
            match &with {
                _ if udp_reply.is_some() || is_ws => {}
                serde_json::Value::Object(o) if o.contains_key("url") => {
                    check_with(w, &path, &id, &call, &with, &static_vars)
                }
                serde_json::Value::Object(_) => w.problem(&join(&path, "with.url"), "required"),
                _ => w.problem(&join(&path, "with"), "expected a mapping with at least url"),
            }
            let mut exports = Vec::new();
            for (j, e) in w
                .list(get(m, "export"), &join(&path, "export"))
                .iter()
                .enumerate()
            {
                let ep = format!("{path}.export[{j}]");
                let Some(em) = w.map(e, &ep, schema::fields::<schema::Export>()) else {
                    continue;
                };
                let name = w
                    .string(get(em, "name"), &join(&ep, "name"), true)
                    .unwrap_or_default();
                let kind = match w
                    .string(get(em, "type"), &join(&ep, "type"), false)
                    .as_deref()
                {
                    None | Some("content") if name == "status_code" => ExportKind::StatusCode,
                    // `assert`: the original declares it and never runs it; read as content.
                    None | Some("content") | Some("body") | Some("assert") => ExportKind::Body,
                    Some("status_code") | Some("status") => ExportKind::StatusCode,
                    Some("header") => ExportKind::Header(
                        w.string(get(em, "header"), &join(&ep, "header"), false)
                            .unwrap_or_else(|| name.clone()),
                    ),
                    Some("json") => match w.string(get(em, "pointer"), &join(&ep, "pointer"), true)
                    {
                        Some(p) if p.is_empty() || p.starts_with('/') => ExportKind::JsonPointer(p),
                        Some(p) => {
                            w.problem(
                                &join(&ep, "pointer"),
                                format!("a JSON pointer starts with / (got {p:?})"),
                            );
                            ExportKind::Body
                        }
                        None => ExportKind::Body,
                    },
                    Some(other) => {
                        w.problem(
                            &join(&ep, "type"),
                            format!(
                                "unknown export type {other:?} (content, status_code, header, json, assert)"
                            ),
                        );
                        ExportKind::Body
                    }
                };
                // `scope` is accepted as the original declares it; exports are the user's
                // (every later action of the user sees them) whatever it says.
                w.string(get(em, "scope"), &join(&ep, "scope"), false);
                let default = match get(em, "default") {
                    None | Some(Value::Null) => None,
                    Some(v) => w.string(Some(v), &join(&ep, "default"), false),
                };
                exports.push(Export {
                    name,
                    kind,
                    default,
                });
            }
            let mut checks = Vec::new();
            for (j, c) in w
                .list(get(m, "checks"), &join(&path, "checks"))
                .iter()
                .enumerate()
            {
                if let Some(c) = check(w, c, &format!("{path}.checks[{j}]")) {
                    checks.push(c);
                }
            }
            answer_limits(w, &path, udp_reply.is_some(), is_ws, &checks, &exports);
            actions.push(Action {
                id,
                call: call.to_ascii_lowercase(),
                with,
                exports,
                checks,
                dynamic,
                udp,
                websocket,
                redirect_any_port,
                tags: action_tags(w, get(m, "tags"), &join(&path, "tags")),
            });
        }
    }
    if actions.is_empty() {
        w.problem("actions.actions", "at least one action is required");
    }
    actions
}

/// What a check or export may read of an action's answer.
type Reads<T> = fn(&T) -> bool;

/// A UDP action's reply has a body and a time; a WebSocket action's handshake a status,
/// headers and a time (its messages are checked and exported by its receive steps): their
/// checks and exports may read only those.
fn answer_limits(
    w: &mut Walker,
    path: &str,
    udp: bool,
    ws: bool,
    checks: &[Check],
    exports: &[Export],
) {
    let (check_ok, check_says, export_ok, export_says): (
        Reads<CheckKind>,
        &str,
        Reads<ExportKind>,
        &str,
    ) = match (udp, ws) {
        (true, _) => (
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
        (_, true) => (
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
        _ => return,
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

/// `workflows.nodes:`, and whether the list was cut at the limit.
pub(super) fn workflows(
    w: &mut Walker,
    top: &serde_yaml::Mapping,
    actions: &[Action],
) -> (Vec<Node>, bool) {
    let mut nodes = Vec::new();
    let mut truncated = false;
    match get(top, "workflows")
        .and_then(|v| w.map(v, "workflows", schema::fields::<schema::Workflows>()))
    {
        None => w.problem("workflows", "required"),
        Some(wf) => {
            let items = w.list(get(wf, "nodes"), "workflows.nodes");
            truncated = items.len() > MAX_NODES;
            if truncated {
                // Refused before each node is read: the limit bounds the work too.
                w.problem(
                    "workflows.nodes",
                    format!("{} nodes; at most {MAX_NODES}", items.len()),
                );
            }
            let mut seen: HashSet<String> = HashSet::new();
            for (i, n) in items.iter().take(MAX_NODES).enumerate() {
                let path = format!("workflows.nodes[{i}]");
                let Some(m) = w.map(n, &path, schema::fields::<schema::Node>()) else {
                    continue;
                };
                // The original's scheduling priority: one node runs at a time per user here,
                // so it orders nothing; read for its type.
                if let Some(p) = get(m, "priority")
                    && !p.is_null()
                    && p.as_i64().is_none()
                {
                    w.problem(&join(&path, "priority"), "expected an integer");
                }
                let id = w
                    .string(get(m, "id"), &join(&path, "id"), true)
                    .unwrap_or_default();
                let kind = match w
                    .string(get(m, "type"), &join(&path, "type"), false)
                    .as_deref()
                {
                    Some("end") => NodeKind::End,
                    Some("wait") => {
                        let on = get(m, "on").and_then(|v| {
                            w.map(v, &join(&path, "on"), schema::fields::<schema::WaitOn>())
                        });
                        let mut wait = Wait {
                            action: None,
                            expect: UdpExpect::default(),
                        };
                        match on {
                            None => w.problem(&join(&path, "on"), "required (event and match)"),
                            Some(on) => {
                                let ev = w.string(get(on, "event"), &join(&path, "on.event"), true);
                                if let Some(ev) = ev
                                    && ev != "packet-rx"
                                    && ev != "packet.rx"
                                {
                                    w.problem(
                                        &join(&path, "on.event"),
                                        format!("unknown event {ev:?} (packet-rx)"),
                                    );
                                }
                                if let Some(mm) = get(on, "match").and_then(|v| {
                                    w.map(
                                        v,
                                        &join(&path, "on.match"),
                                        schema::fields::<schema::WaitMatch>(),
                                    )
                                }) {
                                    let mp = join(&path, "on.match");
                                    wait.action = w.string(
                                        get(mm, "action_id"),
                                        &join(&mp, "action_id"),
                                        false,
                                    );
                                    // The original's task and socket ids name its own objects.
                                    w.string(get(mm, "task_id"), &join(&mp, "task_id"), false);
                                    w.uint(get(mm, "sock_id"), &join(&mp, "sock_id"));
                                    if let Some(e) = udp_expect(w, mm, &mp) {
                                        wait.expect = e;
                                    }
                                }
                            }
                        }
                        if let Some(a) = &wait.action
                            && !actions
                                .iter()
                                .any(|x| x.id == *a && x.udp.as_ref().is_some_and(|u| u.reply))
                        {
                            w.problem(
                                &join(&path, "on.match.action_id"),
                                format!("no udp.send-reply action {a:?}"),
                            );
                        }
                        NodeKind::Wait(wait)
                    }
                    None | Some("action") => {
                        let a = w
                            .string(get(m, "action"), &join(&path, "action"), true)
                            .unwrap_or_default();
                        if !a.is_empty() && !actions.iter().any(|x| x.id == a) {
                            w.problem(&join(&path, "action"), format!("unknown action {a:?}"));
                        }
                        NodeKind::Action(a)
                    }
                    Some(other) => {
                        w.problem(
                            &join(&path, "type"),
                            format!("unknown node type {other:?} (action, wait, end)"),
                        );
                        NodeKind::End
                    }
                };
                let mut edges = Vec::new();
                for (j, e) in w
                    .list(get(m, "edges"), &join(&path, "edges"))
                    .iter()
                    .enumerate()
                {
                    let ep = format!("{path}.edges[{j}]");
                    let Some(em) = w.map(e, &ep, schema::fields::<schema::Edge>()) else {
                        continue;
                    };
                    let to = w
                        .string(get(em, "to"), &join(&ep, "to"), true)
                        .unwrap_or_default();
                    let trigger = get(em, "trigger").map(|t| trigger(w, t, &ep));
                    w.string(get(em, "label"), &join(&ep, "label"), false);
                    edges.push(Edge { to, trigger });
                }
                if !seen.insert(id.clone()) {
                    w.problem(&join(&path, "id"), format!("duplicate node id {id:?}"));
                }
                let once = w
                    .boolean(get(m, "once"), &join(&path, "once"))
                    .unwrap_or(false);
                nodes.push(Node {
                    id,
                    kind,
                    edges,
                    once,
                });
            }
        }
    }
    (nodes, truncated)
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
fn action_tags(w: &mut Walker, v: Option<&Value>, path: &str) -> Vec<(String, String)> {
    let Some(m) = v.filter(|v| !v.is_null()).and_then(|v| {
        let m = v.as_mapping();
        if m.is_none() {
            w.problem(path, "expected a mapping of tag name to value");
        }
        m
    }) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let name = k.as_str().unwrap_or_default().to_string();
        let p = join(path, &name);
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || ["action", "name", "tenant", "status"].contains(&name.as_str()) {
            w.problem(&p, format!("{name:?} cannot be a tag name (letters, digits and _; not action, name, tenant or status)"));
            continue;
        }
        if let Some(value) = w.string(Some(v), &p, false) {
            out.push((name, value));
        }
    }
    out.sort();
    out
}
