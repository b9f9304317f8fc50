//! The reader's problems and warnings, and its typed reads: serde fills the schema's types
//! (`schema.rs`), a wrong type or a missing field becomes a problem at its field path, and the
//! fields the schema does not have become warnings (problems under `--strict`).

use super::*;

pub(super) struct Walker {
    pub(super) problems: Vec<Problem>,
    /// What is accepted but worth saying: fields this format does not use (ignored, as the
    /// original scheduler ignores what it does not know).
    pub(super) warnings: Vec<Problem>,
    /// `validate --strict`: unknown fields are problems.
    pub(super) strict: bool,
}

impl Walker {
    pub(super) fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_string(),
            message: message.into(),
            line: None,
        });
    }

    /// The mapping at `path`, with unknown keys reported.
    pub(super) fn map<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
        known: &[&str],
    ) -> Option<&'a serde_yaml::Mapping> {
        let Some(m) = v.as_mapping() else {
            self.problem(path, "expected a mapping");
            return None;
        };
        for k in m.keys() {
            match k.as_str() {
                Some(k) if known.contains(&k) => {}
                Some(k) => self.unknown(join(path, k), known),
                None => self.problem(path, "keys must be strings"),
            }
        }
        Some(m)
    }

    /// `v` as the schema's type `T`, filled by serde: a value of the wrong type (or a required
    /// field missing) is a problem at its field's path; fields `T`'s schema does not have are
    /// warnings (problems under `--strict`), as `map` says them.
    pub(super) fn typed<T>(&mut self, v: &Value, path: &str) -> Option<T>
    where
        T: serde::de::DeserializeOwned + schemars::JsonSchema + 'static,
    {
        for (field, known) in schema::unknown_fields::<T>(v, path) {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            self.unknown(field, &known);
        }
        serde_path_to_error::deserialize(v)
            .map_err(|e| {
                let at = error_path(path, e.path());
                let (at, message) = serde_message(at, &e.inner().to_string());
                self.problem(&at, message);
            })
            .ok()
    }

    /// The list at `path`, each item read as `T` on its own (with its index): a bad item is a
    /// problem and is left out, the others are read.
    pub(super) fn items<T>(&mut self, v: Option<&Value>, path: &str) -> Vec<(usize, T)>
    where
        T: serde::de::DeserializeOwned + schemars::JsonSchema + 'static,
    {
        let each = self.each::<T>(v, path);
        each.into_iter()
            .filter_map(|(i, t)| Some((i, t.ok()?)))
            .collect()
    }

    /// The list at `path`, each item read as `T` on its own; a bad item (a problem) gives the
    /// `id` it has, if any, so what names it is not a problem too.
    pub(super) fn each<T>(
        &mut self,
        v: Option<&Value>,
        path: &str,
    ) -> Vec<(usize, Result<T, String>)>
    where
        T: serde::de::DeserializeOwned + schemars::JsonSchema + 'static,
    {
        let list = self.list(v, path);
        list.iter()
            .enumerate()
            .map(|(i, item)| {
                let read = self.typed::<T>(item, &format!("{path}[{i}]"));
                (i, read.ok_or_else(|| unread_id(item)))
            })
            .collect()
    }

    /// A field the format does not know: a warning, or under `--strict` a problem.
    fn unknown(&mut self, path: String, known: &[&str]) {
        let also = format!(" (expected one of: {})", known.join(", "));
        if self.strict {
            self.problem(&path, format!("unknown field{also}"));
        } else {
            self.warnings.push(Problem {
                path,
                message: format!("unknown field, ignored{also}"),
                line: None,
            });
        }
    }

    /// A text field (a number or true/false as its text); nothing when absent or null.
    pub(super) fn text(&mut self, v: Option<&Value>, path: &str) -> Option<String> {
        let v = v.filter(|v| !v.is_null())?;
        self.typed::<schema::Text>(v, path).map(|t| t.text())
    }

    /// A duration (`1s`, `500ms`, seconds), within a year.
    pub(super) fn dur(&mut self, d: Option<&schema::Duration>, path: &str) -> Option<Duration> {
        let s = d?.text();
        let d = parse_duration(&s);
        if d.is_none() {
            self.problem(
                path,
                format!("bad duration {s:?} (use e.g. 1s, 500ms, 2m, 1m30s; at most a year)"),
            );
        }
        d
    }

    /// What is accepted but worth saying at `path`.
    pub(super) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Problem {
            path: path.to_string(),
            message: message.into(),
            line: None,
        });
    }

    pub(super) fn list<'a>(&mut self, v: Option<&'a Value>, path: &str) -> &'a [Value] {
        match v {
            None | Some(Value::Null) => &[],
            Some(Value::Sequence(s)) => s,
            Some(_) => {
                self.problem(path, "expected a list");
                &[]
            }
        }
    }
}

/// The `id` of an item that could not be read, when it has a plain one.
pub(super) fn unread_id(item: &Value) -> String {
    item.as_mapping()
        .and_then(|m| get(m, "id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The path of the field where serde stopped, under `base`.
fn error_path(base: &str, p: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment as S;
    p.iter().fold(base.to_string(), |at, seg| match seg {
        S::Seq { index } => format!("{at}[{index}]"),
        S::Map { key } => join(&at, key),
        S::Enum { .. } | S::Unknown => at,
    })
}

/// serde's error at `at` in the walker's words: a missing field is `required` at its own
/// path, a wrong type says what was expected.
fn serde_message(at: String, message: &str) -> (String, String) {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        return (join(&at, field), "required".into());
    }
    let expected = match message.rsplit_once(", expected ") {
        Some((_, e)) => e,
        None if message.starts_with("a ") || message.starts_with("an ") => message,
        None => return (at, message.to_string()),
    };
    let words = match expected {
        "u64" | "u32" | "u16" | "u8" => "a non-negative integer",
        "f64" | "f32" => "a number",
        "i64" | "i32" => "an integer",
        "a boolean" => "true or false",
        "a sequence" => "a list",
        e if e.starts_with("struct ") || e == "a map" => "a mapping",
        e => e,
    };
    (at, format!("expected {words}"))
}

/// An optional text field's text (a number or true/false as written).
pub(super) fn opt_text(t: &Option<schema::Text>) -> Option<String> {
    t.as_ref().map(schema::Text::text)
}

/// `path.key` (`key` at the top).
pub(super) use crate::format::schema_fields::join_path as join;

pub(super) fn get<'a>(m: &'a serde_yaml::Mapping, k: &str) -> Option<&'a Value> {
    m.get(Value::String(k.to_string()))
}

pub(super) fn yaml_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                serde_json::Value::from(u)
            } else if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else {
                serde_json::Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(s) => serde_json::Value::Array(s.iter().map(yaml_to_json).collect()),
        Value::Mapping(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("{k:?}")),
                        yaml_to_json(v),
                    )
                })
                .collect(),
        ),
        Value::Tagged(t) => yaml_to_json(&t.value),
    }
}
