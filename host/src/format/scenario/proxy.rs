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
fn proxy_url(w: &mut Walker, text: Option<&schema::Text>, path: &str) -> Option<String> {
    let text = text?.text();
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
    let given = v
        .filter(|v| !v.is_null())
        .and_then(|v| w.typed::<schema::Proxy>(v, "proxy"));
    let m = match given {
        None => return out,
        Some(schema::Proxy::Url(url)) => {
            out.url = proxy_url(w, Some(&url), "proxy");
            return out;
        }
        Some(schema::Proxy::Settings(m)) => m,
    };
    out.url = proxy_url(w, m.url.as_ref(), "proxy.url");
    out.no_proxy = opt_text(&m.no_proxy);
    for (tenant, url) in m.tenants.unwrap_or_default() {
        let url = proxy_url(w, Some(&url), &join("proxy.tenants", &tenant));
        out.tenants.push((tenant, url));
    }
    out
}
