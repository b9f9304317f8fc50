//! Tenant IP address management.
//!
//! Free space is a set of address intervals, so allocate and release cost O(log n) in the
//! number of fragments and memory grows with bindings and fragments, never with the size of a
//! range: a /64 behaves like a /24. Allocation is idempotent per owner (tenant, resource,
//! resource type), with per-tenant quotas, optional TTL leases, three picking strategies and a
//! versioned snapshot format.

pub mod addr;
mod intervals;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

pub use intervals::Intervals;

use addr::{ParsedRange, from_key, parse_cidr, parse_ip, parse_start_end, to_key};

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

impl std::error::Error for PoolError {}

pub type Result<T> = std::result::Result<T, PoolError>;

/// Time source for leases; injectable so tests can move time by hand.
pub trait Clock: Send {
    fn now_ms(&self) -> u64;
}

/// Wall-clock milliseconds since the Unix epoch.
pub struct SystemClock;

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
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;
type FxSet<K> = HashSet<K, FxBuild>;

#[derive(Debug, Clone)]
struct Slot {
    owner: Owner,
    generation: u64,
    expiry: Option<u64>,
}

#[derive(Debug, Clone, Default)]
struct Tenant {
    ips: FxSet<u128>,
    quota: Option<u64>,
}

#[derive(Debug, Clone)]
struct Range {
    end: u128,
    text: String,
}

#[derive(Debug, Clone)]
struct Pool {
    name: String,
    config: PoolConfig,
    ranges: BTreeMap<u128, Range>,
    reserved: Intervals,
    free: Intervals,
    slots: FxMap<u128, Slot>,
    owners: FxMap<Owner, u128>,
    tenants: FxMap<String, Tenant>,
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
            name: name.to_string(),
            config,
            ranges: BTreeMap::new(),
            reserved: Intervals::new(),
            free: Intervals::new(),
            slots: FxMap::default(),
            owners: FxMap::default(),
            tenants: FxMap::default(),
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

    fn binding(&self, k: u128, slot: &Slot) -> Binding {
        Binding {
            ip: from_key(k),
            pool: self.name.clone(),
            tenant: slot.owner.tenant.clone(),
            resource: slot.owner.resource.clone(),
            resource_type: slot.owner.resource_type.clone(),
            generation: slot.generation,
            lease_expiry_ms: slot.expiry,
        }
    }

    fn check_quota(&self, tenant: &str) -> Result<()> {
        if let Some(t) = self.tenants.get(tenant)
            && let Some(limit) = t.quota
            && t.ips.len() as u64 >= limit
        {
            return Err(PoolError::QuotaExceeded {
                tenant: tenant.to_string(),
                limit,
            });
        }
        Ok(())
    }

    fn bind(&mut self, k: u128, owner: &Owner, now: u64) -> Binding {
        self.generation += 1;
        let expiry = self.config.lease_ttl_ms.map(|ttl| now.saturating_add(ttl));
        if let Some(at) = expiry {
            self.leases.insert((at, k));
        }
        let slot = Slot {
            owner: owner.clone(),
            generation: self.generation,
            expiry,
        };
        let b = self.binding(k, &slot);
        self.slots.insert(k, slot);
        self.owners.insert(owner.clone(), k);
        match self.tenants.get_mut(&owner.tenant) {
            Some(t) => {
                t.ips.insert(k);
            }
            None => {
                let mut t = Tenant::default();
                t.ips.insert(k);
                self.tenants.insert(owner.tenant.clone(), t);
            }
        }
        b
    }

    fn unbind(&mut self, k: u128) -> Option<Binding> {
        let slot = self.slots.remove(&k)?;
        let b = self.binding(k, &slot);
        self.owners.remove(&slot.owner);
        if let Some(at) = slot.expiry {
            self.leases.remove(&(at, k));
        }
        if let Some(t) = self.tenants.get_mut(&slot.owner.tenant) {
            t.ips.remove(&k);
            if t.ips.is_empty() && t.quota.is_none() {
                self.tenants.remove(&slot.owner.tenant);
            }
        }
        if !self.reserved.contains(k) {
            self.free.insert(k, k);
        }
        Some(b)
    }

    fn existing(&mut self, owner: &Owner, now: u64) -> Option<Binding> {
        let &k = self.owners.get(owner)?;
        // A repeated allocate renews the lease.
        if let Some(ttl) = self.config.lease_ttl_ms {
            self.set_expiry(k, now.saturating_add(ttl));
        }
        Some(self.binding(k, &self.slots[&k]))
    }

    fn set_expiry(&mut self, k: u128, at: u64) {
        if let Some(slot) = self.slots.get_mut(&k) {
            if let Some(old) = slot.expiry.replace(at) {
                self.leases.remove(&(old, k));
            }
            self.leases.insert((at, k));
        }
    }

    fn allocate(&mut self, owner: &Owner, now: u64) -> Result<Binding> {
        if let Some(b) = self.existing(owner, now) {
            return Ok(b);
        }
        self.check_quota(&owner.tenant)?;
        let k = self.pick().ok_or_else(|| PoolError::Exhausted {
            pool: self.name.clone(),
        })?;
        self.free.remove(k);
        self.cursor = k.wrapping_add(1);
        Ok(self.bind(k, owner, now))
    }

    fn allocate_specific(&mut self, k: u128, owner: &Owner, now: u64) -> Result<Binding> {
        let text = from_key(k).to_string();
        if let Some(slot) = self.slots.get(&k) {
            if slot.owner == *owner {
                return Ok(self.existing(owner, now).expect("owner indexed"));
            }
            return Err(PoolError::Conflict {
                ip: text,
                tenant: slot.owner.tenant.clone(),
                resource: slot.owner.resource.clone(),
            });
        }
        if let Some(&held) = self.owners.get(owner) {
            return Err(PoolError::Conflict {
                ip: from_key(held).to_string(),
                tenant: owner.tenant.clone(),
                resource: owner.resource.clone(),
            });
        }
        if self.range_of(k).is_none() {
            return Err(PoolError::OutOfRange(text));
        }
        if self.reserved.contains(k) {
            return Err(PoolError::Reserved(text));
        }
        self.check_quota(&owner.tenant)?;
        self.free.remove(k);
        Ok(self.bind(k, owner, now))
    }

    /// `ip` is bound and `generation` is its binding's current one.
    fn check_generation(&self, k: u128, ip: &str, generation: u64) -> Result<()> {
        let slot = self
            .slots
            .get(&k)
            .ok_or_else(|| PoolError::NotFound(ip.to_string()))?;
        if slot.generation != generation {
            return Err(PoolError::StaleGeneration {
                ip: ip.to_string(),
                current: slot.generation,
                given: generation,
            });
        }
        Ok(())
    }

    fn reclaim_expired(&mut self, now: u64) -> u64 {
        let mut n = 0;
        while let Some(&(at, k)) = self.leases.first() {
            if at > now {
                break;
            }
            self.leases.pop_first();
            if self.slots.get(&k).is_some_and(|s| s.expiry == Some(at)) {
                self.unbind(k);
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
            tenants: self.tenants.values().filter(|t| !t.ips.is_empty()).count() as u32,
        }
    }
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
    pools: BTreeMap<String, Pool>,
    clock: Box<dyn Clock>,
}

impl Default for IpPools {
    fn default() -> Self {
        Self::new()
    }
}

impl IpPools {
    pub fn new() -> Self {
        Self::with_clock(Box::new(SystemClock))
    }

    pub fn with_clock(clock: Box<dyn Clock>) -> Self {
        IpPools {
            pools: BTreeMap::new(),
            clock,
        }
    }

    fn pool(&mut self, name: &str) -> Result<(&mut Pool, u64)> {
        let now = self.clock.now_ms();
        let pool = self
            .pools
            .get_mut(name)
            .ok_or_else(|| PoolError::UnknownPool(name.to_string()))?;
        pool.reclaim_expired(now);
        Ok((pool, now))
    }

    pub fn create_pool(&mut self, name: &str, config: PoolConfig) -> Result<()> {
        if name.is_empty() {
            return Err(PoolError::InvalidInput("empty pool name".to_string()));
        }
        if self.pools.contains_key(name) {
            return Err(PoolError::PoolExists(name.to_string()));
        }
        self.pools.insert(name.to_string(), Pool::new(name, config));
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
            .ok_or_else(|| PoolError::UnknownPool(name.to_string()))
    }

    pub fn pool_names(&self) -> Vec<String> {
        self.pools.keys().cloned().collect()
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

    pub fn allocate(&mut self, pool: &str, owner: &Owner) -> Result<Binding> {
        check_owner(owner)?;
        let (p, now) = self.pool(pool)?;
        p.allocate(owner, now)
    }

    pub fn allocate_specific(&mut self, pool: &str, ip: &str, owner: &Owner) -> Result<Binding> {
        check_owner(owner)?;
        let k = to_key(parse_ip(ip)?);
        let (p, now) = self.pool(pool)?;
        p.allocate_specific(k, owner, now)
    }

    /// Release `ip` if `generation` is the binding's current one.
    pub fn release(&mut self, pool: &str, ip: &str, generation: u64) -> Result<Binding> {
        let k = to_key(parse_ip(ip)?);
        let (p, _) = self.pool(pool)?;
        p.check_generation(k, ip, generation)?;
        Ok(p.unbind(k).expect("slot exists"))
    }

    pub fn release_owner(&mut self, pool: &str, owner: &Owner) -> Result<Binding> {
        let (p, _) = self.pool(pool)?;
        let &k = p
            .owners
            .get(owner)
            .ok_or_else(|| PoolError::NotFound(format!("{}/{}", owner.tenant, owner.resource)))?;
        Ok(p.unbind(k).expect("owner indexed"))
    }

    /// Release every binding of `tenant`; returns how many.
    pub fn release_tenant(&mut self, pool: &str, tenant: &str) -> Result<u64> {
        let (p, _) = self.pool(pool)?;
        let ips: Vec<u128> = p
            .tenants
            .get(tenant)
            .map(|t| t.ips.iter().copied().collect())
            .unwrap_or_default();
        for &k in &ips {
            p.unbind(k);
        }
        Ok(ips.len() as u64)
    }

    /// Extend a lease by the pool's TTL from now.
    pub fn renew(&mut self, pool: &str, ip: &str, generation: u64) -> Result<Binding> {
        let k = to_key(parse_ip(ip)?);
        let (p, now) = self.pool(pool)?;
        p.check_generation(k, ip, generation)?;
        if let Some(ttl) = p.config.lease_ttl_ms {
            p.set_expiry(k, now.saturating_add(ttl));
        }
        Ok(p.binding(k, &p.slots[&k]))
    }

    /// Release expired leases now; returns how many. (Every pool call also does this.)
    pub fn reclaim_expired(&mut self, pool: &str) -> Result<u64> {
        let now = self.clock.now_ms();
        let p = self
            .pools
            .get_mut(pool)
            .ok_or_else(|| PoolError::UnknownPool(pool.to_string()))?;
        Ok(p.reclaim_expired(now))
    }

    /// `None` removes the quota.
    pub fn set_quota(&mut self, pool: &str, tenant: &str, limit: Option<u64>) -> Result<()> {
        let (p, _) = self.pool(pool)?;
        let t = p.tenants.entry(tenant.to_string()).or_default();
        t.quota = limit;
        if t.quota.is_none() && t.ips.is_empty() {
            p.tenants.remove(tenant);
        }
        Ok(())
    }

    pub fn get_binding(&mut self, pool: &str, ip: &str) -> Result<Option<Binding>> {
        let k = to_key(parse_ip(ip)?);
        let (p, _) = self.pool(pool)?;
        Ok(p.slots.get(&k).map(|s| p.binding(k, s)))
    }

    /// The binding of `owner`, if any.
    pub fn find_owner(&mut self, pool: &str, owner: &Owner) -> Result<Option<Binding>> {
        let (p, _) = self.pool(pool)?;
        Ok(p.owners.get(owner).map(|&k| p.binding(k, &p.slots[&k])))
    }

    /// The tenant's bindings, by address; cost is proportional to their number.
    pub fn list_by_tenant(&mut self, pool: &str, tenant: &str) -> Result<Vec<Binding>> {
        let (p, _) = self.pool(pool)?;
        let Some(t) = p.tenants.get(tenant) else {
            return Ok(Vec::new());
        };
        let mut keys: Vec<u128> = t.ips.iter().copied().collect();
        keys.sort_unstable();
        Ok(keys
            .into_iter()
            .map(|k| p.binding(k, &p.slots[&k]))
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
        snapshot::write(self.pools.values())
    }

    /// Replace the whole state with a snapshot's. On error nothing changes.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let pools = snapshot::read(bytes)?;
        self.pools = pools.into_iter().map(|p| (p.name.clone(), p)).collect();
        Ok(())
    }
}
