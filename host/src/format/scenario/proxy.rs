//! `proxy:`: an HTTP proxy for the run's requests, per tenant where it differs.

use super::*;

/// The scenario's `proxy:` (an action's `with.proxy` overrides it).
#[derive(Debug, Clone, Default)]
pub struct ScenarioProxy {
    /// The run's proxy URL, normalised (`http://[user:password@]host:port`).
    pub url: Option<String>,
    /// Hosts reached without it (curl's `no_proxy` rules).
    pub no_proxy: Option<String>,
    /// Per tenant: its proxy, or none (`""`).
    pub tenants: Vec<(String, Option<String>)>,
}

impl ScenarioProxy {
    /// The proxy a tenant's request to `host` goes through, if any.
    pub fn for_request(&self, tenant: &str, host: &str) -> Option<&str> {
        let url = match self.tenants.iter().find(|(t, _)| t == tenant) {
            Some((_, url)) => url.as_deref(),
            None => self.url.as_deref(),
        }?;
        let bypassed = self
            .no_proxy
            .as_deref()
            .is_some_and(|l| crate::format::proxy::bypassed(l, host));
        (!bypassed).then_some(url)
    }
}

/// One proxy URL at `path`, normalised; `""` is none.
fn proxy_url(w: &mut Walker, v: Option<&Value>, path: &str) -> Option<String> {
    let text = w.string(v, path, false)?;
    if text.is_empty() {
        return None;
    }
    match crate::format::proxy::parse(&text, None) {
        Ok(p) => Some(p.url),
        Err(e) => {
            w.problem(path, e);
            None
        }
    }
}

/// `proxy: URL`, or `proxy: {url, no_proxy, tenants: {TENANT: URL}}`.
pub(super) fn scenario_proxy(w: &mut Walker, v: Option<&Value>) -> ScenarioProxy {
    let mut out = ScenarioProxy::default();
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return out;
    };
    if !v.is_mapping() {
        out.url = proxy_url(w, Some(v), "proxy");
        return out;
    }
    let Some(m) = w.map(v, "proxy", schema::fields::<schema::ProxySettings>()) else {
        return out;
    };
    out.url = proxy_url(w, get(m, "url"), "proxy.url");
    out.no_proxy = w.string(get(m, "no_proxy"), "proxy.no_proxy", false);
    if let Some(t) = get(m, "tenants").filter(|t| !t.is_null()) {
        let Some(tm) = t.as_mapping() else {
            w.problem("proxy.tenants", "expected a mapping of tenant to proxy URL");
            return out;
        };
        for (k, v) in tm {
            let tenant = k.as_str().unwrap_or_default().to_string();
            let url = proxy_url(w, Some(v), &join("proxy.tenants", &tenant));
            out.tenants.push((tenant, url));
        }
    }
    out
}
