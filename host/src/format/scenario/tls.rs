//! `tls:`: trust, client identity and versions, per run and per tenant.

use super::*;

/// One set of TLS settings at `path`, over `base` (a tenant's over the run's).
pub(super) fn tls_settings(
    w: &mut Walker,
    m: &schema::TlsSettings,
    path: &str,
    base: &compose::tls::TlsSettings,
) -> compose::tls::TlsSettings {
    use compose::tls::TlsVersion;
    let mut s = base.clone();
    match &m.ca_file {
        None => {}
        Some(schema::Files::One(f)) => s.ca_files.push(f.text().into()),
        Some(schema::Files::Many(files)) => {
            s.ca_files.extend(files.iter().map(|f| f.text().into()))
        }
    }
    if let Some(b) = m.insecure_skip_verify {
        s.insecure = b;
    }
    match (opt_text(&m.client_cert), opt_text(&m.client_key)) {
        (Some(c), Some(k)) => s.client_identity = Some((c.into(), k.into())),
        (None, None) => {}
        (Some(_), None) => w.problem(&join(path, "client_key"), "required with client_cert"),
        (None, Some(_)) => w.problem(&join(path, "client_cert"), "required with client_key"),
    }
    for (field, given, slot) in [
        ("min_version", &m.min_version, &mut s.min_version),
        ("max_version", &m.max_version, &mut s.max_version),
    ] {
        if let Some(v) = opt_text(given) {
            match TlsVersion::parse(&v) {
                Some(v) => *slot = Some(v),
                None => w.problem(
                    &join(path, field),
                    format!("unknown TLS version {v:?} (expected \"1.2\" or \"1.3\")"),
                ),
            }
        }
    }
    if let (Some(min), Some(max)) = (s.min_version, s.max_version)
        && min > max
    {
        w.problem(&join(path, "min_version"), "above max_version");
    }
    if let Some(n) = opt_text(&m.server_name) {
        if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c == '/') {
            w.problem(
                &join(path, "server_name"),
                format!("not a host name: {n:?}"),
            );
        } else {
            s.server_name = Some(n);
        }
    }
    s
}

/// `tls:`: the run's TLS settings, and `tenants:` with per-tenant ones.
pub(super) fn scenario_tls(w: &mut Walker, v: Option<&Value>) -> ScenarioTls {
    let mut out = ScenarioTls::default();
    let Some(m) = v
        .filter(|v| !v.is_null())
        .and_then(|v| w.typed::<schema::Tls>(v, "tls"))
    else {
        return out;
    };
    out.settings = tls_settings(w, &m.settings, "tls", &compose::tls::TlsSettings::default());
    for (tenant, t) in m.tenants.unwrap_or_default() {
        let s = tls_settings(w, &t, &join("tls.tenants", &tenant), &out.settings);
        out.tenants.push((tenant, s));
    }
    out
}
