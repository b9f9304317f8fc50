//! `tls:`: trust, client identity and versions, per run and per tenant.

use super::*;

/// One set of TLS settings at `path`, over `base` (a tenant's over the run's).
pub(super) fn tls_settings(
    w: &mut Walker,
    m: &serde_yaml::Mapping,
    path: &str,
    base: &compose::tls::TlsSettings,
) -> compose::tls::TlsSettings {
    use compose::tls::TlsVersion;
    let mut s = base.clone();
    match get(m, "ca_file") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(files)) => {
            for (i, f) in files.iter().enumerate() {
                if let Some(f) = w.string(Some(f), &format!("{path}.ca_file[{i}]"), true) {
                    s.ca_files.push(f.into());
                }
            }
        }
        v => {
            if let Some(f) = w.string(v, &join(path, "ca_file"), false) {
                s.ca_files.push(f.into());
            }
        }
    }
    if let Some(b) = w.boolean(
        get(m, "insecure_skip_verify"),
        &join(path, "insecure_skip_verify"),
    ) {
        s.insecure = b;
    }
    let cert = w.string(get(m, "client_cert"), &join(path, "client_cert"), false);
    let key = w.string(get(m, "client_key"), &join(path, "client_key"), false);
    match (cert, key) {
        (Some(c), Some(k)) => s.client_identity = Some((c.into(), k.into())),
        (None, None) => {}
        (Some(_), None) => w.problem(&join(path, "client_key"), "required with client_cert"),
        (None, Some(_)) => w.problem(&join(path, "client_cert"), "required with client_key"),
    }
    for (field, slot) in [
        ("min_version", &mut s.min_version),
        ("max_version", &mut s.max_version),
    ] {
        if let Some(v) = w.string(get(m, field), &join(path, field), false) {
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
    if let Some(n) = w.string(get(m, "server_name"), &join(path, "server_name"), false) {
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
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return out;
    };
    let Some(m) = w.map(v, "tls", schema::fields::<schema::Tls>()) else {
        return out;
    };
    out.settings = tls_settings(w, m, "tls", &compose::tls::TlsSettings::default());
    if let Some(t) = get(m, "tenants").filter(|t| !t.is_null()) {
        let Some(tm) = t.as_mapping() else {
            w.problem(
                "tls.tenants",
                "expected a mapping of tenant to TLS settings",
            );
            return out;
        };
        for (k, v) in tm {
            let tenant = k.as_str().unwrap_or_default().to_string();
            let path = join("tls.tenants", &tenant);
            if let Some(m) = w.map(v, &path, schema::fields::<schema::TlsSettings>()) {
                let s = tls_settings(w, m, &path, &out.settings);
                out.tenants.push((tenant, s));
            }
        }
    }
    out
}
