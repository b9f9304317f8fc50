//! What a result file says it is a part of: the scenario (a digest of the normalised file),
//! its segment `I/N`, and the run id it was given. `merge` refuses files that are not one
//! run's parts: other scenarios, other runs, a segment twice, one missing (unless
//! `--partial`), or a file whose own totals do not add up.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The scenario's digest (`None`: not recorded, as in files of earlier versions).
    pub scenario: Option<String>,
    pub segment: Option<(u32, u32)>,
    pub run_id: Option<String>,
}

impl Identity {
    pub fn json(&self) -> Value {
        json!({
            "scenario_digest": self.scenario,
            "segment": self.segment.map(|(i, n)| format!("{i}/{n}")),
            "run_id": self.run_id,
        })
    }

    fn of(v: &Value) -> Identity {
        let segment = v["segment"].as_str().and_then(|s| {
            let (i, n) = s.split_once('/')?;
            Some((i.parse().ok()?, n.parse().ok()?))
        });
        Identity {
            scenario: v["scenario_digest"].as_str().map(str::to_string),
            segment,
            run_id: v["run_id"].as_str().map(str::to_string),
        }
    }
}

/// The digest of a scenario file: its YAML read and written again as JSON with its keys in
/// order, so comments, layout and key order do not change it.
pub fn digest(text: &str) -> Option<String> {
    let v: Value = serde_yaml::from_str(text).ok()?;
    let canonical = serde_json::to_string(&v).ok()?;
    let hash = Sha256::digest(canonical.as_bytes());
    Some(hash.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// Whether the files are one run's parts; the segments missing (allowed with `partial`).
pub fn check_set(files: &[(String, Value)], partial: bool) -> Result<Vec<u32>, String> {
    let ids: Vec<(&str, Identity)> = files
        .iter()
        .map(|(p, v)| (p.as_str(), Identity::of(&v["identity"])))
        .collect();
    let Some((first_path, first)) = ids.first() else {
        return Ok(Vec::new());
    };
    for (path, v) in files {
        check_totals(path, v)?;
    }
    for (path, id) in &ids[1..] {
        if id.scenario != first.scenario {
            return Err(format!(
                "{path} is of another scenario than {first_path} (digest {} against {})",
                id.scenario.as_deref().unwrap_or("none"),
                first.scenario.as_deref().unwrap_or("none")
            ));
        }
        if id.run_id != first.run_id {
            return Err(format!(
                "{path} is of another run than {first_path} (run id {:?} against {:?})",
                id.run_id, first.run_id
            ));
        }
        if id.segment.is_some() != first.segment.is_some() {
            return Err(format!(
                "{path} and {first_path}: a segment and a whole run do not merge"
            ));
        }
    }
    check_segments(&ids, partial)
}

/// Segments: the same N everywhere, each I once, none missing unless `partial`.
fn check_segments(ids: &[(&str, Identity)], partial: bool) -> Result<Vec<u32>, String> {
    let Some((_, Some((_, n)))) = ids.first().map(|(p, id)| (p, id.segment)) else {
        return Ok(Vec::new());
    };
    let mut seen = vec![None; n as usize];
    for (path, id) in ids {
        let (i, m) = id.segment.unwrap_or((0, 0));
        if m != n || i >= n {
            return Err(format!(
                "{path}: segment {i}/{m}, where the others are of {n}"
            ));
        }
        if let Some(other) = seen[i as usize].replace(*path) {
            return Err(format!("segment {i}/{n} twice: {other} and {path}"));
        }
    }
    let missing: Vec<u32> = (0..n).filter(|i| seen[*i as usize].is_none()).collect();
    if !missing.is_empty() && !partial {
        let list: Vec<String> = missing.iter().map(|i| format!("{i}/{n}")).collect();
        return Err(format!(
            "segments missing: {} (merge --partial merges what there is)",
            list.join(", ")
        ));
    }
    Ok(missing)
}

/// A file's own sums: its actions' requests add up to its total, as do its tenants'.
fn check_totals(path: &str, v: &Value) -> Result<(), String> {
    let total = v["totals"]["count"].as_u64().unwrap_or(0);
    for key in ["by_action", "by_tenant", "by_status_class"] {
        let Some(groups) = v[key].as_object() else {
            continue;
        };
        let sum: u64 = groups.values().filter_map(|g| g["count"].as_u64()).sum();
        if sum != total {
            return Err(format!(
                "{path}: its {key} add up to {sum} requests, its total says {total}"
            ));
        }
    }
    Ok(())
}
