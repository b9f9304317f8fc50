//! One address authority for many processes: the scenario's pools in etcd (v3 API, through its
//! JSON gateway, so a build needs no protoc), the way Calico's IPAM does it.
//!
//! Blocks belong to the address space, not to a pool: a block is an aligned CIDR of 4 to 64
//! addresses (a power of two, so at least 8 blocks where the pool allows), keyed by its first
//! address and size, as Calico's are. A pool's blocks are the aligned cells its ranges touch,
//! each usable where it meets the ranges. A process claims a block with one transaction that
//! creates its key only if no key exists in the block's own key range (itself and any smaller
//! block inside it: the keys sort by address) nor for any larger block around it, attached to
//! the process's lease. So any two pools of any scenarios that share an address share its
//! authority, whatever their ids, sizes or the order of their ranges. It then allocates
//! inside its blocks with its own ip-pool, and gives a block back (deletes its key, if still
//! its own) when the block empties. The lease is kept alive while the process lives
//! (`--lease-ttl`, a keep-alive every third of it), so the blocks of a process killed with
//! kill -9 return when its lease expires. No address is in two processes' blocks at once, so
//! none is held by two users.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// The key prefix of the IPAM's blocks.
pub const PREFIX: &str = "/scheduler/ipam/v1/";

#[derive(Clone)]
pub struct Etcd {
    base: String,
    agent: ureq::Agent,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// An int64 of the gateway's JSON (written as a string).
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

impl Etcd {
    /// `url`: `http://HOST:PORT` or `https://HOST:PORT` of an etcd member; for https, `tls`
    /// says whom to trust and the client's certificate (a cluster's etcd asks for one).
    pub fn new(url: &str, tls: &compose::tls::TlsSettings) -> Result<Etcd, String> {
        let u = url::Url::parse(url).map_err(|e| format!("--etcd {url}: {e}"))?;
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(2))
            .timeout(Duration::from_secs(5));
        match u.scheme() {
            "http" => {}
            "https" => {
                let client =
                    compose::tls::TlsClient::new(tls).map_err(|e| format!("--etcd {url}: {e}"))?;
                agent = agent.tls_config(client.config());
            }
            other => {
                return Err(format!(
                    "--etcd {url}: {other}:// is not etcd's (http:// or https://, its JSON gateway)"
                ));
            }
        }
        let agent = agent.build();
        Ok(Etcd {
            base: url.trim_end_matches('/').to_string(),
            agent,
        })
    }

    /// One call of the gateway (blocking: run it off the async threads).
    fn call(&self, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let r = self
            .agent
            .post(&url)
            .set("content-type", "application/json")
            .send_string(&body.to_string());
        let text = match r {
            Ok(resp) => resp.into_string().map_err(|e| format!("etcd {url}: {e}"))?,
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                return Err(format!("etcd {url}: HTTP {code}: {}", text.trim()));
            }
            Err(e) => return Err(format!("etcd at {}: {e}", self.base)),
        };
        serde_json::from_str(&text).map_err(|e| format!("etcd {url}: {e}: {text}"))
    }

    pub(crate) async fn call_async(
        &self,
        path: &'static str,
        body: Value,
    ) -> Result<Value, String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.call(path, body))
            .await
            .map_err(|e| format!("etcd call: {e}"))?
    }

    /// A lease of `ttl`; its id.
    pub async fn grant(&self, ttl: Duration) -> Result<i64, String> {
        let v = self
            .call_async("/v3/lease/grant", json!({ "TTL": ttl.as_secs().max(1) }))
            .await?;
        match int(&v["ID"]) {
            0 => Err(format!("etcd lease grant: {v}")),
            id => Ok(id),
        }
    }

    /// Keep the lease alive; an error when it has expired or etcd cannot be reached.
    /// Renew the lease: whether it was still alive (false: it expired, and its keys are gone).
    pub async fn keep_alive(&self, lease: i64) -> Result<bool, String> {
        let v = self
            .call_async("/v3/lease/keepalive", json!({ "ID": lease.to_string() }))
            .await?;
        Ok(int(&v["result"]["TTL"]) > 0)
    }

    pub async fn revoke(&self, lease: i64) -> Result<(), String> {
        self.call_async("/v3/lease/revoke", json!({ "ID": lease.to_string() }))
            .await
            .map(|_| ())
    }

    /// Claim `block` for `value` under `lease`: create its key if no block that overlaps it
    /// is claimed (none inside it, itself included, and none of the larger sizes around it);
    /// whether it was claimed.
    pub async fn claim(&self, block: &Block, value: &str, lease: i64) -> Result<bool, String> {
        let absent = |key: &str, end: Option<&str>| {
            let mut c = json!({ "key": b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": "0" });
            if let Some(end) = end {
                c["range_end"] = b64(end).into();
            }
            c
        };
        let end = cell_prefix(block.start.saturating_add(block.size));
        let mut compare = vec![absent(&cell_prefix(block.start), Some(&end))];
        for size in SIZES.iter().filter(|s| **s > block.size) {
            compare.push(absent(&cell_key(block.start & !(size - 1), *size), None));
        }
        let key = cell_key(block.start, block.size);
        let v = self
            .call_async(
                "/v3/kv/txn",
                json!({
                    "compare": compare,
                    "success": [{ "request_put": { "key": b64(&key), "value": b64(value), "lease": lease.to_string() } }],
                }),
            )
            .await?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
    }

    /// Put `key` = `value` (no lease: it outlives this process).
    pub async fn put(&self, key: &str, value: &str) -> Result<(), String> {
        self.call_async(
            "/v3/kv/put",
            json!({ "key": b64(key), "value": b64(value) }),
        )
        .await
        .map(|_| ())
    }

    /// Every key under `prefix` with its value, in key order.
    pub async fn get_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, String> {
        let v = self
            .call_async(
                "/v3/kv/range",
                json!({ "key": b64(prefix), "range_end": b64(&prefix_end(prefix)) }),
            )
            .await?;
        let text = |x: &Value| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(x.as_str().unwrap_or_default())
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Ok(v["kvs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|kv| (text(&kv["key"]), text(&kv["value"])))
            .collect())
    }

    /// Delete every key under `prefix`.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), String> {
        self.call_async(
            "/v3/kv/deleterange",
            json!({ "key": b64(prefix), "range_end": b64(&prefix_end(prefix)) }),
        )
        .await
        .map(|_| ())
    }

    /// Delete `key` if its value is still `value`; whether it was.
    pub async fn delete_if(&self, key: &str, value: &str) -> Result<bool, String> {
        let v = self
            .call_async(
                "/v3/kv/txn",
                json!({
                    "compare": [{ "key": b64(key), "result": "EQUAL", "target": "VALUE", "value": b64(value) }],
                    "success": [{ "request_delete_range": { "key": b64(key) } }],
                }),
            )
            .await?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
    }
}

/// The end of the key range of every key that starts with `prefix` (its last byte plus one).
fn prefix_end(prefix: &str) -> String {
    let mut b = prefix.as_bytes().to_vec();
    if let Some(last) = b.last_mut() {
        *last += 1;
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// The sizes a block may have: aligned CIDRs of 4 to 64 addresses.
const SIZES: [u128; 5] = [4, 8, 16, 32, 64];

/// A block of the address space: `size` addresses from `start` (aligned to `size`), and the
/// pool's ranges within it (address keys, inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub start: u128,
    pub size: u128,
    pub ranges: Vec<(u128, u128)>,
}

/// Where a block's key and those of the blocks inside it begin: keys sort by address.
fn cell_prefix(start: u128) -> String {
    format!("{PREFIX}cells/{start:032x}/")
}

/// The key of the block of `size` addresses at `start`.
pub fn cell_key(start: u128, size: u128) -> String {
    format!("{}{:02}", cell_prefix(start), size.trailing_zeros())
}

/// The blocks of a pool of `intervals` (address keys, inclusive, not overlapping): the
/// aligned cells they touch, of the size that gives the pool at least 8 blocks where it can.
pub fn blocks(intervals: &[(u128, u128)]) -> Vec<Block> {
    let total: u128 = intervals.iter().map(|(a, b)| b - a + 1).sum();
    let want = (total / 8).clamp(4, 64);
    let size = SIZES
        .iter()
        .rev()
        .copied()
        .find(|s| *s <= want)
        .unwrap_or(4);
    let mut sorted = intervals.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<Block> = Vec::new();
    for (a, b) in sorted {
        let mut at = a;
        loop {
            let start = at & !(size - 1);
            let end = (start | (size - 1)).min(b);
            match out.last_mut() {
                Some(last) if last.start == start => last.ranges.push((at, end)),
                _ => out.push(Block {
                    start,
                    size,
                    ranges: vec![(at, end)],
                }),
            }
            if end >= b {
                break;
            }
            at = end + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_cells_that_cover_the_pool_once() {
        // A /24 (256 addresses): blocks of 32; a /28 of 16: blocks of 4; a /16: blocks of 64.
        let v4 = |a: u32| 0xffff_0000_0000u128 | u128::from(a);
        for (len, size) in [(256u128, 32u128), (16, 4), (65_536, 64), (6, 4), (100, 8)] {
            let (a, b) = (v4(0x7f00_0000), v4(0x7f00_0000) + len - 1);
            let bs = blocks(&[(a, b)]);
            assert!(
                bs.iter().all(|k| k.size == size && k.start % size == 0),
                "{len}"
            );
            assert_eq!(bs[0].ranges[0].0, a);
            assert_eq!(bs.last().unwrap().ranges.last().unwrap().1, b);
            let covered: u128 = bs
                .iter()
                .flat_map(|k| &k.ranges)
                .map(|(x, y)| y - x + 1)
                .sum();
            assert_eq!(covered, len);
        }
        // Two ranges in one cell, listed in either order, give one block with both.
        let (r1, r2) = (
            (v4(0x7f00_0001), v4(0x7f00_0001)),
            (v4(0x7f00_0003), v4(0x7f00_0006)),
        );
        let one = blocks(&[r2, r1]);
        assert_eq!(one, blocks(&[r1, r2]));
        assert_eq!(one[0].ranges, vec![r1, (v4(0x7f00_0003), v4(0x7f00_0003))]);
        assert_eq!(one[1].start, v4(0x7f00_0004));
    }

    #[test]
    fn keys_sort_by_address_and_name_their_size() {
        let k = cell_key(0xffff_7f00_0040, 64);
        assert!(
            k.ends_with("cells/00000000000000000000ffff7f000040/06"),
            "{k}"
        );
        assert!(cell_prefix(0x40) < cell_key(0x44, 4) && cell_key(0x44, 4) < cell_prefix(0x80));
    }
}
