//! An action's `body_file` or `form` (its `with` rendered) as the body the host streams to
//! the user's instance (`runtime::body`).

use std::path::Path;

use serde_json::Value;

use crate::runtime::body::{self, FormPart, Piece, Plan};

/// Take `body_file` and `form` out of a rendered `with` (they are the host's): the body they
/// make, files named relative to `dir`, and its Content-Type put in `headers` unless named.
pub fn take(with: &mut Value, dir: &Path) -> Result<Option<Plan>, String> {
    let Some(obj) = with.as_object_mut() else {
        return Ok(None);
    };
    let file = obj.remove("body_file").filter(|v| !v.is_null());
    let form = obj.remove("form").filter(|v| !v.is_null());
    let plan = match (file, form) {
        (Some(f), _) => {
            let f = f.as_str().ok_or("body_file: expected a file name")?;
            Plan::file(dir.join(f))
        }
        (None, Some(form)) => Plan::multipart(parts(&form, dir)?, &body::boundary()),
        (None, None) => return Ok(None),
    };
    if let Some(t) = &plan.content_type {
        let headers = obj
            .entry("headers")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(h) = headers.as_object_mut()
            && !h.keys().any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            h.insert("Content-Type".into(), t.clone().into());
        }
    }
    Ok(Some(plan))
}

/// A form's fields as parts, in name order: text, or `{file, filename, content_type}`
/// (the file name sent defaults to the file's, the type to one guessed from it as curl does).
fn parts(form: &Value, dir: &Path) -> Result<Vec<FormPart>, String> {
    let fields = form.as_object().ok_or("form: expected a mapping")?;
    let mut out = Vec::with_capacity(fields.len());
    for (name, v) in fields {
        let part = match v {
            Value::Object(o) => {
                let file = o
                    .get("file")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("form.{name}.file: expected a file name"))?;
                let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
                let sent = text("filename").unwrap_or_else(|| {
                    Path::new(file)
                        .file_name()
                        .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
                });
                let ctype =
                    text("content_type").unwrap_or_else(|| body::type_of(&sent).to_string());
                FormPart {
                    name: name.clone(),
                    content: Piece::File(dir.join(file)),
                    file: Some((sent, ctype)),
                    content_type: None,
                }
            }
            Value::String(s) => text_part(name, s.as_bytes()),
            other => text_part(name, other.to_string().as_bytes()),
        };
        out.push(part);
    }
    Ok(out)
}

fn text_part(name: &str, value: &[u8]) -> FormPart {
    FormPart {
        name: name.to_string(),
        content: Piece::Bytes(value.to_vec()),
        file: None,
        content_type: None,
    }
}
