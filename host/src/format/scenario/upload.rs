//! `with.body_file` and `with.form`: request bodies from files, streamed by the host as they
//! are sent (`engine::upload` builds them). Checked here for their shape; the files are looked
//! for when the scenario is loaded (`Scenario::load_data`), relative to the scenario.

use super::*;

/// The keys of `with` that are the host's and never reach the executor.
pub const UPLOAD_KEYS: [&str; 2] = ["body_file", "form"];

/// Problems in `with`'s `body_file` and `form` (at `path`, the action's).
pub(super) fn check_upload(w: &mut Walker, with: &serde_json::Value, path: &str) {
    let has = |k: &str| with.get(k).is_some_and(|v| !v.is_null());
    let (file, form) = (has("body_file"), has("form"));
    for other in ["body", "body_base64"] {
        if (file || form) && has(other) {
            let which = if file { "body_file" } else { "form" };
            w.problem(
                &join(path, &format!("with.{which}")),
                format!("an action has one body: {which} or {other}, not both"),
            );
        }
    }
    if file && form {
        w.problem(
            &join(path, "with.form"),
            "an action has one body: body_file or form, not both",
        );
    }
    if let Some(f) = with.get("body_file").filter(|v| !v.is_null())
        && f.as_str().is_none_or(str::is_empty)
    {
        w.problem(&join(path, "with.body_file"), "expected a file name");
    }
    if let Some(form) = with.get("form").filter(|v| !v.is_null()) {
        check_form(w, form, &join(path, "with.form"));
    }
}

fn check_form(w: &mut Walker, form: &serde_json::Value, path: &str) {
    let Some(fields) = form.as_object() else {
        w.problem(
            path,
            "expected a mapping of field names to text or {file, filename, content_type}",
        );
        return;
    };
    for (name, v) in fields {
        let at = join(path, name);
        match v {
            serde_json::Value::String(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::Bool(_) => {}
            serde_json::Value::Object(o) => {
                for k in o.keys() {
                    if !["file", "filename", "content_type"].contains(&k.as_str()) {
                        w.problem(
                            &join(&at, k),
                            "unknown field (expected one of: file, filename, content_type)",
                        );
                    }
                }
                if o.get("file")
                    .and_then(|f| f.as_str())
                    .is_none_or(str::is_empty)
                {
                    w.problem(&join(&at, "file"), "required: the file to send");
                }
            }
            _ => w.problem(&at, "expected text or {file, filename, content_type}"),
        }
    }
}

/// The files `with` names (`body_file` and the form's file parts) with where each is named;
/// templated names are checked when rendered.
fn upload_files(with: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(f) = with.get("body_file").and_then(|f| f.as_str()) {
        out.push(("with.body_file".to_string(), f.to_string()));
    }
    for (name, v) in with
        .get("form")
        .and_then(|f| f.as_object())
        .into_iter()
        .flatten()
    {
        if let Some(f) = v.get("file").and_then(|f| f.as_str()) {
            out.push((format!("with.form.{name}.file"), f.to_string()));
        }
    }
    out.retain(|(_, f)| !f.contains("{{"));
    out
}

impl Scenario {
    /// The files actions send, relative to `dir`: problems for those that cannot be read.
    pub(super) fn check_upload_files(&self, dir: &std::path::Path) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, a) in self.actions.iter().enumerate() {
            for (at, f) in upload_files(&a.with) {
                let file = dir.join(&f);
                match std::fs::metadata(&file) {
                    Ok(m) if m.is_file() => {}
                    Ok(_) => problems.push(format!(
                        "actions.actions[{i}].{at}: {}: not a regular file",
                        file.display()
                    )),
                    Err(e) => problems.push(format!(
                        "actions.actions[{i}].{at}: {}: {e}",
                        file.display()
                    )),
                }
            }
        }
        problems
    }
}
