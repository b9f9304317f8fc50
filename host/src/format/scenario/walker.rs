//! The walker over a YAML value: typed reads that report problems with their paths.

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
                Some(k) if self.strict => self.problem(
                    &join(path, k),
                    format!("unknown field (expected one of: {})", known.join(", ")),
                ),
                Some(k) => self.warnings.push(Problem {
                    path: join(path, k),
                    message: format!(
                        "unknown field, ignored (expected one of: {})",
                        known.join(", ")
                    ),
                    line: None,
                }),
                None => self.problem(path, "keys must be strings"),
            }
        }
        Some(m)
    }

    pub(super) fn string(
        &mut self,
        v: Option<&Value>,
        path: &str,
        required: bool,
    ) -> Option<String> {
        match v {
            None | Some(Value::Null) => {
                if required {
                    self.problem(path, "required");
                }
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(_) => {
                self.problem(path, "expected a string");
                None
            }
        }
    }

    pub(super) fn uint(&mut self, v: Option<&Value>, path: &str) -> Option<u64> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(_) => {
                self.problem(path, "expected a non-negative integer");
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, v: Option<&Value>, path: &str) -> Option<bool> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.problem(path, "expected true or false");
                None
            }
        }
    }

    pub(super) fn duration(&mut self, v: Option<&Value>, path: &str) -> Option<Duration> {
        let s = match v {
            None | Some(Value::Null) => return None,
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.problem(path, "expected a duration such as 1s or 500ms");
                return None;
            }
        };
        let d = parse_duration(&s);
        if d.is_none() {
            self.problem(
                path,
                format!("bad duration {s:?} (use e.g. 1s, 500ms, 2m, 1m30s; at most a year)"),
            );
        }
        d
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

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

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
