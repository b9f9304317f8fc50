//! Idle keep-alive connections keyed by (host, port, source address), with idle expiry and a
//! cap per key. Generic over the connection type so it is tested natively.

use alloc::collections::BTreeMap;
use core::net::IpAddr;

#[allow(unused_imports)]
use crate::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    pub host: String,
    pub port: u16,
    pub source: Option<IpAddr>,
    /// `https`: a TLS connection is never handed to a plain request, nor the reverse.
    pub tls: bool,
    /// The proxy the connection goes through (for `https`, a tunnel to `host:port`).
    pub proxy: Option<crate::Proxy>,
}

/// Up to this many keys stay in the map with no idle connection.
const KEEP_EMPTY_KEYS: usize = 8;

pub struct ConnPool<C> {
    /// Idle connections with the time (µs) each was checked in.
    idle: BTreeMap<PoolKey, Vec<(C, u64)>>,
    pub max_idle_per_key: usize,
    /// Microseconds.
    pub idle_timeout: u64,
}

impl<C> ConnPool<C> {
    pub fn new(max_idle_per_key: usize, idle_timeout_us: u64) -> Self {
        ConnPool {
            idle: BTreeMap::new(),
            max_idle_per_key,
            idle_timeout: idle_timeout_us,
        }
    }

    /// The most recently used connection for `key` not idle past the timeout; expired ones
    /// are dropped. (Whether the peer has closed it is for the caller to check.)
    pub fn checkout(&mut self, key: &PoolKey, now: u64) -> Option<C> {
        let list = self.idle.get_mut(key)?;
        let timeout = self.idle_timeout;
        list.retain(|(_, since)| now.saturating_sub(*since) < timeout);
        let found = list.pop().map(|(c, _)| c);
        // A key that runs empty keeps its list while there are few keys: the connection is
        // usually checked in again right after its request, and then the map and the list
        // need no new node.
        if list.is_empty() && self.idle.len() > KEEP_EMPTY_KEYS {
            self.idle.remove(key);
        }
        found
    }

    /// Keep `conn` for reuse; past the cap the oldest idle one is closed.
    pub fn checkin(&mut self, key: &PoolKey, conn: C, now: u64) {
        if self.max_idle_per_key == 0 {
            return;
        }
        let list = match self.idle.get_mut(key) {
            Some(list) => list,
            None => self.idle.entry(key.clone()).or_default(),
        };
        list.push((conn, now));
        if list.len() > self.max_idle_per_key {
            list.remove(0);
        }
    }

    /// Keys in the map, empty ones included.
    pub fn key_count(&self) -> usize {
        self.idle.len()
    }

    pub fn idle_count(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    pub fn clear(&mut self) {
        self.idle.clear();
    }

    /// Close the idle connections bound to `source`, keeping the others.
    pub fn close_from(&mut self, source: IpAddr) {
        self.idle.retain(|k, _| k.source != Some(source));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_one_source_keeps_the_others() {
        let mut pool = ConnPool::new(4, 10_000_000);
        let t0 = 5_000_000u64;
        let from = |ip: &str, port| PoolKey {
            host: "h".into(),
            port,
            source: Some(ip.parse().unwrap()),
            tls: false,
            proxy: None,
        };
        pool.checkin(&from("127.0.10.1", 80), 1, t0);
        pool.checkin(&from("127.0.10.1", 81), 2, t0);
        pool.checkin(&from("127.0.10.2", 80), 3, t0);
        pool.checkin(&key(80), 4, t0);
        pool.close_from("127.0.10.1".parse().unwrap());
        assert_eq!(pool.idle_count(), 2);
        assert_eq!(pool.checkout(&from("127.0.10.2", 80), t0), Some(3));
        assert_eq!(pool.checkout(&key(80), t0), Some(4));
    }

    #[test]
    fn empty_keys_are_kept_only_while_few() {
        let mut pool = ConnPool::new(2, 10_000_000);
        let t0 = 5_000_000u64;
        for p in 0..20 {
            pool.checkin(&key(p), p, t0);
        }
        for p in 0..20 {
            assert_eq!(pool.checkout(&key(p), t0), Some(p));
        }
        assert_eq!(pool.idle_count(), 0);
        assert_eq!(pool.key_count(), KEEP_EMPTY_KEYS);
        // A kept key takes connections again.
        pool.checkin(&key(19), 7, t0);
        assert_eq!(pool.checkout(&key(19), t0), Some(7));
        assert_eq!(pool.key_count(), KEEP_EMPTY_KEYS);
    }

    fn key(p: u16) -> PoolKey {
        PoolKey {
            host: "h".into(),
            port: p,
            source: None,
            tls: false,
            proxy: None,
        }
    }

    #[test]
    fn caps_and_expires() {
        let mut pool = ConnPool::new(2, 10_000_000);
        let t0 = 5_000_000u64;
        for i in 0..3 {
            pool.checkin(&key(1), i, t0);
        }
        assert_eq!(pool.idle_count(), 2, "capped");
        assert_eq!(pool.checkout(&key(1), t0), Some(2), "most recent first");
        assert_eq!(pool.checkout(&key(2), t0), None, "keys are separate");
        assert_eq!(pool.checkout(&key(1), t0), Some(1), "then the older one");
        assert_eq!(pool.checkout(&key(1), t0), None, "then none");
        pool.checkin(&key(1), 7, t0);
        assert_eq!(pool.checkout(&key(1), t0 + 11_000_000), None, "expired");
        assert_eq!(pool.idle_count(), 0);
    }
}
