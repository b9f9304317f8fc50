//! The snapshot byte format, version 1 (all integers little-endian):
//!
//! ```text
//! "IPPOOL" u16:version u32:pools
//! per pool: str:name u8:strategy opt<u64>:ttl u64:seed u64:rng u64:generation u128:cursor
//!   u32:ranges     { u128:start u128:end str:text }
//!   u64:reserved   { u128:start u128:end }
//!   u64:free       { u128:start u128:end }
//!   u32:quotas     { str:tenant u64:limit }
//!   u64:bindings   { u128:ip str:tenant str:resource u8:type [str:custom] u64:generation opt<u64>:expiry }
//! str = u32:len bytes(UTF-8); opt<T> = u8:0 | u8:1 T
//! ```
//!
//! Reading checks every length against the input and every structural invariant (free space
//! and bindings inside the ranges, no bound address free, no owner twice), so a corrupt
//! snapshot is an `invalid-snapshot` error, never a panic.

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::collections::{BTreeMap, BTreeSet};

use crate::{
    Intervals, Owner, Pool, PoolConfig, PoolError, Range, ResourceType, Slot, Strategy, owner_hash,
};

const MAGIC: &[u8] = b"IPPOOL";
const VERSION: u16 = 1;

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.u64(x);
            }
        }
    }
}

pub(crate) fn write<'a>(pools: impl Iterator<Item = &'a Pool>) -> Vec<u8> {
    let pools: Vec<&Pool> = pools.collect();
    let mut w = W(Vec::new());
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&VERSION.to_le_bytes());
    w.u32(pools.len() as u32);
    for p in pools {
        w.str(&p.name);
        w.u8(match p.config.strategy {
            Strategy::Sequential => 0,
            Strategy::RoundRobin => 1,
            Strategy::Random => 2,
        });
        w.opt(p.config.lease_ttl_ms);
        w.u64(p.config.seed);
        w.u64(p.rng);
        w.u64(p.generation);
        w.u128(p.cursor);
        w.u32(p.ranges.len() as u32);
        for (&s, r) in &p.ranges {
            w.u128(s);
            w.u128(r.end);
            w.str(&r.text);
        }
        for set in [&p.reserved, &p.free] {
            w.u64(set.fragments() as u64);
            for (s, e) in set.iter() {
                w.u128(s);
                w.u128(e);
            }
        }
        let mut quotas: Vec<(&str, u64)> = p
            .tenants
            .iter()
            .filter_map(|t| t.quota.map(|q| (&*t.name, q)))
            .collect();
        crate::sort_by(&mut quotas, |a, b| a < b);
        w.u32(quotas.len() as u32);
        for (name, q) in quotas {
            w.str(name);
            w.u64(q);
        }
        let mut keys: Vec<u128> = p.slots.keys().collect();
        crate::sort_by(&mut keys, |a, b| a < b);
        w.u64(keys.len() as u64);
        for k in keys {
            let Some(slot) = p.slots.get(k) else {
                continue;
            };
            w.u128(k);
            w.str(&p.tenants.at(slot.tenant).name);
            w.str(slot.resource.as_str());
            match &slot.resource_type {
                ResourceType::Vm => w.u8(0),
                ResourceType::Container => w.u8(1),
                ResourceType::Pod => w.u8(2),
                ResourceType::Custom(c) => {
                    w.u8(3);
                    w.str(c);
                }
            }
            w.u64(slot.generation);
            w.opt(slot.expiry);
        }
    }
    w.0
}

struct R<'a> {
    b: &'a [u8],
}

fn bad(what: &str) -> PoolError {
    PoolError::InvalidSnapshot(what.to_string())
}

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PoolError> {
        if self.b.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, PoolError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PoolError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, PoolError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, PoolError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn u128(&mut self) -> Result<u128, PoolError> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().unwrap()))
    }
    fn str(&mut self) -> Result<String, PoolError> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| bad("string is not UTF-8"))
    }
    fn opt(&mut self) -> Result<Option<u64>, PoolError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(bad("bad option tag")),
        }
    }
    /// A count of items each at least `min_size` bytes: refuse counts the input cannot hold.
    fn count(&mut self, n: u64, min_size: usize) -> Result<usize, PoolError> {
        if n > (self.b.len() / min_size.max(1)) as u64 {
            return Err(bad("count larger than the input"));
        }
        Ok(n as usize)
    }
    fn intervals(&mut self) -> Result<Intervals, PoolError> {
        let n = self.u64()?;
        let n = self.count(n, 32)?;
        let mut iv = Intervals::new();
        let mut last: Option<u128> = None;
        for _ in 0..n {
            let s = self.u128()?;
            let e = self.u128()?;
            if s > e || last.is_some_and(|l| s <= l.saturating_add(1)) {
                return Err(bad("intervals out of order"));
            }
            iv.insert(s, e);
            last = Some(e);
        }
        Ok(iv)
    }
}

pub(crate) fn read(bytes: &[u8]) -> Result<Vec<Pool>, PoolError> {
    let mut r = R { b: bytes };
    if r.take(MAGIC.len()).ok() != Some(MAGIC) {
        return Err(bad("not an ip-pool snapshot"));
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(PoolError::InvalidSnapshot(format!(
            "unsupported version {version}"
        )));
    }
    let n = r.u32()?;
    let n = r.count(u64::from(n), 8)?;
    let mut pools = Vec::with_capacity(n);
    let mut names = BTreeSet::new();
    for _ in 0..n {
        let mut p = read_head(&mut r, &mut names)?;
        read_ranges(&mut r, &mut p)?;
        p.reserved = r.intervals()?;
        p.free = r.intervals()?;
        for (s, e) in p.free.iter() {
            if p.range_of(s).is_none_or(|(_, range)| range.end < e) || p.reserved.intersects(s, e) {
                return Err(bad("free space outside the ranges or reserved"));
            }
        }
        let nq = r.u32()?;
        let nq = r.count(u64::from(nq), 12)?;
        for _ in 0..nq {
            let tenant = r.str()?;
            let q = r.u64()?;
            let id = p.tenants.make(&tenant);
            p.tenants.set_quota(id, Some(q));
        }
        let nb = r.u64()?;
        let nb = r.count(nb, 34)?;
        for _ in 0..nb {
            read_binding(&mut r, &mut p)?;
        }
        check_whole(&p)?;
        pools.push(p);
    }
    if !r.b.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(pools)
}

/// A pool's name (unique, not empty), configuration and cursors.
fn read_head(r: &mut R<'_>, names: &mut BTreeSet<String>) -> Result<Pool, PoolError> {
    let name = r.str()?;
    if name.is_empty() || !names.insert(name.clone()) {
        return Err(bad("empty or repeated pool name"));
    }
    let strategy = match r.u8()? {
        0 => Strategy::Sequential,
        1 => Strategy::RoundRobin,
        2 => Strategy::Random,
        _ => return Err(bad("unknown strategy")),
    };
    let lease_ttl_ms = r.opt()?;
    let seed = r.u64()?;
    let mut p = Pool::new(
        &name,
        PoolConfig {
            strategy,
            lease_ttl_ms,
            seed,
        },
    );
    p.rng = r.u64()?;
    if p.rng == 0 {
        return Err(bad("random state is zero"));
    }
    p.generation = r.u64()?;
    p.cursor = r.u128()?;
    Ok(p)
}

/// The pool's ranges, in order and apart, and their total.
fn read_ranges(r: &mut R<'_>, p: &mut Pool) -> Result<(), PoolError> {
    let nr = r.u32()?;
    let nr = r.count(u64::from(nr), 36)?;
    let mut ranges = BTreeMap::new();
    let mut last: Option<u128> = None;
    for _ in 0..nr {
        let s = r.u128()?;
        let e = r.u128()?;
        let text = r.str()?;
        if s > e || last.is_some_and(|l| s <= l) || e - s == u128::MAX {
            return Err(bad("ranges out of order"));
        }
        last = Some(e);
        p.total = p
            .total
            .checked_add(e - s + 1)
            .ok_or_else(|| bad("ranges too large"))?;
        ranges.insert(s, Range { end: e, text });
    }
    p.ranges = ranges;
    Ok(())
}

/// One bound address: in a range, not free, not bound twice, its owner holding no other.
fn read_binding(r: &mut R<'_>, p: &mut Pool) -> Result<(), PoolError> {
    let k = r.u128()?;
    let tenant = r.str()?;
    let resource = r.str()?;
    let resource_type = match r.u8()? {
        0 => ResourceType::Vm,
        1 => ResourceType::Container,
        2 => ResourceType::Pod,
        3 => ResourceType::Custom(r.str()?),
        _ => return Err(bad("unknown resource type")),
    };
    let generation = r.u64()?;
    let expiry = r.opt()?;
    if p.range_of(k).is_none() || p.free.contains(k) || p.slots.contains(k) {
        return Err(bad("binding outside the ranges, free, or repeated"));
    }
    if generation == 0 || generation > p.generation {
        return Err(bad("binding generation out of range"));
    }
    let owner = Owner {
        tenant,
        resource,
        resource_type,
    };
    if p.find(&owner).is_some() {
        return Err(bad("owner holds two addresses"));
    }
    let tenant = p.tenants.make(&owner.tenant);
    let slot = Slot {
        ip: k,
        tenant,
        pos: 0,
        resource: crate::SmallStr::new(&owner.resource),
        hash: owner_hash(tenant, &owner.resource, &owner.resource_type),
        reserved: p.reserved.contains(k),
        resource_type: owner.resource_type,
        generation,
        expiry,
    };
    p.index(slot);
    Ok(())
}

/// Every address of every range is free, bound or reserved.
fn check_whole(p: &Pool) -> Result<(), PoolError> {
    let reserved_in_ranges: u128 = p
        .ranges
        .iter()
        .map(|(&s, range)| {
            (range.end - s + 1)
                - p.reserved
                    .gaps(s, range.end)
                    .iter()
                    .map(|(a, b)| b - a + 1)
                    .sum::<u128>()
        })
        .sum();
    let bound_reserved = p.slots.keys().filter(|&k| p.reserved.contains(k)).count() as u128;
    if p.free.count() + p.slots.len() as u128 + reserved_in_ranges - bound_reserved != p.total {
        return Err(bad("free, bound and reserved do not add up to the ranges"));
    }
    Ok(())
}
