//! The ip-pool component: `scheduler:core-libs/ip-pool` over the `ip-pool` crate.
//! One `IpPools` per instance; the types are adapted here and nothing else.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use guest_rt::Global;
use ip_pool::{IpPools, PoolError as E};
use net_text::{decimal, format_ip};

wit_bindgen::generate!({ path: "../../wit", world: "ip-pool-component" });

use exports::scheduler::core_libs::ip_pool::{
    Address, Binding, Guest, Holder, Lease, Overlap, Owner, PoolConfig, PoolError, PoolStats,
    Quota, RangeInfo, ResourceType, Stale, Strategy, TenantStats,
};

static POOLS: Global<IpPools> = Global::new(|| IpPools::with_clock(Box::new(WallClock)));

/// Lease expiry is wall-clock time (`lease-expiry-ms` is ms since the Unix epoch).
struct WallClock;

impl ip_pool::Clock for WallClock {
    fn now_ms(&self) -> u64 {
        let t = wasip2::clocks::wall_clock::now();
        t.seconds * 1000 + u64::from(t.nanoseconds / 1_000_000)
    }
}

fn with<T>(f: impl FnOnce(&mut IpPools) -> Result<T, E>) -> Result<T, PoolError> {
    f(&mut POOLS.get()).map_err(error)
}

fn error(e: E) -> PoolError {
    match e {
        E::InvalidCidr(s) => PoolError::InvalidCidr(s),
        E::InvalidAddress(s) => PoolError::InvalidAddress(s),
        E::InvalidRange(s) => PoolError::InvalidRange(s),
        E::InvalidInput(s) => PoolError::InvalidInput(s),
        E::RangeOverlap { range, existing } => PoolError::RangeOverlap(Overlap { range, existing }),
        E::Exhausted { pool } => PoolError::Exhausted(pool),
        E::QuotaExceeded { tenant, limit } => PoolError::QuotaExceeded(Quota { tenant, limit }),
        E::NotFound(s) => PoolError::NotFound(s),
        E::Conflict {
            ip,
            tenant,
            resource,
        } => PoolError::Conflict(Holder {
            ip,
            tenant,
            resource,
        }),
        E::StaleGeneration { ip, current, given } => {
            PoolError::StaleGeneration(Stale { ip, current, given })
        }
        E::UnknownPool(s) => PoolError::UnknownPool(s),
        E::PoolExists(s) => PoolError::PoolExists(s),
        E::OutOfRange(s) => PoolError::OutOfRange(s),
        E::Reserved(s) => PoolError::Reserved(s),
        E::InvalidSnapshot(s) => PoolError::InvalidSnapshot(s),
    }
}

fn config(c: PoolConfig) -> ip_pool::PoolConfig {
    ip_pool::PoolConfig {
        strategy: match c.strategy {
            Strategy::Sequential => ip_pool::Strategy::Sequential,
            Strategy::RoundRobin => ip_pool::Strategy::RoundRobin,
            Strategy::Random => ip_pool::Strategy::Random,
        },
        lease_ttl_ms: c.lease_ttl_ms,
        seed: c.seed,
    }
}

fn owner(o: Owner) -> ip_pool::Owner {
    let resource_type = match o.resource_type {
        ResourceType::Vm => ip_pool::ResourceType::Vm,
        ResourceType::Container => ip_pool::ResourceType::Container,
        ResourceType::Pod => ip_pool::ResourceType::Pod,
        ResourceType::Custom(c) => ip_pool::ResourceType::Custom(c),
    };
    ip_pool::Owner {
        tenant: o.tenant,
        resource: o.resource,
        resource_type,
    }
}

fn binding(b: ip_pool::BindingRef<'_>) -> Binding {
    let resource_type = match b.resource_type {
        ip_pool::ResourceType::Vm => ResourceType::Vm,
        ip_pool::ResourceType::Container => ResourceType::Container,
        ip_pool::ResourceType::Pod => ResourceType::Pod,
        ip_pool::ResourceType::Custom(c) => ResourceType::Custom(c.clone()),
    };
    Binding {
        ip: format_ip(b.ip),
        pool: b.pool.to_string(),
        tenant: b.tenant.to_string(),
        resource: b.resource.to_string(),
        resource_type,
        generation: b.generation,
        lease_expiry_ms: b.lease_expiry_ms,
    }
}

fn owned(b: ip_pool::Binding) -> Binding {
    binding(ip_pool::BindingRef {
        ip: b.ip,
        pool: &b.pool,
        tenant: &b.tenant,
        resource: &b.resource,
        resource_type: &b.resource_type,
        generation: b.generation,
        lease_expiry_ms: b.lease_expiry_ms,
    })
}

fn address(ip: IpAddr) -> Address {
    match ip {
        IpAddr::V4(v4) => Address::V4(u32::from(v4)),
        IpAddr::V6(v6) => {
            let n = u128::from(v6);
            Address::V6(((n >> 64) as u64, n as u64))
        }
    }
}

fn ip_addr(a: Address) -> IpAddr {
    match a {
        Address::V4(n) => IpAddr::V4(Ipv4Addr::from(n)),
        Address::V6((hi, lo)) => {
            IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))
        }
    }
}

fn range(r: ip_pool::RangeInfo) -> RangeInfo {
    RangeInfo {
        text: r.text,
        first: format_ip(r.first),
        last: format_ip(r.last),
        size: decimal(r.size),
    }
}

struct Component;
export!(Component);

impl Guest for Component {
    fn create_pool(name: String, c: PoolConfig) -> Result<(), PoolError> {
        with(|p| p.create_pool(&name, config(c)))
    }

    fn ensure_pool(name: String, c: PoolConfig) -> Result<(), PoolError> {
        with(|p| p.ensure_pool(&name, config(c)))
    }

    fn delete_pool(name: String) -> Result<(), PoolError> {
        with(|p| p.delete_pool(&name))
    }

    fn list_pools() -> Vec<String> {
        POOLS.get().pool_names()
    }

    fn add_cidr(pool: String, cidr: String, reserve: bool) -> Result<RangeInfo, PoolError> {
        with(|p| p.add_cidr(&pool, &cidr, reserve)).map(range)
    }

    fn add_range(pool: String, start: String, end: String) -> Result<RangeInfo, PoolError> {
        with(|p| p.add_range(&pool, &start, &end)).map(range)
    }

    fn exclude(pool: String, r: String) -> Result<(), PoolError> {
        with(|p| p.exclude(&pool, &r))
    }

    fn list_ranges(pool: String) -> Result<Vec<RangeInfo>, PoolError> {
        with(|p| p.ranges(&pool)).map(|v| v.into_iter().map(range).collect())
    }

    fn allocate(pool: String, o: Owner) -> Result<Binding, PoolError> {
        with(|p| p.allocate(&pool, &owner(o)).map(binding))
    }

    fn allocate_specific(pool: String, ip: String, o: Owner) -> Result<Binding, PoolError> {
        with(|p| p.allocate_specific(&pool, &ip, &owner(o)).map(binding))
    }

    fn release(pool: String, ip: String, generation: u64) -> Result<Binding, PoolError> {
        with(|p| p.release(&pool, &ip, generation).map(binding))
    }

    fn release_owner(pool: String, o: Owner) -> Result<Binding, PoolError> {
        with(|p| p.release_owner(&pool, &owner(o)).map(binding))
    }

    fn pool_handle(pool: String) -> Result<u64, PoolError> {
        with(|p| p.pool_handle(&pool))
    }

    fn allocate_lease(pool: u64, o: Owner) -> Result<Lease, PoolError> {
        with(|p| {
            p.allocate_in(pool, &owner(o)).map(|b| Lease {
                ip: address(b.ip),
                generation: b.generation,
                lease_expiry_ms: b.lease_expiry_ms,
            })
        })
    }

    fn release_lease(pool: u64, ip: Address, generation: u64) -> Result<(), PoolError> {
        with(|p| p.release_in(pool, ip_addr(ip), generation).map(|_| ()))
    }

    fn release_tenant(pool: String, tenant: String) -> Result<u64, PoolError> {
        with(|p| p.release_tenant(&pool, &tenant))
    }

    fn renew(pool: String, ip: String, generation: u64) -> Result<Binding, PoolError> {
        with(|p| p.renew(&pool, &ip, generation).map(binding))
    }

    fn reclaim_expired(pool: String) -> Result<u64, PoolError> {
        with(|p| p.reclaim_expired(&pool))
    }

    fn set_quota(pool: String, tenant: String, limit: Option<u64>) -> Result<(), PoolError> {
        with(|p| p.set_quota(&pool, &tenant, limit))
    }

    fn get_binding(pool: String, ip: String) -> Result<Option<Binding>, PoolError> {
        with(|p| p.get_binding(&pool, &ip).map(|b| b.map(binding)))
    }

    fn find_owner(pool: String, o: Owner) -> Result<Option<Binding>, PoolError> {
        with(|p| p.find_owner(&pool, &owner(o)).map(|b| b.map(binding)))
    }

    fn list_by_tenant(pool: String, tenant: String) -> Result<Vec<Binding>, PoolError> {
        with(|p| p.list_by_tenant(&pool, &tenant)).map(|v| v.into_iter().map(owned).collect())
    }

    fn stats(pool: String) -> Result<PoolStats, PoolError> {
        with(|p| p.stats(&pool)).map(|s| PoolStats {
            total: decimal(s.total),
            allocated: s.allocated,
            reserved: decimal(s.reserved),
            available: decimal(s.available),
            ranges: s.ranges,
            free_fragments: s.free_fragments,
            tenants: s.tenants,
        })
    }

    fn stats_for_tenant(pool: String, tenant: String) -> Result<TenantStats, PoolError> {
        with(|p| p.tenant_stats(&pool, &tenant)).map(|t| TenantStats {
            tenant: t.tenant,
            allocated: t.allocated,
            quota: t.quota,
        })
    }

    fn snapshot() -> Vec<u8> {
        POOLS.get().snapshot()
    }

    fn restore(bytes: Vec<u8>) -> Result<(), PoolError> {
        with(|p| p.restore(&bytes))
    }
}
