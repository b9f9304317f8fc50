//! Tenant IP address management.
//!
//! Free space is a set of address intervals, so allocate and release cost O(log n) in the
//! number of fragments and memory grows with bindings and fragments, never with the size of a
//! range: a /64 behaves like a /24. Allocation is idempotent per owner (tenant, resource,
//! resource type), with per-tenant quotas, optional TTL leases, three picking strategies and a
//! versioned snapshot format.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

/// What `std`'s prelude would bring, for the `no_std` build.
mod prelude {
    pub use alloc::boxed::Box;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
}

pub mod addr;
mod byname;
mod intervals;
mod slots;
mod small;
mod snapshot;
mod tenants;

/// Heapsort by a less-than: a few hundred bytes per use in the component, where each of
/// `core`'s sorts brings several kilobytes; O(n log n), not stable (the keys sorted here are
/// distinct).
pub(crate) fn sort_by<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let sift = |v: &mut [T], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(&v[child], &v[child + 1]) {
            child += 1;
        }
        if !less(&v[root], &v[child]) {
            break;
        }
        v.swap(root, child);
        root = child;
    };
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(v, i, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use core::fmt;
use core::hash::{BuildHasherDefault, Hasher};
use core::net::IpAddr;
use hashbrown::HashMap;

use byname::ByName;
pub use intervals::Intervals;
use slots::Slots;
use small::SmallStr;
use tenants::Tenants;

/// A pool or tenant name, stored once per pool.
pub(crate) type Name = Arc<str>;

use addr::{ParsedRange, format_ip, from_key, parse_cidr, parse_ip, parse_start_end, to_key};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Vm,
    Container,
    Pod,
    Custom(String),
}

/// Who holds an address. The same owner always gets the same binding back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub tenant: String,
    pub resource: String,
    pub resource_type: ResourceType,
}

impl Owner {
    pub fn new(
        tenant: impl Into<String>,
        resource: impl Into<String>,
        resource_type: ResourceType,
    ) -> Self {
        Owner {
            tenant: tenant.into(),
            resource: resource.into(),
            resource_type,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The lowest free address.
    #[default]
    Sequential,
    /// The next free address after the last one handed out, wrapping: a released address is
    /// not handed out again until the cursor comes round.
    RoundRobin,
    /// The first free address at or after a random point (deterministic per pool seed).
    Random,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub strategy: Strategy,
    /// Lease length; `None` means bindings last until released.
    pub lease_ttl_ms: Option<u64>,
    /// Seed of the random strategy.
    pub seed: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            strategy: Strategy::Sequential,
            lease_ttl_ms: None,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub ip: IpAddr,
    pub pool: String,
    pub tenant: String,
    pub resource: String,
    pub resource_type: ResourceType,
    /// Increases with every allocation in the pool; a release must name the current one.
    pub generation: u64,
    /// Clock time (ms) when the lease ends, if the pool has leases.
    pub lease_expiry_ms: Option<u64>,
}

impl Binding {
    pub fn owner(&self) -> Owner {
        Owner::new(
            self.tenant.clone(),
            self.resource.clone(),
            self.resource_type.clone(),
        )
    }
}

/// A binding read in place: it borrows the pool's state, so returning one copies and
/// allocates nothing. [`BindingRef::to_binding`] keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingRef<'a> {
    pub ip: IpAddr,
    pub pool: &'a str,
    pub tenant: &'a str,
    pub resource: &'a str,
    pub resource_type: &'a ResourceType,
    pub generation: u64,
    pub lease_expiry_ms: Option<u64>,
}

impl BindingRef<'_> {
    pub fn to_binding(&self) -> Binding {
        Binding {
            ip: self.ip,
            pool: self.pool.to_string(),
            tenant: self.tenant.to_string(),
            resource: self.resource.to_string(),
            resource_type: self.resource_type.clone(),
            generation: self.generation,
            lease_expiry_ms: self.lease_expiry_ms,
        }
    }
}

/// Address counts are `u128`: an IPv6 range can hold up to 2^127 addresses here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    pub total: u128,
    pub allocated: u64,
    pub reserved: u128,
    pub available: u128,
    pub ranges: u32,
    /// Intervals the free space is split into.
    pub free_fragments: u64,
    pub tenants: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStats {
    pub tenant: String,
    pub allocated: u64,
    pub quota: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeInfo {
    pub text: String,
    pub first: IpAddr,
    pub last: IpAddr,
    pub size: u128,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    InvalidCidr(String),
    InvalidAddress(String),
    InvalidRange(String),
    InvalidInput(String),
    RangeOverlap {
        range: String,
        existing: String,
    },
    Exhausted {
        pool: String,
    },
    QuotaExceeded {
        tenant: String,
        limit: u64,
    },
    NotFound(String),
    /// The address is held by another owner.
    Conflict {
        ip: String,
        tenant: String,
        resource: String,
    },
    StaleGeneration {
        ip: String,
        current: u64,
        given: u64,
    },
    UnknownPool(String),
    PoolExists(String),
    OutOfRange(String),
    Reserved(String),
    InvalidSnapshot(String),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::InvalidCidr(s) => write!(f, "invalid CIDR {s:?}"),
            PoolError::InvalidAddress(s) => write!(f, "invalid address {s:?}"),
            PoolError::InvalidRange(s) => write!(f, "invalid range {s}"),
            PoolError::InvalidInput(s) => write!(f, "invalid input: {s}"),
            PoolError::RangeOverlap { range, existing } => {
                write!(f, "range {range} overlaps {existing}")
            }
            PoolError::Exhausted { pool } => write!(f, "pool {pool} is exhausted"),
            PoolError::QuotaExceeded { tenant, limit } => {
                write!(f, "tenant {tenant} is at its quota of {limit}")
            }
            PoolError::NotFound(s) => write!(f, "not found: {s}"),
            PoolError::Conflict {
                ip,
                tenant,
                resource,
            } => write!(f, "{ip} is held by {tenant}/{resource}"),
            PoolError::StaleGeneration { ip, current, given } => {
                write!(f, "stale generation {given} for {ip} (current {current})")
            }
            PoolError::UnknownPool(s) => write!(f, "unknown pool {s:?}"),
            PoolError::PoolExists(s) => write!(f, "pool {s:?} exists"),
            PoolError::OutOfRange(s) => write!(f, "{s} is in none of the pool's ranges"),
            PoolError::Reserved(s) => write!(f, "{s} is reserved"),
            PoolError::InvalidSnapshot(s) => write!(f, "invalid snapshot: {s}"),
        }
    }
}

impl core::error::Error for PoolError {}

pub type Result<T> = core::result::Result<T, PoolError>;

/// Time source for leases; injectable so tests can move time by hand.
pub trait Clock: Send {
    fn now_ms(&self) -> u64;
}

/// Wall-clock milliseconds since the Unix epoch.
#[cfg(feature = "std")]
pub struct SystemClock;

#[cfg(feature = "std")]
impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// FxHash: the keys are addresses and short names from a trusted caller, so a fast
/// non-cryptographic hash is the right trade.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Whole words, then the rest gathered a byte at a time: a names' last few bytes copied
        // into a word buffer cost a `memcpy` call each.
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.write_u64(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let n = rest
                .iter()
                .rev()
                .fold(0u64, |n, &b| (n << 8) | u64::from(b));
            self.write_u64(n);
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// The owner index's hash: the tenant by id (already resolved), then the resource.
#[inline]
fn owner_hash(tenant: u32, resource: &str, resource_type: &ResourceType) -> u64 {
    #[cfg(test)]
    if tests::COLLIDE.get() {
        return 7;
    }
    let mut h = FxHasher::default();
    h.write_u64(u64::from(tenant));
    h.write(resource.as_bytes());
    match resource_type {
        ResourceType::Vm => h.write_u64(1),
        ResourceType::Container => h.write_u64(2),
        ResourceType::Pod => h.write_u64(3),
        ResourceType::Custom(name) => {
            h.write_u64(4);
            h.write(name.as_bytes());
        }
    }
    h.finish()
}

#[derive(Debug, Clone)]
struct Slot {
    ip: u128,
    /// Id in the pool's `Tenants`.
    tenant: u32,
    /// Position in the tenant's list of bindings.
    pos: u32,
    resource: SmallStr,
    resource_type: ResourceType,
    generation: u64,
    expiry: Option<u64>,
    /// `owner_hash` of the owner, kept so a release does not hash the names again.
    hash: u64,
    /// The address was reserved while bound: releasing it does not free it.
    reserved: bool,
}

#[derive(Debug, Clone)]
struct Range {
    end: u128,
    text: String,
}

#[derive(Debug, Clone)]
struct Pool {
    name: Name,
    config: PoolConfig,
    ranges: BTreeMap<u128, Range>,
    reserved: Intervals,
    free: Intervals,
    slots: Slots,
    /// Owner hash -> slot id. An owner whose hash is already taken by another owner goes to
    /// `owner_overflow`, so lookups stay exact whatever the hash does. A table of (hash, id)
    /// pairs: the hash is its own, and a vacant entry keeps the slot its search found.
    owners: hashbrown::HashTable<(u64, u32)>,
    owner_overflow: FxMap<Owner, u32>,
    tenants: Tenants,
    leases: BTreeSet<(u64, u128)>,
    cursor: u128,
    rng: u64,
    generation: u64,
    total: u128,
}

impl Pool {
    fn new(name: &str, config: PoolConfig) -> Self {
        let rng = config.seed | 1;
        Pool {
            name: Name::from(name),
            config,
            ranges: BTreeMap::new(),
            reserved: Intervals::new(),
            free: Intervals::new(),
            slots: Slots::default(),
            owners: hashbrown::HashTable::new(),
            owner_overflow: FxMap::default(),
            tenants: Tenants::default(),
            leases: BTreeSet::new(),
            cursor: 0,
            rng,
            generation: 0,
            total: 0,
        }
    }

    fn range_of(&self, k: u128) -> Option<(u128, &Range)> {
        self.ranges
            .range(..=k)
            .next_back()
            .filter(|(_, r)| r.end >= k)
            .map(|(&s, r)| (s, r))
    }

    fn overlapping_range(&self, s: u128, e: u128) -> Option<&Range> {
        if let Some((_, r)) = self.range_of(s) {
            return Some(r);
        }
        self.ranges.range(s..=e).next().map(|(_, r)| r)
    }

    fn add_range(
        &mut self,
        p: ParsedRange,
        text: String,
        reserve_edges: bool,
    ) -> Result<RangeInfo> {
        if let Some(existing) = self.overlapping_range(p.start, p.end) {
            return Err(PoolError::RangeOverlap {
                range: text,
                existing: existing.text.clone(),
            });
        }
        self.ranges.insert(
            p.start,
            Range {
                end: p.end,
                text: text.clone(),
            },
        );
        self.total += p.end - p.start + 1;
        // Free = the range minus what is reserved in it.
        for (s, e) in self.reserved.gaps(p.start, p.end) {
            self.free.insert(s, e);
        }
        if reserve_edges && p.v4_cidr_prefix.is_some_and(|len| len <= 30) {
            self.reserve(p.start, p.start);
            self.reserve(p.end, p.end);
        }
        Ok(RangeInfo {
            text,
            first: from_key(p.start),
            last: from_key(p.end),
            size: p.end - p.start + 1,
        })
    }

    /// Reserve `[s, e]`: stored as intervals; free addresses in it stop being free. Addresses
    /// already bound stay bound, and are not freed again when released.
    fn reserve(&mut self, s: u128, e: u128) {
        for (gs, ge) in self.reserved.gaps(s, e) {
            self.reserved.insert(gs, ge);
        }
        self.free.remove_range(s, e);
        for slot in self.slots.in_range_mut(s, e) {
            slot.reserved = true;
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick(&mut self) -> Option<u128> {
        match self.config.strategy {
            Strategy::Sequential => self.free.first(),
            Strategy::RoundRobin => self
                .free
                .next_at_or_after(self.cursor)
                .or_else(|| self.free.first()),
            Strategy::Random => {
                if self.ranges.is_empty() {
                    return None;
                }
                let n = self.ranges.len();
                let idx = (self.next_random() % n as u64) as usize;
                let (&start, range) = self.ranges.iter().nth(idx)?;
                let span = range.end - start;
                let r = (u128::from(self.next_random()) << 64) | u128::from(self.next_random());
                let offset = if span == u128::MAX { r } else { r % (span + 1) };
                self.free
                    .next_at_or_after(start + offset)
                    .or_else(|| self.free.first())
            }
        }
    }

    #[inline]
    fn binding(&self, id: u32) -> BindingRef<'_> {
        let slot = self.slots.at(id);
        BindingRef {
            ip: from_key(slot.ip),
            pool: &self.name,
            tenant: &self.tenants.at(slot.tenant).name,
            resource: slot.resource.as_str(),
            resource_type: &slot.resource_type,
            generation: slot.generation,
            lease_expiry_ms: slot.expiry,
        }
    }

    fn slot_owner(&self, slot: &Slot) -> Owner {
        Owner::new(
            &*self.tenants.at(slot.tenant).name,
            slot.resource.as_str(),
            slot.resource_type.clone(),
        )
    }

    // The allocate-release pair's own functions (`find_hashed`, `bind`, `index`, `unbind`,
    // `allocate`) are forced inline natively, where the optimiser otherwise keeps them apart
    // and each call saves and restores registers (26 instructions of about 1,200 a pair,
    // callgrind 2026-12-07); in the size-tuned WebAssembly build they are left to it.
    /// The slot `owner` holds: its tenant's id and its `owner_hash`, and the slot id.
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    #[cfg_attr(target_arch = "wasm32", inline)]
    fn find_hashed(&self, owner: &Owner) -> Option<(u32, u64, Option<u32>)> {
        let tenant = self.tenants.id(&owner.tenant)?;
        let hash = owner_hash(tenant, &owner.resource, &owner.resource_type);
        if let Some(&(_, id)) = self.owners.find(hash, |e| e.0 == hash) {
            let s = self.slots.at(id);
            if s.tenant == tenant
                && small::same(s.resource.as_bytes(), owner.resource.as_bytes())
                && s.resource_type == owner.resource_type
            {
                return Some((tenant, hash, Some(id)));
            }
        }
        if self.owner_overflow.is_empty() {
            return Some((tenant, hash, None));
        }
        Some((tenant, hash, self.owner_overflow.get(owner).copied()))
    }

    fn find(&self, owner: &Owner) -> Option<u32> {
        self.find_hashed(owner).and_then(|(_, _, id)| id)
    }

    /// Bind the free (or just taken) address `k` to `owner`, which holds nothing yet.
    /// `found` is what `find_hashed` gave for the owner.
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    #[cfg_attr(target_arch = "wasm32", inline)]
    fn bind(
        &mut self,
        k: u128,
        owner: &Owner,
        found: Option<(u32, u64)>,
        now: u64,
    ) -> Result<BindingRef<'_>> {
        let (tenant, hash) = found.unwrap_or_else(|| {
            let t = self.tenants.make(&owner.tenant);
            (t, owner_hash(t, &owner.resource, &owner.resource_type))
        });
        let t = self.tenants.at(tenant);
        if let Some(limit) = t.quota
            && t.ips.len() as u64 >= limit
        {
            return Err(PoolError::QuotaExceeded {
                tenant: owner.tenant.clone(),
                limit,
            });
        }
        self.free.remove(k);
        self.generation += 1;
        let slot = Slot {
            ip: k,
            tenant,
            pos: 0,
            resource: SmallStr::new(&owner.resource),
            resource_type: owner.resource_type.clone(),
            generation: self.generation,
            expiry: self.config.lease_ttl_ms.map(|ttl| now.saturating_add(ttl)),
            hash,
            reserved: false,
        };
        let id = self.index(slot);
        Ok(self.binding(id))
    }

    /// Record `slot` in every index; its address and owner must be unbound.
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    #[cfg_attr(target_arch = "wasm32", inline)]
    fn index(&mut self, slot: Slot) -> u32 {
        let (k, hash, tenant, expiry) = (slot.ip, slot.hash, slot.tenant, slot.expiry);
        let id = self.slots.insert(slot);
        match self.owners.entry(hash, |e| e.0 == hash, |e| e.0) {
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert((hash, id));
            }
            hashbrown::hash_table::Entry::Occupied(_) => {
                let owner = self.slot_owner(self.slots.at(id));
                self.owner_overflow.insert(owner, id);
            }
        }
        if let Some(at) = expiry {
            self.leases.insert((at, k));
        }
        self.slots.at_mut(id).pos = self.tenants.push(tenant, id);
        id
    }

    /// Free `k` if it is bound with `generation` (any generation when `None`). The returned
    /// binding reads the freed slot, which stays intact until the next binding.
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    #[cfg_attr(target_arch = "wasm32", inline)]
    fn unbind(&mut self, k: u128, generation: Option<u64>) -> Result<BindingRef<'_>> {
        let stale = |slot: &Slot| {
            generation
                .filter(|&g| g != slot.generation)
                .map(|g| PoolError::StaleGeneration {
                    ip: format_ip(from_key(k)),
                    current: slot.generation,
                    given: g,
                })
        };
        let id = self
            .slots
            .remove_if(k, stale)
            .ok_or_else(|| PoolError::NotFound(format_ip(from_key(k))))??;
        let slot = self.slots.at(id);
        let (hash, tenant, pos, expiry, reserved) =
            (slot.hash, slot.tenant, slot.pos, slot.expiry, slot.reserved);
        match self.owners.find_entry(hash, |e| e.0 == hash) {
            Ok(e) if e.get().1 == id => {
                e.remove();
            }
            _ => {
                let owner = self.slot_owner(slot);
                self.owner_overflow.remove(&owner);
            }
        }
        if let Some(at) = expiry {
            self.leases.remove(&(at, k));
        }
        if let Some(moved) = self.tenants.remove(tenant, pos) {
            self.slots.at_mut(moved).pos = pos;
        }
        if !reserved {
            self.free.insert(k, k);
        }
        Ok(self.binding(id))
    }

    /// A repeated allocate renews the lease.
    fn existing(&mut self, id: u32, now: u64) -> BindingRef<'_> {
        if let Some(ttl) = self.config.lease_ttl_ms {
            self.set_expiry(id, now.saturating_add(ttl));
        }
        self.binding(id)
    }

    fn set_expiry(&mut self, id: u32, at: u64) {
        let slot = self.slots.at_mut(id);
        let k = slot.ip;
        if let Some(old) = slot.expiry.replace(at) {
            self.leases.remove(&(old, k));
        }
        self.leases.insert((at, k));
    }

    /// The owner's binding: the one it holds, or a new one.
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    fn allocate(&mut self, owner: &Owner, now: u64) -> Result<BindingRef<'_>> {
        let found = self.find_hashed(owner);
        if let Some((_, _, Some(id))) = found {
            return Ok(self.existing(id, now));
        }
        let k = self.pick().ok_or_else(|| PoolError::Exhausted {
            pool: self.name.to_string(),
        })?;
        self.cursor = k.wrapping_add(1);
        self.bind(k, owner, found.map(|(t, h, _)| (t, h)), now)
    }

    fn allocate_specific(&mut self, k: u128, owner: &Owner, now: u64) -> Result<BindingRef<'_>> {
        let found = self.find_hashed(owner);
        let held = found.and_then(|(_, _, id)| id);
        if let Some(id) = held
            && self.slots.at(id).ip == k
        {
            return Ok(self.existing(id, now));
        }
        if let Some(slot) = self.slots.get(k) {
            return Err(PoolError::Conflict {
                ip: format_ip(from_key(k)),
                tenant: self.tenants.at(slot.tenant).name.to_string(),
                resource: slot.resource.as_str().to_string(),
            });
        }
        if let Some(held) = held {
            return Err(PoolError::Conflict {
                ip: format_ip(from_key(self.slots.at(held).ip)),
                tenant: owner.tenant.clone(),
                resource: owner.resource.clone(),
            });
        }
        if self.range_of(k).is_none() {
            return Err(PoolError::OutOfRange(format_ip(from_key(k))));
        }
        if self.reserved.contains(k) {
            return Err(PoolError::Reserved(format_ip(from_key(k))));
        }
        self.bind(k, owner, found.map(|(t, h, _)| (t, h)), now)
    }

    /// The slot of `k`, if it is bound with `generation`.
    fn check_generation(&self, k: u128, generation: u64) -> Result<u32> {
        let id = self
            .slots
            .id(k)
            .ok_or_else(|| PoolError::NotFound(format_ip(from_key(k))))?;
        let current = self.slots.at(id).generation;
        if current != generation {
            return Err(PoolError::StaleGeneration {
                ip: format_ip(from_key(k)),
                current,
                given: generation,
            });
        }
        Ok(id)
    }

    fn reclaim_expired(&mut self, now: u64) -> u64 {
        let mut n = 0;
        while let Some(&(at, k)) = self.leases.first() {
            if at > now {
                break;
            }
            self.leases.pop_first();
            if self.slots.get(k).is_some_and(|s| s.expiry == Some(at)) {
                let _ = self.unbind(k, None);
                n += 1;
            }
        }
        n
    }

    fn stats(&self) -> PoolStats {
        let allocated = self.slots.len() as u64;
        let available = self.free.count();
        PoolStats {
            total: self.total,
            allocated,
            reserved: self.total - available - u128::from(allocated),
            available,
            ranges: self.ranges.len() as u32,
            free_fragments: self.free.fragments() as u64,
            tenants: self.tenants.iter().filter(|t| !t.ips.is_empty()).count() as u32,
        }
    }
}

#[cold]
fn unknown_pool(name: &str) -> PoolError {
    PoolError::UnknownPool(name.to_string())
}

/// The pool after its upkeep, if any is due, and the time that upkeep read (0 if none).
#[inline]
fn ready<'a>(pool: &'a mut Pool, clock: &dyn Clock) -> (&'a mut Pool, u64) {
    if pool.config.lease_ttl_ms.is_some() || !pool.leases.is_empty() || pool.tenants.sweep_due() {
        let now = upkeep(pool, clock);
        return (pool, now);
    }
    (pool, 0)
}

/// Reclaim expired leases (reading the clock only for pools with leases) and sweep idle
/// tenants; returns the time, 0 when unread.
#[inline(never)]
fn upkeep(pool: &mut Pool, clock: &dyn Clock) -> u64 {
    let mut now = 0;
    if pool.config.lease_ttl_ms.is_some() || !pool.leases.is_empty() {
        now = clock.now_ms();
        pool.reclaim_expired(now);
    }
    pool.tenants.sweep_if_due();
    now
}

fn check_owner(owner: &Owner) -> Result<()> {
    if owner.tenant.is_empty() {
        return Err(PoolError::InvalidInput("empty tenant".to_string()));
    }
    if owner.resource.is_empty() {
        return Err(PoolError::InvalidInput("empty resource".to_string()));
    }
    Ok(())
}

/// All pools of one authority, by name.
pub struct IpPools {
    pools: ByName,
    clock: Box<dyn Clock>,
}

#[cfg(feature = "std")]
impl Default for IpPools {
    fn default() -> Self {
        Self::new()
    }
}

impl IpPools {
    #[cfg(feature = "std")]
    pub fn new() -> Self {
        Self::with_clock(Box::new(SystemClock))
    }

    pub fn with_clock(clock: Box<dyn Clock>) -> Self {
        IpPools {
            pools: ByName::default(),
            clock,
        }
    }

    /// The pool and the clock's time, after reclaiming expired leases. Pools without leases
    /// never read the clock (the time is then 0 and unused).
    #[inline]
    fn pool(&mut self, name: &str) -> Result<(&mut Pool, u64)> {
        match self.pools.get_mut(name) {
            Some(pool) => Ok(ready(pool, &*self.clock)),
            None => Err(unknown_pool(name)),
        }
    }

    /// [`IpPools::pool`] by handle.
    #[inline]
    fn pool_by_handle(&mut self, handle: u64) -> Result<(&mut Pool, u64)> {
        match self.pools.by_handle_mut(handle) {
            Some(pool) => Ok(ready(pool, &*self.clock)),
            None => Err(unknown_pool(&format!("handle {handle}"))),
        }
    }

    pub fn create_pool(&mut self, name: &str, config: PoolConfig) -> Result<()> {
        if name.is_empty() {
            return Err(PoolError::InvalidInput("empty pool name".to_string()));
        }
        if !self.pools.insert(Pool::new(name, config)) {
            return Err(PoolError::PoolExists(name.to_string()));
        }
        Ok(())
    }

    /// Create the pool if it does not exist (with `config`); leave it alone if it does.
    pub fn ensure_pool(&mut self, name: &str, config: PoolConfig) -> Result<()> {
        match self.create_pool(name, config) {
            Err(PoolError::PoolExists(_)) => Ok(()),
            other => other,
        }
    }

    pub fn delete_pool(&mut self, name: &str) -> Result<()> {
        self.pools
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| unknown_pool(name))
    }

    pub fn pool_names(&self) -> Vec<String> {
        self.pools.iter().map(|p| p.name.to_string()).collect()
    }

    /// Add a CIDR range. For IPv4 CIDRs of /30 and wider the network and broadcast addresses
    /// are reserved unless `reserve_network_broadcast` is false (/31 and /32 reserve nothing).
    pub fn add_cidr(
        &mut self,
        pool: &str,
        cidr: &str,
        reserve_network_broadcast: bool,
    ) -> Result<RangeInfo> {
        let parsed = parse_cidr(cidr)?;
        let (p, _) = self.pool(pool)?;
        p.add_range(parsed, cidr.trim().to_string(), reserve_network_broadcast)
    }

    /// Add an inclusive start-end range (nothing reserved).
    pub fn add_range(&mut self, pool: &str, start: &str, end: &str) -> Result<RangeInfo> {
        let parsed = parse_start_end(start, end)?;
        let (p, _) = self.pool(pool)?;
        p.add_range(parsed, format!("{}-{}", start.trim(), end.trim()), false)
    }

    /// Reserve a CIDR or a `start-end` range (it may reach outside the pool's ranges).
    pub fn exclude(&mut self, pool: &str, range: &str) -> Result<()> {
        let parsed = match range.split_once('-') {
            Some((s, e)) if !range.contains('/') => parse_start_end(s, e)?,
            _ => parse_cidr(range)?,
        };
        let (p, _) = self.pool(pool)?;
        p.reserve(parsed.start, parsed.end);
        Ok(())
    }

    /// The owner's binding: the one it has, or a new one. Idempotent per owner.
    pub fn allocate(&mut self, pool: &str, owner: &Owner) -> Result<BindingRef<'_>> {
        check_owner(owner)?;
        let (p, now) = self.pool(pool)?;
        p.allocate(owner, now)
    }

    pub fn allocate_specific(
        &mut self,
        pool: &str,
        ip: &str,
        owner: &Owner,
    ) -> Result<BindingRef<'_>> {
        check_owner(owner)?;
        let k = to_key(parse_ip(ip)?);
        let (p, now) = self.pool(pool)?;
        p.allocate_specific(k, owner, now)
    }

    /// Release `ip` if `generation` is the binding's current one.
    pub fn release(&mut self, pool: &str, ip: &str, generation: u64) -> Result<BindingRef<'_>> {
        self.release_addr(pool, parse_ip(ip)?, generation)
    }

    /// [`IpPools::release`] for a parsed address.
    pub fn release_addr(
        &mut self,
        pool: &str,
        ip: IpAddr,
        generation: u64,
    ) -> Result<BindingRef<'_>> {
        let k = to_key(ip);
        let (p, _) = self.pool(pool)?;
        p.unbind(k, Some(generation))
    }

    /// The handle of the pool named `name`, for [`IpPools::allocate_in`] and
    /// [`IpPools::release_in`], which then skip the name. A handle names the same pool until
    /// that pool is deleted or a snapshot restored, and no other pool after that: calls with
    /// it then fail with `UnknownPool`.
    pub fn pool_handle(&self, name: &str) -> Result<u64> {
        self.pools.handle(name).ok_or_else(|| unknown_pool(name))
    }

    /// [`IpPools::allocate`] in the pool with `handle`.
    pub fn allocate_in(&mut self, handle: u64, owner: &Owner) -> Result<BindingRef<'_>> {
        check_owner(owner)?;
        let (p, now) = self.pool_by_handle(handle)?;
        p.allocate(owner, now)
    }

    /// [`IpPools::release_addr`] in the pool with `handle`.
    pub fn release_in(
        &mut self,
        handle: u64,
        ip: IpAddr,
        generation: u64,
    ) -> Result<BindingRef<'_>> {
        let k = to_key(ip);
        let (p, _) = self.pool_by_handle(handle)?;
        p.unbind(k, Some(generation))
    }

    pub fn release_owner(&mut self, pool: &str, owner: &Owner) -> Result<BindingRef<'_>> {
        let (p, _) = self.pool(pool)?;
        let id = p
            .find(owner)
            .ok_or_else(|| PoolError::NotFound(format!("{}/{}", owner.tenant, owner.resource)))?;
        p.unbind(p.slots.at(id).ip, None)
    }

    /// Release every binding of `tenant`; returns how many.
    pub fn release_tenant(&mut self, pool: &str, tenant: &str) -> Result<u64> {
        let (p, _) = self.pool(pool)?;
        let ips: Vec<u128> = p
            .tenants
            .get(tenant)
            .map(|t| t.ips.iter().map(|&id| p.slots.at(id).ip).collect())
            .unwrap_or_default();
        for &k in &ips {
            let _ = p.unbind(k, None);
        }
        Ok(ips.len() as u64)
    }

    /// Extend a lease by the pool's TTL from now.
    pub fn renew(&mut self, pool: &str, ip: &str, generation: u64) -> Result<BindingRef<'_>> {
        let k = to_key(parse_ip(ip)?);
        let (p, now) = self.pool(pool)?;
        let id = p.check_generation(k, generation)?;
        if let Some(ttl) = p.config.lease_ttl_ms {
            p.set_expiry(id, now.saturating_add(ttl));
        }
        Ok(p.binding(id))
    }

    /// Release expired leases now; returns how many. (Every pool call also does this.)
    pub fn reclaim_expired(&mut self, pool: &str) -> Result<u64> {
        let now = self.clock.now_ms();
        let p = self.pools.get_mut(pool).ok_or_else(|| unknown_pool(pool))?;
        Ok(p.reclaim_expired(now))
    }

    /// `None` removes the quota.
    pub fn set_quota(&mut self, pool: &str, tenant: &str, limit: Option<u64>) -> Result<()> {
        let (p, _) = self.pool(pool)?;
        let id = p.tenants.make(tenant);
        p.tenants.set_quota(id, limit);
        p.tenants.drop_if_idle(id);
        Ok(())
    }

    pub fn get_binding(&mut self, pool: &str, ip: &str) -> Result<Option<BindingRef<'_>>> {
        let k = to_key(parse_ip(ip)?);
        let (p, _) = self.pool(pool)?;
        Ok(p.slots.id(k).map(|id| p.binding(id)))
    }

    /// The binding of `owner`, if any.
    pub fn find_owner(&mut self, pool: &str, owner: &Owner) -> Result<Option<BindingRef<'_>>> {
        let (p, _) = self.pool(pool)?;
        Ok(p.find(owner).map(|id| p.binding(id)))
    }

    /// The tenant's bindings, by address; cost is proportional to their number.
    pub fn list_by_tenant(&mut self, pool: &str, tenant: &str) -> Result<Vec<Binding>> {
        let (p, _) = self.pool(pool)?;
        let Some(t) = p.tenants.get(tenant) else {
            return Ok(Vec::new());
        };
        let mut ids = t.ips.clone();
        sort_by(&mut ids, |&a, &b| p.slots.at(a).ip < p.slots.at(b).ip);
        Ok(ids
            .into_iter()
            .map(|id| p.binding(id).to_binding())
            .collect())
    }

    pub fn stats(&mut self, pool: &str) -> Result<PoolStats> {
        let (p, _) = self.pool(pool)?;
        Ok(p.stats())
    }

    pub fn tenant_stats(&mut self, pool: &str, tenant: &str) -> Result<TenantStats> {
        let (p, _) = self.pool(pool)?;
        let t = p.tenants.get(tenant);
        Ok(TenantStats {
            tenant: tenant.to_string(),
            allocated: t.map(|t| t.ips.len() as u64).unwrap_or(0),
            quota: t.and_then(|t| t.quota),
        })
    }

    pub fn ranges(&mut self, pool: &str) -> Result<Vec<RangeInfo>> {
        let (p, _) = self.pool(pool)?;
        Ok(p.ranges
            .iter()
            .map(|(&s, r)| RangeInfo {
                text: r.text.clone(),
                first: from_key(s),
                last: from_key(r.end),
                size: r.end - s + 1,
            })
            .collect())
    }

    /// The free intervals (for checks and diagnostics), as inclusive address pairs.
    pub fn free_intervals(&mut self, pool: &str) -> Result<Vec<(IpAddr, IpAddr)>> {
        let (p, _) = self.pool(pool)?;
        Ok(p.free
            .iter()
            .map(|(s, e)| (from_key(s), from_key(e)))
            .collect())
    }

    /// The reserved intervals, as inclusive address pairs.
    pub fn reserved_intervals(&mut self, pool: &str) -> Result<Vec<(IpAddr, IpAddr)>> {
        let (p, _) = self.pool(pool)?;
        Ok(p.reserved
            .iter()
            .map(|(s, e)| (from_key(s), from_key(e)))
            .collect())
    }

    /// The whole state in a versioned byte format.
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::write(self.pools.iter())
    }

    /// Replace the whole state with a snapshot's. On error nothing changes.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let pools = snapshot::read(bytes)?;
        // Inserted one by one (the names are distinct): sorting would bring a sort of its own.
        self.pools.clear();
        for p in pools {
            self.pools.insert(p);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn sort_by_sorts_like_sort() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in (0..200).chain([1000, 4097]) {
            let mut v: Vec<u64> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % 50
                })
                .collect();
            let mut want = v.clone();
            want.sort();
            sort_by(&mut v, |a, b| a < b);
            assert_eq!(v, want);
        }
    }

    std::thread_local! {
        /// Every owner hashes alike: the overflow index must keep lookups exact.
        pub(crate) static COLLIDE: Cell<bool> = const { Cell::new(false) };
    }

    #[test]
    fn owners_whose_hashes_collide_stay_distinct() {
        COLLIDE.set(true);
        let mut p = IpPools::new();
        p.create_pool("p", PoolConfig::default()).unwrap();
        p.add_cidr("p", "10.1.0.0/24", true).unwrap();
        let o = |i: u32| Owner::new("t", format!("r{i}"), ResourceType::Vm);
        let ips: Vec<IpAddr> = (0..10)
            .map(|i| p.allocate("p", &o(i)).unwrap().ip)
            .collect();
        let distinct: BTreeSet<_> = ips.iter().collect();
        assert_eq!(distinct.len(), 10);
        for i in 0..10 {
            assert_eq!(p.allocate("p", &o(i)).unwrap().ip, ips[i as usize]);
        }
        // Release the owner in the primary index, then one in the overflow.
        assert_eq!(p.release_owner("p", &o(0)).unwrap().ip, ips[0]);
        assert_eq!(p.release_owner("p", &o(5)).unwrap().ip, ips[5]);
        assert!(p.find_owner("p", &o(0)).unwrap().is_none());
        assert_eq!(p.find_owner("p", &o(7)).unwrap().unwrap().ip, ips[7]);
        let again = p.allocate("p", &o(5)).unwrap().to_binding();
        assert_eq!(p.allocate("p", &o(5)).unwrap().to_binding(), again);
        let restored = {
            let mut q = IpPools::new();
            q.restore(&p.snapshot()).unwrap();
            q
        };
        for mut pools in [p, restored] {
            for i in 1..10 {
                pools.release_owner("p", &o(i)).unwrap();
            }
            assert_eq!(pools.stats("p").unwrap().allocated, 0);
            assert!(matches!(
                pools.release_owner("p", &o(3)),
                Err(PoolError::NotFound(_))
            ));
        }
        COLLIDE.set(false);
    }
}
