//! Result files kept in etcd instead of a shared volume: each segment of a run puts its
//! result under the run's id, in pieces small enough for etcd (1 MiB; its requests take at
//! most 1.5 MiB), the count of pieces last; `merge --etcd` waits until every segment's are
//! there and reads them.

use std::time::{Duration, Instant};

use super::etcd::Etcd;

const PREFIX: &str = "/scheduler/results/v1/";
const PIECE: usize = 1 << 20;

fn run_prefix(run_id: &str) -> String {
    format!("{PREFIX}{run_id}/")
}

/// `text` cut into pieces of at most [`PIECE`] bytes, each whole characters.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > PIECE {
        let mut cut = PIECE;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

/// Put segment `index` of `count`'s result text under `run_id`.
pub async fn publish(
    etcd: &Etcd,
    run_id: &str,
    (index, count): (u32, u32),
    text: &str,
) -> Result<(), String> {
    let base = format!("{}{index:05}/", run_prefix(run_id));
    let pieces = pieces(text);
    for (i, piece) in pieces.iter().enumerate() {
        etcd.put(&format!("{base}piece/{i:05}"), piece).await?;
    }
    etcd.put(&format!("{base}done"), &format!("{} {count}", pieces.len()))
        .await
}

/// Every segment's result text, once all `N` are there (N as the segments say), waiting up
/// to `wait`; `(name, text)` in segment order.
pub async fn collect(
    etcd: &Etcd,
    run_id: &str,
    wait: Duration,
) -> Result<Vec<(String, String)>, String> {
    let started = Instant::now();
    loop {
        let kvs = etcd.get_prefix(&run_prefix(run_id)).await?;
        match assemble(run_id, &kvs) {
            Ok(Some(all)) => return Ok(all),
            Ok(None) if started.elapsed() < wait => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(None) => {
                let have = kvs.iter().filter(|(k, _)| k.ends_with("/done")).count();
                return Err(format!(
                    "run {run_id}: {have} segment result(s) in etcd after {wait:?}, not all"
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The segments' texts when every one is complete; `None` while some are missing.
fn assemble(
    run_id: &str,
    kvs: &[(String, String)],
) -> Result<Option<Vec<(String, String)>>, String> {
    let prefix = run_prefix(run_id);
    let mut done: Vec<(u32, usize, u32)> = Vec::new();
    for (k, v) in kvs {
        let Some(seg) = k
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix("/done"))
        else {
            continue;
        };
        let mut it = v.split_whitespace().map(str::parse::<u32>);
        let (Ok(index), Some(Ok(pieces)), Some(Ok(count))) =
            (seg.parse::<u32>(), it.next(), it.next())
        else {
            return Err(format!(
                "run {run_id}: a malformed result marker {k} = {v:?}"
            ));
        };
        done.push((index, pieces as usize, count));
    }
    let Some(&(_, _, count)) = done.first() else {
        return Ok(None);
    };
    if done.iter().any(|d| d.2 != count) {
        return Err(format!(
            "run {run_id}: its segments disagree on how many there are"
        ));
    }
    if (done.len() as u32) < count {
        return Ok(None);
    }
    done.sort_unstable();
    let mut out = Vec::new();
    for (index, pieces, _) in done {
        let base = format!("{prefix}{index:05}/piece/");
        let mut text = String::new();
        for i in 0..pieces {
            let key = format!("{base}{i:05}");
            let piece = kvs
                .iter()
                .find(|(k, _)| *k == key)
                .ok_or_else(|| format!("run {run_id}: {key} is missing"))?;
            text.push_str(&piece.1);
        }
        out.push((format!("etcd:{prefix}{index:05}"), text));
    }
    Ok(Some(out))
}

/// Remove the run's results from etcd (after a merge that wrote its outputs).
pub async fn remove(etcd: &Etcd, run_id: &str) -> Result<(), String> {
    etcd.delete_prefix(&run_prefix(run_id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_keep_characters_whole() {
        let text = format!("{}é{}", "a".repeat(PIECE - 1), "b".repeat(10));
        let p = pieces(&text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].len(), PIECE - 1);
        assert_eq!(p.concat(), text);
        assert_eq!(pieces(""), vec![""]);
    }
}
