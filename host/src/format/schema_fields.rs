//! What the schema says of a mapping's fields: the names `T`'s mapping has (the reader's
//! list of known keys), and the fields of a YAML value that `T`'s schema does not have, found
//! by walking the schema beside the value. One source: the schema generated from the types.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use schemars::JsonSchema;
use serde_json::Value;

/// `T`'s JSON Schema, made once.
fn schema_of<T: JsonSchema + 'static>() -> &'static Value {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, &'static Value>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry(TypeId::of::<T>())
        .or_insert_with(|| Box::leak(Box::new(schemars::schema_for!(T).to_value())))
}

/// The fields of `v` (read as `T`, at `path`) that `T`'s schema does not have, anywhere
/// below: each field's path and the names its mapping has.
pub fn unknown_fields<T: JsonSchema + 'static>(
    v: &serde_yaml::Value,
    path: &str,
) -> Vec<(String, Vec<String>)> {
    let root = schema_of::<T>();
    let mut out = Vec::new();
    unknown_below(root, root, v, path, &mut out);
    out
}

fn unknown_below(
    root: &Value,
    node: &Value,
    v: &serde_yaml::Value,
    path: &str,
    out: &mut Vec<(String, Vec<String>)>,
) {
    let shapes = shapes(root, node);
    match v {
        serde_yaml::Value::Mapping(m) => {
            let objects: Vec<&Value> = shapes.iter().copied().filter(|s| is_object(s)).collect();
            let mut closed = objects.iter().filter(|s| s.get("properties").is_some());
            if closed.clone().count() > 1 {
                // One of several mappings (an action's `with`, by its call): its own pass
                // knows which, and judges its fields.
                return;
            }
            let Some(closed) = closed.next() else {
                // A map of names (`additionalProperties: <schema>`): each value below it.
                let values = objects.iter().find_map(|s| s.get("additionalProperties"));
                for (k, item) in m {
                    if let (Some(k), Some(vs)) = (k.as_str(), values.filter(|x| x.is_object())) {
                        unknown_below(root, vs, item, &join_path(path, k), out);
                    }
                }
                return;
            };
            let known: Vec<String> = closed["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            for (k, item) in m {
                let Some(k) = k.as_str() else { continue };
                match closed["properties"].get(k) {
                    Some(field) => unknown_below(root, field, item, &join_path(path, k), out),
                    None if closed.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        out.push((join_path(path, k), known.clone()))
                    }
                    None => {}
                }
            }
        }
        serde_yaml::Value::Sequence(items) => {
            if let Some(item) = shapes.iter().find_map(|s| s.get("items")) {
                for (i, x) in items.iter().enumerate() {
                    unknown_below(root, item, x, &format!("{path}[{i}]"), out);
                }
            }
        }
        serde_yaml::Value::Tagged(t) => unknown_below(root, node, &t.value, path, out),
        _ => {}
    }
}

/// `node` and the shapes it may take: references followed, `anyOf`/`oneOf`/`allOf` opened.
fn shapes<'a>(root: &'a Value, node: &'a Value) -> Vec<&'a Value> {
    let node = match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .unwrap_or(&Value::Null),
        None => node,
    };
    let mut out = vec![node];
    for key in ["anyOf", "oneOf", "allOf"] {
        for branch in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(shapes(root, branch));
        }
    }
    out
}

fn is_object(s: &Value) -> bool {
    let object = Value::from("object");
    match s.get("type") {
        Some(Value::Array(types)) => types.contains(&object),
        Some(t) => *t == object,
        None => s.get("properties").is_some(),
    }
}

/// `path.key` (`key` at the top): a field's path, here and in the scenario reader's problems.
pub(crate) fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The fields of `T`'s mapping, as the schema names them (the reader's list of known keys).
pub fn fields<T: JsonSchema + 'static>() -> &'static [&'static str] {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, &'static [&'static str]>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache.entry(TypeId::of::<T>()).or_insert_with(|| {
        let schema = schemars::schema_for!(T);
        let names: Vec<&'static str> = schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.keys())
            .map(|k| &*Box::leak(k.clone().into_boxed_str()))
            .collect();
        Box::leak(names.into_boxed_slice())
    })
}
