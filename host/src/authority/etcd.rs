//! One address authority for many processes: the scenario's pools in etcd (v3 API, through its
//! JSON gateway, so a build needs no protoc), the way Calico's IPAM does it.
//!
//! A pool is cut into blocks (4 to 64 addresses, at least 8 blocks where the pool allows).
//! A process claims a block with a transaction that creates the block's key only if it does
//! not exist (compare create_revision = 0), attached to the process's lease; it then allocates
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
    /// `url`: `http://HOST:PORT` of an etcd member.
    pub fn new(url: &str) -> Result<Etcd, String> {
        let u = url::Url::parse(url).map_err(|e| format!("--etcd {url}: {e}"))?;
        if u.scheme() != "http" {
            return Err(format!(
                "--etcd {url}: only http:// (etcd's JSON gateway) is supported"
            ));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build();
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

    async fn call_async(&self, path: &'static str, body: Value) -> Result<Value, String> {
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

    /// Create `key` = `value` under `lease` if the key does not exist; whether it was created.
    pub async fn create(&self, key: &str, value: &str, lease: i64) -> Result<bool, String> {
        let v = self
            .call_async(
                "/v3/kv/txn",
                json!({
                    "compare": [{ "key": b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": "0" }],
                    "success": [{ "request_put": { "key": b64(key), "value": b64(value), "lease": lease.to_string() } }],
                }),
            )
            .await?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
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

/// The blocks of a pool of `intervals` (address keys, inclusive): consecutive runs of a size
/// between 4 and 64 that gives the pool at least 8 blocks where it can.
pub fn blocks(intervals: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let total: u128 = intervals.iter().map(|(a, b)| b - a + 1).sum();
    let size = (total / 8).clamp(4, 64);
    let mut out = Vec::new();
    for &(a, b) in intervals {
        let mut at = a;
        while at <= b {
            let end = (at + size - 1).min(b);
            out.push((at, end));
            if end == u128::MAX {
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
    fn blocks_cover_the_pool_once() {
        // A /24 (256 addresses): blocks of 32; a /28 of 16: blocks of 4; a /16: blocks of 64.
        let v4 = |a: u32| 0xffff_0000_0000u128 | u128::from(a);
        for (len, size) in [(256u128, 32u128), (16, 4), (65_536, 64), (6, 4)] {
            let (a, b) = (v4(0x7f00_0000), v4(0x7f00_0000) + len - 1);
            let bs = blocks(&[(a, b)]);
            assert_eq!(bs[0], (a, a + size - 1), "{len}");
            assert_eq!(bs.last().unwrap().1, b);
            assert!(bs.windows(2).all(|w| w[1].0 == w[0].1 + 1));
            assert_eq!(bs.iter().map(|(x, y)| y - x + 1).sum::<u128>(), len);
        }
    }
}
