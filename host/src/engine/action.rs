//! One action of a user: an HTTP action rendered, checked against the policy and executed
//! in the user's instance (a UDP exchange is `udp.rs`'s); its checks and exports.

use super::*;

pub(super) fn method(call: &str) -> exec::HttpMethod {
    match call {
        "post" => exec::HttpMethod::Post,
        "put" => exec::HttpMethod::Put,
        "delete" => exec::HttpMethod::Delete,
        "patch" => exec::HttpMethod::Patch,
        "head" => exec::HttpMethod::Head,
        "options" => exec::HttpMethod::Options,
        _ => exec::HttpMethod::Get,
    }
}

/// Where a rendered URL points, resolved natively so the policy can allow exactly that. The
/// url crate reads it as the client does (any case of scheme, IPv6 literals, default port).
/// Let `policy` reach what `url` names: its host name may be looked up, and its addresses
/// connected to.
pub async fn allow_url(policy: &Policy, url: &str) {
    allow_parsed(policy, url::Url::parse(url).ok().as_ref()).await;
}

/// [`allow_url`] for a URL read already (`None`: one the url crate does not read). A host
/// name is not looked up here: what the instance's own lookups of it find is allowed at the
/// URL's port (`runtime::lookup`).
async fn allow_parsed(policy: &Policy, url: Option<&url::Url>) {
    let Some(u) = url else { return };
    match (u.host(), web_port(u)) {
        (Some(url::Host::Domain(name)), Some(port)) => policy.allow_name_at(name, port),
        (Some(url::Host::Domain(name)), None) => policy.allow_name(name),
        _ => {
            for t in targets_of(u).await.unwrap_or_default() {
                policy.allow_target(t);
            }
        }
    }
}

/// The port of an `http` or `https` URL (`None` for another scheme).
fn web_port(u: &url::Url) -> Option<u16> {
    matches!(u.scheme(), "http" | "https")
        .then(|| u.port_or_known_default())
        .flatten()
}

/// Which way a request goes: through its own `proxy`, the tenant's or the run's (unless
/// `no_proxy` lists its host), or straight; the instance may reach that way only. The URL is
/// read once, and not again while a user's URL repeats (`Policy::last_url`: what it allows
/// was allowed then and cannot change).
async fn route(
    with: &mut serde_json::Value,
    policy: &Policy,
    proxies: (&crate::format::scenario::ScenarioProxy, &str),
) -> Result<(), String> {
    let Some(url) = with.get("url").and_then(|u| u.as_str()).map(str::to_string) else {
        return Ok(());
    };
    let (parsed, host) = match policy.last_url(&url) {
        Some(host) => (None, host),
        None => {
            let parsed = url::Url::parse(&url).ok();
            let host = parsed
                .as_ref()
                .and_then(|u| u.host_str())
                .unwrap_or_default();
            let host = host.to_string();
            (Some(parsed), host)
        }
    };
    if let Some(obj) = with.as_object_mut()
        && !obj.contains_key("proxy")
        && let Some(p) = proxies.0.for_request(proxies.1, &host)
    {
        obj.insert("proxy".into(), p.into());
    }
    match (with.get("proxy"), parsed) {
        (Some(serde_json::Value::String(p)), _) if !p.is_empty() => {
            let p = crate::format::proxy::parse(p, None).map_err(|e| format!("proxy: {e}"))?;
            allow_proxy(policy, &p).await;
        }
        (_, Some(parsed)) => {
            allow_parsed(policy, parsed.as_ref()).await;
            if parsed.is_some() {
                policy.remember_url(&url, &host);
            }
        }
        // The same URL as the last request's: allowed then.
        (_, None) => {}
    }
    for r in with["resolve"].as_array().into_iter().flatten() {
        allow_resolved(policy, r.as_str().unwrap_or_default(), false);
    }
    Ok(())
}

/// `--resolve`'s `HOST:PORT:ADDRESS[,ADDRESS]`: its addresses at its port (at any port with
/// `any_port`, for `exec -L`).
pub fn allow_resolved(policy: &Policy, r: &str, any_port: bool) {
    let mut it = r.splitn(3, ':');
    let (_, port, addrs) = (it.next(), it.next(), it.next());
    let Some(port) = port.and_then(|p| p.parse::<u16>().ok()) else {
        return;
    };
    for a in addrs.unwrap_or_default().split(',') {
        if let Ok(ip) = a
            .trim()
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
        {
            policy.allow_target(SocketAddr::new(ip, port));
            if any_port {
                policy.allow_host(ip);
            }
        }
    }
}

/// Let the instance reach an HTTP proxy (its name looked up, its port).
pub async fn allow_proxy(policy: &Policy, proxy: &crate::format::proxy::ProxyUrl) {
    match proxy.host.parse::<std::net::IpAddr>() {
        Ok(ip) => policy.allow_target(SocketAddr::new(ip, proxy.port)),
        Err(_) => {
            policy.allow_name(&proxy.host);
            let found = tokio::net::lookup_host((proxy.host.as_str(), proxy.port)).await;
            for t in found.into_iter().flatten() {
                policy.allow_target(t);
            }
        }
    }
}

pub async fn target_of_url(text: &str) -> Option<Vec<SocketAddr>> {
    targets_of(&url::Url::parse(text).ok()?).await
}

/// [`target_of_url`] for a URL read already.
async fn targets_of(u: &url::Url) -> Option<Vec<SocketAddr>> {
    if u.scheme() != "http" && u.scheme() != "https" {
        return None;
    }
    let port = u.port_or_known_default()?;
    match u.host()? {
        url::Host::Ipv4(ip) => Some(vec![SocketAddr::new(ip.into(), port)]),
        // The client connects to an IPv4-mapped address over IPv4.
        url::Host::Ipv6(ip) => Some(vec![SocketAddr::new(
            ip.to_ipv4_mapped().map_or(ip.into(), Into::into),
            port,
        )]),
        url::Host::Domain(host) => tokio::net::lookup_host((host, port))
            .await
            .ok()
            .map(|a| a.collect()),
    }
}

/// The call for `action`: its `with` rendered (the source address put in as `bind_ip` unless
/// it names one), and its targets allowed by the user's policy. `None` when the URL keeps a
/// template nothing declares (`{{undefined.endpoint}}`): the action is not sent and counts as
/// done, as the original's actions-http does (its way of a dry run), in `skipped`, with no
/// error, and `ACTION.ok` true.
pub(super) async fn prepare(
    action: &crate::format::scenario::Action,
    policy: &Policy,
    ip: Option<&str>,
    vars: &Vars,
    scenario: &crate::format::scenario::Scenario,
    tenant: &str,
) -> Result<Option<Call>, String> {
    let proxy = &scenario.proxy;
    let mut with =
        template::render_json(&action.with, vars).map_err(|e| format!("template: {e}"))?;
    let upload = super::upload::take(&mut with, &scenario.dir)?;
    if with
        .get("url")
        .and_then(|u| u.as_str())
        .is_some_and(template::opens_template)
    {
        return Ok(None);
    }
    put_bind_ip(&mut with, ip)?;
    route(&mut with, policy, (proxy, tenant)).await?;
    if action.redirect_any_port
        && with
            .get("proxy")
            .is_none_or(|p| p.as_str().is_none_or(str::is_empty))
        && let Some(url) = with.get("url").and_then(|u| u.as_str())
    {
        for t in target_of_url(url).await.unwrap_or_default() {
            policy.allow_host(t.ip());
        }
    }
    // Each user keeps its cookies, as k6's users do, unless the action says `cookies: false`.
    if let Some(obj) = with.as_object_mut() {
        obj.entry("cookies").or_insert(true.into());
    }
    // `with.timeout` (the original's): the whole request's deadline.
    if let Some(obj) = with.as_object_mut()
        && let Some(t) = obj.remove("timeout")
    {
        let text = match &t {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let d = crate::format::scenario::parse_duration(&text)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("timeout: {text:?} is not a duration"))?;
        let timeouts = obj
            .entry("timeouts")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(t) = timeouts.as_object_mut() {
            t.insert(
                "total_ms".into(),
                (d.as_millis().clamp(1, u128::from(u64::MAX)) as u64).into(),
            );
        }
    }
    // Exports with a default are read here, from the outcome: their failure is no error.
    let exports = action
        .exports
        .iter()
        .filter(|e| e.default.is_none())
        .map(|e| exec::ExportSpec {
            name: e.name.clone(),
            source: match &e.kind {
                ExportKind::StatusCode => exec::ExportSource::StatusCode,
                ExportKind::Body => exec::ExportSource::Body,
                ExportKind::Header(h) => exec::ExportSource::Header(h.clone()),
                ExportKind::JsonPointer(p) => exec::ExportSource::JsonPointer(p.clone()),
            },
        })
        .collect();
    Ok(Some(Call {
        action: exec::Action {
            id: action.id.clone(),
            call: method(&action.call),
            with_params: with.to_string(),
            exports,
        },
        upload,
    }))
}

/// The user's address as `with.bind_ip` (unless it names that one already; another one is
/// an error while the pool's address is in force).
pub(super) fn put_bind_ip(with: &mut serde_json::Value, ip: Option<&str>) -> Result<(), String> {
    if let (Some(obj), Some(ip)) = (with.as_object_mut(), ip) {
        match obj.get("bind_ip") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) if s.is_empty() || s == ip => {}
            Some(other) => {
                // The pool's address is in force: no other (the wildcard included).
                return Err(format!(
                    "bind_ip: {other} is not the user's address from the pool ({ip})"
                ));
            }
        }
        obj.insert("bind_ip".into(), ip.into());
    }
    Ok(())
}

/// An action as the instance is called with it: its parameters, and the body the host
/// streams (`body_file`, `form`) if it has one.
#[derive(Clone)]
pub(super) struct Call {
    pub action: exec::Action,
    pub upload: Option<crate::runtime::body::Plan>,
}

impl Call {
    /// Run it in `inst`: with its body streamed from the files, opened now.
    async fn run(
        &self,
        inst: &mut Instance,
    ) -> Result<Result<exec::Outcome, exec::ActionError>, String> {
        match &self.upload {
            None => inst.execute(&self.action).await,
            Some(plan) => {
                let body = match plan.open() {
                    Ok(b) => b,
                    // Nothing was sent: the file went away, or is not one.
                    Err(message) => {
                        return Ok(Err(exec::ActionError::InvalidParams(exec::ParamError {
                            field: "body_file".into(),
                            message,
                        })));
                    }
                };
                inst.execute_with_body(&self.action, body).await
            }
        }
    }
}

/// Count action `index`'s checks against its outcome (`None`: no answer).
pub(super) fn count_checks(
    st: &mut UserState<'_>,
    index: usize,
    outcome: Option<&exec::Outcome>,
    us: u64,
) {
    let checks = &st.shared.scenario.actions[index].checks;
    let base = st.shared.check_base[index];
    for (i, c) in checks.iter().enumerate() {
        let pass = check_holds(&c.kind, outcome, us as f64 / 1000.0);
        st.checks[base + i][usize::from(!pass)] += 1;
    }
}

pub(super) async fn run_action(
    st: &mut UserState<'_>,
    inst: &mut Instance,
    policy: &Policy,
    ip: Option<&str>,
    index: usize,
    vars: &mut Vars,
) -> Sample {
    let shared = st.shared;
    let action = &shared.scenario.actions[index];
    if let Some(udp) = &action.udp {
        return super::udp::run_udp(st, inst, policy, ip, index, udp, vars).await;
    }
    if let Some(spec) = &action.websocket {
        return super::websocket::run_websocket(st, inst, policy, ip, index, spec, vars).await;
    }
    let mut sample = st.sample(index, ip);
    // An action without templates renders the same for the same source address: once.
    let fresh;
    let call = match &st.prepared[index] {
        Some((for_ip, call)) if for_ip.as_deref() == ip => call,
        _ => match prepare(action, policy, ip, vars, &shared.scenario, &st.tenant).await {
            Ok(Some(call)) if shared.static_with[index] => {
                let slot = &mut st.prepared[index];
                &slot.insert((ip.map(str::to_string), call)).1
            }
            Ok(Some(call)) => {
                fresh = call;
                &fresh
            }
            Ok(None) => {
                sample.ok = true;
                if shared.uses_vars {
                    let scope = vars.entry(action.id.clone()).or_default();
                    scope.clear();
                    scope.insert("ok".into(), "true".into());
                }
                return sample;
            }
            Err(e) => {
                sample.error = Some(e);
                return sample;
            }
        },
    };
    shared.action_turn().await;
    let start = st
        .scheduled
        .take()
        .map_or_else(Instant::now, |t| t.min(Instant::now()));
    st.in_flight = Some((index, sample.source.clone(), start));
    let result = call.run(inst).await;
    st.in_flight = None;
    sample.latency_us = start.elapsed().as_micros() as u64;
    // What later templates and conditions can read of this action (when any reads).
    let mut scope = shared.uses_vars.then(|| {
        let scope = vars.entry(action.id.clone()).or_default();
        scope.clear();
        scope
    });
    let outcome = match &result {
        Ok(Ok(o)) => Some(o),
        _ => None,
    };
    count_checks(st, index, outcome, sample.latency_us);
    match result {
        Ok(Ok(o)) => {
            sample.sent = true;
            sample.ok = o.status < 400;
            sample.status = Some(o.status);
            sample.bytes_sent = o.bytes_sent;
            sample.bytes_received = o.bytes_received;
            if let Some(src) = o.source_address.as_deref().and_then(|s| st.source_of(s)) {
                sample.source = src;
            }
            if !sample.ok {
                sample.error = Some(format!("http {}", o.status));
            }
            if let Some(scope) = scope.as_mut() {
                scope.insert("status_code".into(), o.status.to_string());
                for e in &action.exports {
                    if let Some(d) = &e.default {
                        scope.insert(e.name.clone(), export_or(&e.kind, &o).unwrap_or(d.clone()));
                    }
                }
                for e in o.exports {
                    scope.insert(e.name, e.value);
                }
            }
        }
        Ok(Err(e)) => {
            // Refused before anything went on the wire: an error, not a request.
            sample.sent = !matches!(
                e,
                exec::ActionError::InvalidParams(_)
                    | exec::ActionError::Pool(_)
                    | exec::ActionError::AccessDenied(_)
            );
            sample.error = Some(error_kind(&e));
            if let Some(scope) = scope.as_mut() {
                scope.insert("error".into(), error_text(&e));
                for e in &action.exports {
                    if let Some(d) = &e.default {
                        scope.insert(e.name.clone(), d.clone());
                    }
                }
            }
        }
        Err(trap) => {
            sample.sent = true;
            sample.error = Some(format!("trap: {trap}"));
        }
    }
    if let Some(scope) = scope {
        scope.insert("ok".into(), sample.ok.to_string());
    }
    sample
}

/// An export read from an outcome, as the executor reads it (`None`: not there).
pub(super) fn export_or(kind: &ExportKind, o: &exec::Outcome) -> Option<String> {
    match kind {
        ExportKind::StatusCode => Some(o.status.to_string()),
        ExportKind::Body => String::from_utf8(o.body.clone()).ok(),
        ExportKind::Header(h) => o
            .headers
            .iter()
            .find(|x| x.name.eq_ignore_ascii_case(h))
            .map(|x| x.value.clone()),
        ExportKind::JsonPointer(p) => serde_json::from_slice::<serde_json::Value>(&o.body)
            .ok()?
            .pointer(p)
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
    }
}

/// Each check of the scenario with its counts (`counts` in the same order).
pub(super) fn check_results(
    sc: &Scenario,
    counts: &[[u64; 2]],
) -> Vec<crate::results::record::CheckResult> {
    sc.actions
        .iter()
        .flat_map(|a| a.checks.iter().map(move |c| (a.id.clone(), c.name.clone())))
        .enumerate()
        .map(|(i, (action, name))| {
            let [pass, fail] = counts.get(i).copied().unwrap_or([0, 0]);
            crate::results::record::CheckResult {
                action,
                name,
                pass,
                fail,
            }
        })
        .collect()
}

/// Whether a check holds for an answer (`None`: no answer, which fails every check).
pub(super) fn check_holds(kind: &CheckKind, o: Option<&exec::Outcome>, ms: f64) -> bool {
    let Some(o) = o else { return false };
    let matches = |m: &Match, v: &str| match m {
        Match::Exists => true,
        Match::Equals(x) => v == x,
        Match::Contains(x) => v.contains(x.as_str()),
        Match::Matches(r) => r.is_match(v),
    };
    match kind {
        CheckKind::Status(codes) => codes.contains(&o.status),
        CheckKind::BodyContains(x) => o.body.windows(x.len().max(1)).any(|w| w == x.as_bytes()),
        CheckKind::BodyMatches(r) => r.is_match(&String::from_utf8_lossy(&o.body)),
        CheckKind::Header(name, m) => o
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .any(|h| matches(m, &h.value)),
        CheckKind::Json(pointer, m) => serde_json::from_slice::<serde_json::Value>(&o.body)
            .ok()
            .and_then(|v| {
                v.pointer(pointer).map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            })
            .is_some_and(|v| matches(m, &v)),
        CheckKind::Duration(..) => check_duration(kind, ms),
    }
}

/// A `duration` check on a latency in ms (false for any other kind).
pub(super) fn check_duration(kind: &CheckKind, ms: f64) -> bool {
    match kind {
        CheckKind::Duration(op, limit) => match *op {
            "<" => ms < *limit,
            "<=" => ms <= *limit,
            ">" => ms > *limit,
            _ => ms >= *limit,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use compose::sockets::AddrCheck;
    use wasmtime_wasi::sockets::SocketAddrUse;

    use super::*;
    use crate::format::scenario::ScenarioProxy;

    fn routed(policy: &Policy, url: &str, proxies: &ScenarioProxy) -> serde_json::Value {
        let mut with = serde_json::json!({ "url": url });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(route(&mut with, policy, (proxies, "t")))
            .unwrap();
        with
    }

    fn reaches(policy: &Policy, to: &str) -> bool {
        policy.allows(to.parse().unwrap(), SocketAddrUse::TcpConnect)
    }

    #[test]
    fn a_literal_url_is_read_once_while_it_repeats() {
        let policy = Policy::default();
        let none = ScenarioProxy::default();
        let url = "HTTP://[::1]:8080/a?b";
        routed(&policy, url, &none);
        assert!(reaches(&policy, "[::1]:8080"));
        assert_eq!(policy.last_url(url).as_deref(), Some("[::1]"));
        // Another URL is read and remembered in its place, its default port allowed.
        routed(&policy, "https://127.0.0.7/", &none);
        assert!(reaches(&policy, "127.0.0.7:443"));
        assert_eq!(policy.last_url(url), None);
        assert!(!reaches(&policy, "127.0.0.7:80"));
    }

    #[test]
    fn a_remembered_url_still_takes_the_proxy_its_host_is_given() {
        let policy = Policy::default();
        let proxies = ScenarioProxy {
            url: Some("http://127.0.0.9:3128".into()),
            no_proxy: Some("127.0.0.8".into()),
            tenants: Vec::new(),
        };
        for _ in 0..2 {
            let with = routed(&policy, "http://127.0.0.7:81/", &proxies);
            assert_eq!(with["proxy"], "http://127.0.0.9:3128");
            let with = routed(&policy, "http://127.0.0.8:81/", &proxies);
            assert_eq!(with.get("proxy"), None);
        }
        // Through the proxy only: its target, not the URL's.
        assert!(reaches(&policy, "127.0.0.9:3128"));
        assert!(!reaches(&policy, "127.0.0.7:81"));
        assert!(reaches(&policy, "127.0.0.8:81"));
    }

    #[test]
    fn a_named_host_is_reached_at_what_the_instances_lookups_find() {
        let policy = Policy::default();
        let url = "http://Localhost.:8080/";
        routed(&policy, url, &ScenarioProxy::default());
        assert_eq!(policy.last_url(url).as_deref(), Some("localhost."));
        assert!(policy.may_resolve("LOCALHOST"));
        // Nothing is looked up for the policy: only what the instance's lookup finds.
        assert!(!reaches(&policy, "127.0.0.1:8080"));
        policy.looking_up(7, "localhost");
        policy.found(7, "127.0.0.1".parse().unwrap());
        policy.found(7, "::ffff:127.0.0.2".parse().unwrap());
        assert!(reaches(&policy, "127.0.0.1:8080"));
        assert!(reaches(&policy, "127.0.0.2:8080") && reaches(&policy, "[::ffff:127.0.0.2]:8080"));
        assert!(!reaches(&policy, "127.0.0.1:8081"));
        // Another port of the name, from another URL, holds for later lookups too.
        routed(&policy, "https://localhost/", &ScenarioProxy::default());
        policy.found(7, "127.0.0.3".parse().unwrap());
        assert!(reaches(&policy, "127.0.0.3:443") && reaches(&policy, "127.0.0.3:8080"));
        // A lookup that is over, or of a name no URL gave a port, allows nothing.
        policy.lookup_done(7);
        policy.found(7, "127.0.0.4".parse().unwrap());
        policy.looking_up(8, "other.test");
        policy.found(8, "127.0.0.5".parse().unwrap());
        assert!(!reaches(&policy, "127.0.0.4:8080") && !reaches(&policy, "127.0.0.5:8080"));
    }
}
