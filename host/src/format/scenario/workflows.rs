//! `workflows:`: the nodes, their edges and what triggers them.

use super::*;

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
