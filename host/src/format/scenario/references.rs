//! What templates read: dynamic tasks, each action's `with` by the executor's rules, and every name a template or condition reads.

use super::*;

/// `with.dynamic_tasks`: `[{id, action_id, kind: action|end, outgoing: [{target, label}]}]`.
pub(super) fn dynamic_tasks(w: &mut Walker, v: Option<&Value>, path: &str) -> Vec<DynamicTask> {
    let given = w.list(v, path).len();
    if given > MAX_DYNAMIC {
        w.warn(
            path,
            format!(
                "{given} tasks; the first {MAX_DYNAMIC} run (as the original drains at most {MAX_DYNAMIC})"
            ),
        );
    }
    let mut out = Vec::new();
    for (i, t) in w.items::<schema::DynamicTask>(v, path) {
        let tp = format!("{path}[{i}]");
        let id = t.id.text();
        if let Err(e) = template::check(&id) {
            w.problem(&join(&tp, "id"), e);
        }
        let action = opt_text(&t.action_id);
        let action = match opt_text(&t.kind).as_deref() {
            None | Some("action") => {
                if action.is_none() {
                    w.problem(&join(&tp, "action_id"), "required (kind action)");
                }
                action
            }
            Some("end") => None,
            Some(other) => {
                w.problem(
                    &join(&tp, "kind"),
                    format!("unknown kind {other:?} (action, end)"),
                );
                None
            }
        };
        out.push(DynamicTask { id, action });
    }
    out.truncate(MAX_DYNAMIC);
    out
}

/// An action's `with` checked by the executor's own parameter rules (`http_core::params`, the
/// code the http-actions component runs), as far as it is known before the run: templates over
/// resources are rendered; the rest (`{{user.allocated_ip}}`, exports) stand in as `1`, and a
/// `url`, `bind_ip` or `release` that is a template from its start is left to the run.
pub(super) fn check_with(
    w: &mut Walker,
    path: &str,
    id: &str,
    call: &str,
    with: &serde_json::Value,
    vars: &template::Vars,
) {
    use http_core::Method;
    let method = match call.to_ascii_lowercase().as_str() {
        "get" => Method::Get,
        "post" => Method::Post,
        "put" => Method::Put,
        "delete" => Method::Delete,
        "patch" => Method::Patch,
        "head" => Method::Head,
        "options" => Method::Options,
        _ => return,
    };
    pub(super) fn known(v: &serde_json::Value, vars: &template::Vars) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) if s.contains("{{") => {
                serde_json::Value::String(template::render(s, vars).unwrap_or_else(|_| {
                    let mut out = String::new();
                    let mut rest = s.as_str();
                    while let Some(i) = rest.find("{{") {
                        out.push_str(&rest[..i]);
                        out.push('1');
                        rest = rest[i..].find("}}").map_or("", |j| &rest[i + j + 2..]);
                    }
                    out + rest
                }))
            }
            serde_json::Value::Array(a) => a.iter().map(|x| known(x, vars)).collect(),
            serde_json::Value::Object(o) => {
                o.iter().map(|(k, x)| (k.clone(), known(x, vars))).collect()
            }
            other => other.clone(),
        }
    }
    let Some(o) = with.as_object() else { return };
    let mut checked = serde_json::Map::new();
    for (k, v) in o {
        // `timeout` is the host's (checked above); it becomes `timeouts.total_ms`.
        if k == "timeout" || super::UPLOAD_KEYS.contains(&k.as_str()) {
            continue;
        }
        let dynamic = v.as_str().is_some_and(|s| {
            s.trim_start().starts_with("{{") && template::render(s, vars).is_err()
        });
        match k.as_str() {
            "url" if dynamic => {
                checked.insert(k.clone(), "http://127.0.0.1/".into());
            }
            "bind_ip" | "release" if dynamic => {}
            _ => {
                checked.insert(k.clone(), known(v, vars));
            }
        }
    }
    let text = serde_json::Value::Object(checked).to_string();
    if let Err(e) = http_core::params::parse(id, method, &text) {
        let field = if e.field == "with-params" {
            join(path, "with")
        } else {
            format!("{path}.with.{}", e.field)
        };
        w.problem(&field, e.message);
    }
}

/// Every name a template or condition reads should be something the run can have: a
/// resource's property, `user.{id,tenant,allocated_ip,iteration}`, `tenant.id`, or an action's
/// `status_code`, `ok`, `error` or export. One that nothing declares is a warning, and is left
/// as written when rendered, as the original scheduler does (an action whose URL keeps one is
/// skipped, the original's dry run); the names are returned. A resource nothing reads is a
/// warning too.
pub(super) fn check_references(
    w: &mut Walker,
    (resources, data, servers): (&[Resource], &[super::DataSource], &[super::ServerSpec]),
    actions: &[Action],
    nodes: &[Node],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut scopes: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    scopes.insert("user", ["id", "tenant", "allocated_ip", "iteration"].into());
    scopes.insert("tenant", ["id"].into());
    for r in resources {
        scopes.insert(&r.id, r.properties.keys().map(String::as_str).collect());
    }
    // A server: one of its instances' URL, address and port (`{{api.url}}`).
    for s in servers {
        scopes.insert(&s.id, ["url", "address", "port"].into());
    }
    // A data file's columns are known once it is read (`Scenario::load_data` checks them).
    for d in data {
        scopes.insert(&d.id, ["*"].into());
    }
    for a in actions {
        let mut names: BTreeSet<&str> = ["status_code", "ok", "error"].into();
        names.extend(a.exports.iter().map(|e| e.name.as_str()));
        scopes.insert(&a.id, names);
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    // Every name an action or an edge reads.
    let mut read: BTreeSet<String> = BTreeSet::new();
    let mut undeclared = BTreeSet::new();
    let mut check = |w: &mut Walker, path: &str, names: Vec<String>| {
        for n in names {
            let (scope, name) = n.split_once('.').unwrap_or((&n, ""));
            used.insert(scope.to_string());
            read.insert(n.clone());
            let why = match scopes.get(scope) {
                None => format!("no resource, action, user or tenant {scope:?}"),
                Some(known) if !known.contains(name) && !known.contains("*") => format!(
                    "{scope:?} has no {name:?} (it has: {})",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                Some(_) => continue,
            };
            w.warnings.push(Problem {
                path: path.to_string(),
                message: format!("{n:?}: {why}; left as written, as the original does"),
                line: None,
            });
            undeclared.insert(n);
        }
    };
    for (i, a) in actions.iter().enumerate() {
        let mut strings = Vec::new();
        template::strings(&a.with, &format!("actions.actions[{i}].with"), &mut strings);
        // A UDP action's target taken from a udp-endpoint resource is a template too.
        let target = match a.udp.as_ref().map(|u| &u.target) {
            Some(UdpTarget::Parts(ip, port)) => vec![ip.as_str(), port.as_str()],
            Some(UdpTarget::Addr(t)) => vec![t.as_str()],
            None => vec![],
        };
        let at = format!("actions.actions[{i}].with.target");
        strings.extend(target.into_iter().map(|t| (at.clone(), t)));
        for (path, text) in strings {
            if let Ok(names) = template::names(text) {
                check(w, &path, names);
            }
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        for (j, e) in n.edges.iter().enumerate() {
            if let Some(c) = e.condition()
                && let Ok(names) = template::condition_names(c)
            {
                check(
                    w,
                    &format!("workflows.nodes[{i}].edges[{j}].trigger.condition"),
                    names,
                );
            }
        }
    }
    // Properties read by other properties count as read.
    for r in resources {
        for v in r.properties.values() {
            for n in template::names(v).unwrap_or_default() {
                used.insert(n.split_once('.').map_or(n.clone(), |(s, _)| s.to_string()));
            }
        }
    }
    for (i, r) in resources.iter().enumerate() {
        if !used.contains(&r.id) {
            w.warnings.push(Problem {
                path: format!("workbook.resources[{i}]"),
                message: format!("resource {:?} is not used by any template", r.id),
                line: None,
            });
        }
    }
    (undeclared, read)
}
