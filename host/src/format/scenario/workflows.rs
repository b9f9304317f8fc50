//! `workflows:`: the nodes, their edges and what triggers them.

use super::*;

/// `workflows.nodes:`, and whether the list was cut at the limit.
pub(super) fn workflows(
    w: &mut Walker,
    top: &serde_yaml::Mapping,
    actions: &[Action],
) -> (Vec<Node>, bool) {
    let Some(wf) = get(top, "workflows")
        .and_then(|v| w.map(v, "workflows", schema::fields::<schema::Workflows>()))
    else {
        w.problem("workflows", "required");
        return (Vec::new(), false);
    };
    let items = w.list(get(wf, "nodes"), "workflows.nodes");
    let truncated = items.len() > MAX_NODES;
    if truncated {
        // Refused before each node is read: the limit bounds the work too.
        w.problem(
            "workflows.nodes",
            format!("{} nodes; at most {MAX_NODES}", items.len()),
        );
    }
    let mut nodes: Vec<Node> = Vec::new();
    for (i, raw) in items.iter().take(MAX_NODES).enumerate() {
        let path = format!("workflows.nodes[{i}]");
        let node = match w.typed::<schema::Node>(raw, &path) {
            Some(n) => node(w, n, &path, actions),
            // Kept by its id (the scenario is refused): edges into it are not problems too.
            None => Node {
                id: unread_id(raw),
                kind: NodeKind::End,
                edges: Vec::new(),
                once: false,
            },
        };
        if nodes.iter().any(|x| x.id == node.id) {
            w.problem(
                &join(&path, "id"),
                format!("duplicate node id {:?}", node.id),
            );
        }
        nodes.push(node);
    }
    (nodes, truncated)
}

/// One node: its kind (an action, a wait for a UDP reply, the end) and its edges. The
/// original's `priority` orders nothing here (a user runs one node at a time).
fn node(w: &mut Walker, n: schema::Node, path: &str, actions: &[Action]) -> Node {
    let kind = match opt_text(&n.kind).as_deref() {
        Some("end") => NodeKind::End,
        Some("wait") => NodeKind::Wait(wait(w, n.on.as_ref(), path, actions)),
        None | Some("action") => {
            let a = opt_text(&n.action).unwrap_or_default();
            if a.is_empty() {
                w.problem(&join(path, "action"), "required");
            } else if !actions.iter().any(|x| x.id == a) {
                w.problem(&join(path, "action"), format!("unknown action {a:?}"));
            }
            NodeKind::Action(a)
        }
        Some(other) => {
            w.problem(
                &join(path, "type"),
                format!("unknown node type {other:?} (action, wait, end)"),
            );
            NodeKind::End
        }
    };
    let edges = n
        .edges
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(j, e)| Edge {
            to: e.to.text(),
            trigger: e
                .trigger
                .map(|t| trigger(w, t, &format!("{path}.edges[{j}]"))),
        })
        .collect();
    Node {
        id: n.id.text(),
        kind,
        edges,
        once: n.once.unwrap_or(false),
    }
}

/// A wait node's `on: {event: packet-rx, match: {action_id, ...}}`: the reply of a
/// udp.send-reply action it waits for.
fn wait(w: &mut Walker, on: Option<&schema::WaitOn>, path: &str, actions: &[Action]) -> Wait {
    let mut wait = Wait {
        action: None,
        expect: UdpExpect::default(),
    };
    let Some(on) = on else {
        w.problem(&join(path, "on"), "required (event and match)");
        return wait;
    };
    let ev = on.event.text();
    if ev != "packet-rx" && ev != "packet.rx" {
        w.problem(
            &join(path, "on.event"),
            format!("unknown event {ev:?} (packet-rx)"),
        );
    }
    if let Some(mm) = &on.matching {
        let mp = join(path, "on.match");
        // The original's task and socket ids name its own objects.
        wait.action = opt_text(&mm.action_id);
        if let Some(e) = udp_expect(w, &mm.expect, &mp) {
            wait.expect = e;
        }
    }
    if let Some(a) = &wait.action
        && !actions
            .iter()
            .any(|x| x.id == *a && x.udp.as_ref().is_some_and(|u| u.reply))
    {
        w.problem(
            &join(path, "on.match.action_id"),
            format!("no udp.send-reply action {a:?}"),
        );
    }
    wait
}

/// An edge's `trigger:` at `ep`: a condition, an outcome, both (both must hold), or neither
/// (never taken, as in the original; worth a warning).
fn trigger(w: &mut Walker, t: schema::Trigger, ep: &str) -> Trigger {
    let path = join(ep, "trigger");
    let mut out = Trigger {
        condition: opt_text(&t.condition),
        ..Trigger::default()
    };
    if let Some(c) = &out.condition
        && let Err(e) = template::parse_condition(c)
    {
        w.problem(&join(&path, "condition"), e);
    }
    for (key, given) in [("on", &t.on), ("event", &t.event), ("status", &t.status)] {
        if let Some(given) = opt_text(given) {
            match Outcome::parse(&given) {
                Some(o) => out.on = Some(o),
                None => w.problem(
                    &join(&path, key),
                    format!("{given:?}: expected success, failed or timeout"),
                ),
            }
        }
    }
    if out.condition.is_none() && out.on.is_none() {
        w.warn(
            &path,
            "a trigger with neither condition nor on: the edge is never taken (as in the \
             original; leave trigger out for an edge always taken)",
        );
    }
    out
}
