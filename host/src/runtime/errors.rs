//! Action errors for people: their short kinds in reports (`timeout(first-byte)`) and their
//! texts.

use super::{exec, pool};

/// Short name of an action error, for reports.
pub fn error_kind(e: &exec::ActionError) -> String {
    use exec::ActionError as E;
    match e {
        E::InvalidParams(p) => format!("invalid-params({})", p.field),
        E::Dns(_) => "dns".into(),
        E::Connect(_) => "connect".into(),
        E::Timeout(p) => format!("timeout({})", phase_name(*p)),
        E::Protocol(_) => "protocol".into(),
        E::TooLarge(_) => "too-large".into(),
        E::AccessDenied(_) => "access-denied".into(),
        E::Pool(_) => "pool".into(),
        E::RedirectLoop(_) => "redirect-loop".into(),
        E::TooManyRedirects(_) => "too-many-redirects".into(),
        E::BadRedirect(_) => "bad-redirect".into(),
        E::Proxy(_) => "proxy".into(),
        E::ExportFailed(p) => format!("export-failed({})", p.field),
        E::Io(_) => "io".into(),
        E::Tls(t) => format!("tls({})", tls_reason_name(t.reason)),
    }
}

/// The interface's name of a timeout phase (`first-byte`), as in the WIT.
pub fn phase_name(p: exec::TimeoutPhase) -> &'static str {
    use exec::TimeoutPhase as P;
    match p {
        P::Dns => "dns",
        P::Connect => "connect",
        P::Tls => "tls",
        P::FirstByte => "first-byte",
        P::BetweenBytes => "between-bytes",
        P::Total => "total",
    }
}

/// A pool error for people: its WIT case name and what it carries.
pub fn pool_error_text(e: &pool::PoolError) -> String {
    // The Debug text is `Case("detail")`; the WIT name is the case in kebab-case.
    let debug = format!("{e:?}");
    // `PoolError::Exhausted("p")` (the bindings' Debug): the case after the type's path.
    let at = debug.find('(').unwrap_or(debug.len());
    let debug = match debug[..at].rfind("::") {
        Some(i) => &debug[i + 2..],
        None => &debug[..],
    };
    let (case, rest) = debug.split_at(debug.find('(').unwrap_or(debug.len()));
    let mut name = String::new();
    for (i, c) in case.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    let detail = rest
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim_matches('"');
    if detail.is_empty() {
        name
    } else {
        format!("{name}: {detail}")
    }
}

pub fn error_text(e: &exec::ActionError) -> String {
    use exec::ActionError as E;
    match e {
        E::InvalidParams(p) | E::ExportFailed(p) => format!("{}: {}", p.field, p.message),
        E::Dns(m)
        | E::Connect(m)
        | E::Protocol(m)
        | E::TooLarge(m)
        | E::AccessDenied(m)
        | E::RedirectLoop(m)
        | E::BadRedirect(m)
        | E::Proxy(m)
        | E::Io(m) => m.clone(),
        E::Timeout(p) => format!("timed out in phase {}", phase_name(*p)),
        E::Pool(p) => pool_error_text(p),
        E::TooManyRedirects(n) => format!("more than {n} redirects"),
        E::Tls(t) => format!("TLS {}: {}", tls_reason_name(t.reason), t.message),
    }
}

/// The interface's name of a TLS failure's reason (`unknown-issuer`).
pub fn tls_reason_name(r: exec::TlsReason) -> &'static str {
    use exec::TlsReason as R;
    match r {
        R::UnknownIssuer => "unknown-issuer",
        R::NameMismatch => "name-mismatch",
        R::Expired => "expired",
        R::NotYetValid => "not-yet-valid",
        R::BadCertificate => "bad-certificate",
        R::HandshakeFailure => "handshake-failure",
        R::ProtocolVersion => "protocol-version",
        R::CertificateRequired => "certificate-required",
        R::Unsupported => "unsupported",
        R::Other => "other",
    }
}
