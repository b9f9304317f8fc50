//! `workbook.data`: rows from files (CSV with a header row, a JSON array of objects, JSON
//! lines), read once at the start and shared by every user, each user taking a row per pass
//! as the mode says (k6's SharedArray with its per-VU, sequential, random and unique
//! patterns). Templates read a row's columns as `{{DATA_ID.COLUMN}}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;

/// The largest data file read (its rows stay in memory for the run).
pub const MAX_DATA_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    /// A row per user, by its global id (user k takes row (k-1) mod rows).
    PerUser,
    /// The next row each pass, over all users (wrapping round).
    Sequential,
    /// A row drawn at random each pass.
    Random,
    /// Each row once over the whole run; when they run out, users stop.
    Unique,
}

/// The rows: column names, and each row's values in that order.
#[derive(Debug, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct DataSource {
    pub id: String,
    pub file: PathBuf,
    pub mode: DataMode,
    /// Filled by `load` (after parsing, relative to the scenario's directory).
    pub table: Arc<Table>,
    /// `--segment I/N`: this share takes the rows k with k mod N = I (sequential and unique),
    /// so no row is taken by two segments.
    pub stride: (u32, u32),
    /// Some template reads it: only then does a pass take one of its rows (an unread unique
    /// source uses none up).
    pub read: bool,
}

/// `workbook.data: [{id, file, mode}]`.
pub(super) fn data_sources(
    w: &mut Walker,
    files: Vec<(usize, schema::DataFile)>,
) -> Vec<DataSource> {
    let mut out = Vec::new();
    for (i, m) in files {
        let path = format!("workbook.data[{i}]");
        let (id, file) = (m.id.text(), m.file.text());
        let mode = match opt_text(&m.mode).as_deref() {
            None | Some("per_user") => DataMode::PerUser,
            Some("sequential") => DataMode::Sequential,
            Some("random") => DataMode::Random,
            Some("unique") => DataMode::Unique,
            Some(other) => {
                w.problem(
                    &join(&path, "mode"),
                    format!("unknown mode {other:?} (per_user, sequential, random, unique)"),
                );
                DataMode::PerUser
            }
        };
        if out.iter().any(|o: &DataSource| o.id == id) {
            w.problem(&join(&path, "id"), format!("duplicate data id {id:?}"));
        }
        out.push(DataSource {
            id,
            file: file.into(),
            mode,
            table: Arc::default(),
            stride: (0, 1),
            read: false,
        });
    }
    out
}

/// Read a data file: CSV (a header row, then rows of as many fields), a JSON array of
/// objects, or JSON lines (by the extension: .csv, .json, .jsonl or .ndjson).
pub fn read_table(path: &Path) -> Result<Table, String> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{shown}: {e}"))?
        .len();
    if size > MAX_DATA_BYTES {
        return Err(format!(
            "{shown}: {size} bytes, over the {MAX_DATA_BYTES}-byte limit of a data file"
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let table = match ext.as_str() {
        "csv" => read_csv(path),
        "json" => {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let items = v.as_array().ok_or("expected a JSON array of objects")?;
            objects(items.iter().cloned())
        }
        "jsonl" | "ndjson" => {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            let mut items = Vec::new();
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                items.push(serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?);
            }
            objects(items.into_iter())
        }
        _ => Err("unknown kind of file (.csv, .json, .jsonl or .ndjson)".into()),
    }
    .map_err(|e| format!("{shown}: {e}"))?;
    if table.rows.is_empty() {
        return Err(format!("{shown}: no rows"));
    }
    Ok(table)
}

fn read_csv(path: &Path) -> Result<Table, String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| e.to_string())?;
    let columns: Vec<String> = r
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        rows.push(rec.iter().map(str::to_string).collect());
    }
    Ok(Table { columns, rows })
}

/// Objects as rows: the columns are the first object's keys; every object must have them.
fn objects(items: impl Iterator<Item = serde_json::Value>) -> Result<Table, String> {
    let mut table = Table::default();
    for (n, item) in items.enumerate() {
        let o = item
            .as_object()
            .ok_or_else(|| format!("item {n} is not an object"))?;
        if n == 0 {
            table.columns = o.keys().cloned().collect();
        }
        let mut row = Vec::with_capacity(table.columns.len());
        for c in &table.columns {
            let v = o.get(c).ok_or_else(|| format!("item {n} has no {c:?}"))?;
            row.push(match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        table.rows.push(row);
    }
    Ok(table)
}

impl Scenario {
    /// Read the data files (relative to `dir`, the scenario's directory) and check that every
    /// `{{DATA_ID.COLUMN}}` the actions and edges read names a column; the problems.
    pub fn load_data(&mut self, dir: &Path) -> Vec<String> {
        self.dir = dir.to_path_buf();
        let mut problems = self.check_upload_files(dir);
        for s in &self.servers {
            problems.extend(s.check_dirs(dir));
        }
        let mut texts: Vec<String> = self.actions.iter().map(|a| a.with.to_string()).collect();
        for n in &self.nodes {
            for e in &n.edges {
                if let Some(c) = e.trigger.as_ref().and_then(|t| t.condition.clone()) {
                    texts.push(format!("{{{{{c}}}}}"));
                }
            }
        }
        let read: Vec<String> = texts
            .iter()
            .filter_map(|t| crate::format::template::names(t).ok())
            .flatten()
            .collect();
        for (i, d) in self.data.iter_mut().enumerate() {
            let file = if d.file.is_relative() {
                dir.join(&d.file)
            } else {
                d.file.clone()
            };
            let table = match read_table(&file) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("workbook.data[{i}].file: {e}"));
                    continue;
                }
            };
            for name in &read {
                if let Some((scope, column)) = name.split_once('.')
                    && scope == d.id
                    && !table.columns.iter().any(|c| c == column)
                {
                    problems.push(format!(
                        "{{{{{name}}}}}: data {:?} has no column {column:?} (it has: {})",
                        d.id,
                        table.columns.join(", ")
                    ));
                }
            }
            d.read = read
                .iter()
                .any(|n| n.split_once('.').is_some_and(|(s, _)| s == d.id));
            d.file = file;
            d.table = Arc::new(table);
        }
        problems.sort();
        problems.dedup();
        problems
    }
}

impl DataSource {
    /// The row a user takes for a pass, given the source's next shared position (sequential
    /// and unique), the user's id and a random draw; `None` when unique rows ran out.
    pub fn row(&self, next: u64, user: u32, random: f64) -> Option<usize> {
        let len = self.table.rows.len() as u64;
        let (i, n) = (u64::from(self.stride.0), u64::from(self.stride.1.max(1)));
        match self.mode {
            DataMode::PerUser => Some((u64::from(user).saturating_sub(1) % len) as usize),
            DataMode::Random => Some(((random * len as f64) as u64).min(len - 1) as usize),
            DataMode::Sequential => {
                // This segment's rows are i, i+n, ...; wrap round within them.
                let own = len.saturating_sub(i).div_ceil(n).max(1);
                Some(((next % own) * n + i).min(len - 1) as usize)
            }
            DataMode::Unique => {
                let k = next * n + i;
                (k < len).then_some(k as usize)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(mode: DataMode, rows: usize, stride: (u32, u32)) -> DataSource {
        DataSource {
            id: "d".into(),
            file: "d.csv".into(),
            mode,
            table: Arc::new(Table {
                columns: vec!["n".into()],
                rows: (0..rows).map(|r| vec![r.to_string()]).collect(),
            }),
            stride,
            read: true,
        }
    }

    #[test]
    fn modes_pick_rows_as_k6_does() {
        let s = source(DataMode::PerUser, 3, (0, 1));
        assert_eq!(
            (1..=4)
                .map(|u| s.row(0, u, 0.0).unwrap())
                .collect::<Vec<_>>(),
            [0, 1, 2, 0]
        );
        let s = source(DataMode::Sequential, 3, (0, 1));
        assert_eq!(
            (0..4)
                .map(|k| s.row(k, 9, 0.0).unwrap())
                .collect::<Vec<_>>(),
            [0, 1, 2, 0]
        );
        let s = source(DataMode::Random, 3, (0, 1));
        assert_eq!(s.row(0, 1, 0.999_999), Some(2));
        // Unique rows over two segments: disjoint, all used, then none.
        let a = source(DataMode::Unique, 5, (0, 2));
        let b = source(DataMode::Unique, 5, (1, 2));
        let mut all: Vec<usize> = (0..5)
            .filter_map(|k| a.row(k, 1, 0.0))
            .chain((0..5).filter_map(|k| b.row(k, 1, 0.0)))
            .collect();
        all.sort();
        assert_eq!(all, [0, 1, 2, 3, 4]);
        assert_eq!(a.row(3, 1, 0.0), None);
    }

    #[test]
    fn files_of_each_kind() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("c.csv");
        std::fs::write(&csv, "username,password\nann,\"a,b\"\nbob,c\n").unwrap();
        let t = read_table(&csv).unwrap();
        assert_eq!(t.columns, ["username", "password"]);
        assert_eq!(t.rows[0], ["ann", "a,b"]);
        let json = dir.path().join("j.json");
        std::fs::write(&json, r#"[{"u":"ann","n":1},{"u":"bob","n":2}]"#).unwrap();
        // Columns in key order.
        assert_eq!(read_table(&json).unwrap().rows[1], ["2", "bob"]);
        let jsonl = dir.path().join("l.jsonl");
        std::fs::write(&jsonl, "{\"u\":\"ann\"}\n\n{\"u\":\"bob\"}\n").unwrap();
        assert_eq!(read_table(&jsonl).unwrap().rows.len(), 2);
        std::fs::write(&csv, "a,b\n1\n").unwrap();
        assert!(read_table(&csv).is_err(), "a short row");
        std::fs::write(&json, r#"[{"u":"ann"},{"v":1}]"#).unwrap();
        assert!(read_table(&json).is_err(), "an object without the columns");
        assert!(read_table(&dir.path().join("none.csv")).is_err());
    }
}
