//! `{{env.NAME}}` and `{{env.NAME:-default}}`: parameters from outside the file (k6's
//! `__ENV` and `-e`), from `--env NAME=VALUE` or the process environment. They are put into
//! the file's text before it is read, as envsubst does, so they may stand for any value
//! (a count, a rate, a URL); an unset name without a default is a problem.

use std::sync::OnceLock;

/// `--env NAME=VALUE` of this command (they win over the process environment).
static GIVEN: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Record the command's `--env` pairs (once, at the start).
pub fn set_given(pairs: Vec<(String, String)>) {
    let _ = GIVEN.set(pairs);
}

/// `NAME=VALUE` as `--env` takes it.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if valid_name(n) => Ok((n.to_string(), v.to_string())),
        _ => Err(format!(
            "{s:?}: expected NAME=VALUE (NAME of letters, digits and _)"
        )),
    }
}

fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A name's value: `--env`, else the process environment.
fn value_of(name: &str) -> Option<String> {
    GIVEN
        .get()
        .and_then(|g| {
            g.iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
        .or_else(|| std::env::var(name).ok())
}

/// `text` with each `{{env.NAME}}` (or `{{env.NAME:-default}}`, spaces allowed inside the
/// braces) replaced; the names unset with no default, when there are any.
pub fn substitute(text: &str) -> Result<String, Vec<String>> {
    substitute_with(text, &value_of)
}

fn substitute_with(
    text: &str,
    value: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut unset = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else { break };
        let inner = after[..j].trim();
        let Some(spec) = inner.strip_prefix("env.") else {
            out.push_str(&rest[..i + 2]);
            rest = after;
            continue;
        };
        let (name, default) = match spec.split_once(":-") {
            Some((n, d)) => (n.trim(), Some(d)),
            None => (spec, None),
        };
        if !valid_name(name) {
            out.push_str(&rest[..i + 2]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..i]);
        match (value(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                if !unset.contains(&name.to_string()) {
                    unset.push(name.to_string());
                }
            }
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    if unset.is_empty() {
        Ok(out)
    } else {
        Err(unset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_defaults_and_unset() {
        let env = |n: &str| (n == "HOST").then(|| "127.0.0.9".to_string());
        assert_eq!(
            substitute_with(
                "url: http://{{env.HOST}}:{{ env.PORT:-8080 }}/{{user.id}}",
                &env
            )
            .unwrap(),
            "url: http://127.0.0.9:8080/{{user.id}}"
        );
        assert_eq!(
            substitute_with("{{env.A}} {{env.B}} {{env.A}}", &env),
            Err(vec!["A".into(), "B".into()])
        );
        assert_eq!(substitute_with("{{env.X:-}}|", &env).unwrap(), "|");
        assert_eq!(
            substitute_with("{{env.bad name}} {{", &env).unwrap(),
            "{{env.bad name}} {{"
        );
        assert!(
            parse_pair("USERS=5").is_ok()
                && parse_pair("1X=5").is_err()
                && parse_pair("X").is_err()
        );
    }
}
