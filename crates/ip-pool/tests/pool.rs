use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ip_pool::addr::to_key;
use ip_pool::*;
use proptest::prelude::{ProptestConfig, any, prop_oneof, proptest};
use proptest::strategy::Strategy as Gen;

#[derive(Clone)]
struct FakeClock(Arc<AtomicU64>);

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn fake() -> (IpPools, Arc<AtomicU64>) {
    let t = Arc::new(AtomicU64::new(1_000));
    (IpPools::with_clock(Box::new(FakeClock(t.clone()))), t)
}

fn owner(t: &str, r: &str) -> Owner {
    Owner::new(t, r, ResourceType::Vm)
}

fn pool_with(cidr: &str, strategy: Strategy) -> IpPools {
    let mut p = IpPools::new();
    p.create_pool(
        "p",
        PoolConfig {
            strategy,
            ..Default::default()
        },
    )
    .unwrap();
    p.add_cidr("p", cidr, true).unwrap();
    p
}

#[test]
fn a_handle_names_its_pool_until_the_pool_goes() {
    let mut p = pool_with("10.0.0.0/30", Strategy::Sequential);
    p.create_pool("q", PoolConfig::default()).unwrap();
    p.add_cidr("q", "10.0.1.0/30", true).unwrap();
    let (hp, hq) = (p.pool_handle("p").unwrap(), p.pool_handle("q").unwrap());
    assert_ne!(hp, hq);
    let a = p.allocate_in(hq, &owner("t", "a")).unwrap().to_binding();
    assert_eq!(
        (a.pool.as_str(), a.ip.to_string().as_str()),
        ("q", "10.0.1.1")
    );
    let b = p.allocate_in(hp, &owner("t", "a")).unwrap().to_binding();
    assert_eq!(b.ip.to_string(), "10.0.0.1");
    assert_eq!(p.allocate("q", &owner("t", "a")).unwrap().ip, a.ip);
    assert!(matches!(
        p.release_in(hq, a.ip, a.generation + 1),
        Err(PoolError::StaleGeneration { .. })
    ));
    p.release_in(hq, a.ip, a.generation).unwrap();
    p.delete_pool("q").unwrap();
    p.create_pool("q", PoolConfig::default()).unwrap();
    assert_ne!(p.pool_handle("q").unwrap(), hq);
    assert!(matches!(
        p.allocate_in(hq, &owner("t", "a")),
        Err(PoolError::UnknownPool(_))
    ));
    let snapshot = p.snapshot();
    p.restore(&snapshot).unwrap();
    assert!(matches!(
        p.release_in(hp, b.ip, b.generation),
        Err(PoolError::UnknownPool(_))
    ));
    let hp = p.pool_handle("p").unwrap();
    p.release_in(hp, b.ip, b.generation).unwrap();
    assert!(matches!(
        p.pool_handle("gone"),
        Err(PoolError::UnknownPool(_))
    ));
}

#[test]
fn slash_30_gives_two_addresses_then_exhausted() {
    let mut p = pool_with("10.0.0.0/30", Strategy::Sequential);
    assert_eq!(
        p.allocate("p", &owner("t", "a")).unwrap().ip.to_string(),
        "10.0.0.1"
    );
    assert_eq!(
        p.allocate("p", &owner("t", "b")).unwrap().ip.to_string(),
        "10.0.0.2"
    );
    assert_eq!(
        p.allocate("p", &owner("t", "c")),
        Err(PoolError::Exhausted { pool: "p".into() })
    );
    let s = p.stats("p").unwrap();
    assert_eq!(
        (s.total, s.allocated, s.reserved, s.available),
        (4, 2, 2, 0)
    );
}

#[test]
fn slash_31_and_32_reserve_nothing_and_opt_out_works() {
    let mut p = pool_with("10.0.0.0/31", Strategy::Sequential);
    assert_eq!(p.stats("p").unwrap().available, 2);
    p.add_cidr("p", "10.0.1.7/32", true).unwrap();
    assert_eq!(p.stats("p").unwrap().available, 3);
    p.add_cidr("p", "10.0.2.0/30", false).unwrap();
    assert_eq!(p.stats("p").unwrap().available, 7);
}

#[test]
fn allocation_is_idempotent_per_owner() {
    let mut p = pool_with("10.0.0.0/24", Strategy::Sequential);
    let a = p.allocate("p", &owner("t", "vm-1")).unwrap().to_binding();
    let again = p.allocate("p", &owner("t", "vm-1")).unwrap().to_binding();
    assert_eq!(a, again);
    let other_type = p
        .allocate("p", &Owner::new("t", "vm-1", ResourceType::Pod))
        .unwrap()
        .to_binding();
    assert_ne!(a.ip, other_type.ip, "type is part of the owner");
    assert_eq!(p.stats("p").unwrap().allocated, 2);
}

#[test]
fn quotas_per_tenant() {
    let mut p = pool_with("10.0.0.0/24", Strategy::Sequential);
    p.set_quota("p", "a", Some(2)).unwrap();
    p.allocate("p", &owner("a", "1")).unwrap();
    p.allocate("p", &owner("a", "2")).unwrap();
    assert_eq!(
        p.allocate("p", &owner("a", "3")),
        Err(PoolError::QuotaExceeded {
            tenant: "a".into(),
            limit: 2
        })
    );
    p.allocate("p", &owner("b", "1")).unwrap();
    assert_eq!(
        p.tenant_stats("p", "a").unwrap(),
        TenantStats {
            tenant: "a".into(),
            allocated: 2,
            quota: Some(2)
        }
    );
    p.release_owner("p", &owner("a", "1")).unwrap();
    p.allocate("p", &owner("a", "3")).unwrap();
    p.set_quota("p", "a", None).unwrap();
    p.allocate("p", &owner("a", "4")).unwrap();
}

#[test]
fn leases_expire_with_a_fake_clock() {
    let (mut p, clock) = fake();
    p.create_pool(
        "p",
        PoolConfig {
            lease_ttl_ms: Some(1_000),
            ..Default::default()
        },
    )
    .unwrap();
    p.add_cidr("p", "10.0.0.0/29", true).unwrap();
    let b = p.allocate("p", &owner("t", "a")).unwrap().to_binding();
    assert_eq!(b.lease_expiry_ms, Some(2_000));
    clock.store(1_900, Ordering::SeqCst);
    let renewed = p
        .renew("p", &b.ip.to_string(), b.generation)
        .unwrap()
        .to_binding();
    assert_eq!(renewed.lease_expiry_ms, Some(2_900));
    clock.store(2_500, Ordering::SeqCst);
    assert!(
        p.get_binding("p", &b.ip.to_string()).unwrap().is_some(),
        "renewed lease still live"
    );
    clock.store(2_900, Ordering::SeqCst);
    assert_eq!(
        p.get_binding("p", &b.ip.to_string()).unwrap(),
        None,
        "expired lease reclaimed"
    );
    assert_eq!(p.stats("p").unwrap().allocated, 0);
    let c = p.allocate("p", &owner("t", "b")).unwrap().to_binding();
    assert_eq!(c.ip, b.ip, "reclaimed address is free again");
    assert!(c.generation > b.generation);
}

#[test]
fn stale_generation_release_is_refused() {
    let mut p = pool_with("10.0.0.0/30", Strategy::Sequential);
    let a = p.allocate("p", &owner("t", "a")).unwrap().to_binding();
    p.release("p", "10.0.0.1", a.generation).unwrap();
    let b = p.allocate("p", &owner("t", "b")).unwrap().to_binding();
    assert_eq!(b.ip, a.ip);
    assert_eq!(
        p.release("p", "10.0.0.1", a.generation),
        Err(PoolError::StaleGeneration {
            ip: "10.0.0.1".into(),
            current: b.generation,
            given: a.generation
        })
    );
    assert_eq!(
        p.get_binding("p", "10.0.0.1").unwrap().unwrap().resource,
        "b"
    );
    assert!(matches!(
        p.release("p", "10.0.0.2", 1),
        Err(PoolError::NotFound(_))
    ));
}

#[test]
fn bad_inputs_give_typed_errors() {
    let mut p = IpPools::new();
    p.create_pool("p", PoolConfig::default()).unwrap();
    for bad in [
        "10.0.0.0/33",
        "300.1.1.1/24",
        "fd00::/129",
        "",
        "garbage",
        "10.0.0.0/",
        "10.0.0.0/-1",
        "10.0.0.1/24",
        "/24",
    ] {
        assert!(
            matches!(p.add_cidr("p", bad, true), Err(PoolError::InvalidCidr(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        p.add_range("p", "10.0.0.9", "10.0.0.1"),
        Err(PoolError::InvalidRange(_))
    ));
    assert!(matches!(
        p.add_range("p", "10.0.0.1", "::1"),
        Err(PoolError::InvalidRange(_))
    ));
    assert!(matches!(
        p.add_range("p", "x", "10.0.0.1"),
        Err(PoolError::InvalidAddress(_))
    ));
    assert!(matches!(
        p.add_cidr("p", "::ffff:0:0/96", true),
        Err(PoolError::InvalidRange(_))
    ));
    assert!(matches!(
        p.get_binding("p", "999.1.1.1"),
        Err(PoolError::InvalidAddress(_))
    ));
    assert!(matches!(
        p.allocate("nope", &owner("t", "a")),
        Err(PoolError::UnknownPool(_))
    ));
    assert!(matches!(
        p.allocate("p", &owner("", "a")),
        Err(PoolError::InvalidInput(_))
    ));
    assert!(matches!(
        p.create_pool("p", PoolConfig::default()),
        Err(PoolError::PoolExists(_))
    ));
    assert!(matches!(
        p.restore(b"garbage"),
        Err(PoolError::InvalidSnapshot(_))
    ));
    assert_eq!(
        p.stats("p").unwrap().total,
        0,
        "nothing was added by bad input"
    );
}

#[test]
fn overlapping_ranges_are_refused_and_families_mix() {
    let mut p = IpPools::new();
    p.create_pool("p", PoolConfig::default()).unwrap();
    p.add_cidr("p", "10.0.0.0/24", true).unwrap();
    p.add_cidr("p", "fd00::/64", true).unwrap();
    assert_eq!(
        p.add_cidr("p", "10.0.0.128/25", true),
        Err(PoolError::RangeOverlap {
            range: "10.0.0.128/25".into(),
            existing: "10.0.0.0/24".into()
        })
    );
    assert!(matches!(
        p.add_range("p", "9.255.255.0", "10.0.0.0"),
        Err(PoolError::RangeOverlap { .. })
    ));
    assert!(matches!(
        p.add_range("p", "fd00::ffff", "fd00::1:0"),
        Err(PoolError::RangeOverlap { .. })
    ));
    let s = p.stats("p").unwrap();
    assert_eq!(s.total, 256 + (1u128 << 64));
    assert_eq!(s.ranges, 2);
}

#[test]
fn conflicts_name_the_holder() {
    let mut p = pool_with("10.0.0.0/24", Strategy::Sequential);
    p.allocate_specific("p", "10.0.0.50", &owner("a", "x"))
        .unwrap();
    assert_eq!(
        p.allocate_specific("p", "10.0.0.50", &owner("b", "y")),
        Err(PoolError::Conflict {
            ip: "10.0.0.50".into(),
            tenant: "a".into(),
            resource: "x".into()
        })
    );
    assert!(matches!(
        p.allocate_specific("p", "10.0.0.0", &owner("b", "y")),
        Err(PoolError::Reserved(_))
    ));
    assert!(matches!(
        p.allocate_specific("p", "10.0.1.1", &owner("b", "y")),
        Err(PoolError::OutOfRange(_))
    ));
    // Idempotent for the holder itself.
    assert_eq!(
        p.allocate_specific("p", "10.0.0.50", &owner("a", "x"))
            .unwrap()
            .ip
            .to_string(),
        "10.0.0.50"
    );
    assert_eq!(p.release_tenant("p", "a").unwrap(), 1);
}

#[test]
fn round_robin_does_not_reuse_a_released_address_at_once() {
    let mut p = pool_with("10.0.0.0/29", Strategy::RoundRobin);
    let a = p.allocate("p", &owner("t", "a")).unwrap().to_binding();
    p.release("p", &a.ip.to_string(), a.generation).unwrap();
    let b = p.allocate("p", &owner("t", "b")).unwrap().to_binding();
    assert_ne!(a.ip, b.ip);
    let mut seen = BTreeSet::new();
    for i in 0..5 {
        seen.insert(p.allocate("p", &owner("t", &format!("n{i}"))).unwrap().ip);
    }
    // 6 usable addresses: the wrap gives back the first one last.
    assert!(seen.contains(&a.ip));
}

#[test]
fn exclusions_are_ranges_and_never_allocated() {
    let mut p = pool_with("10.0.0.0/24", Strategy::Sequential);
    p.exclude("p", "10.0.0.1-10.0.0.100").unwrap();
    assert_eq!(
        p.allocate("p", &owner("t", "a")).unwrap().ip.to_string(),
        "10.0.0.101"
    );
    p.exclude("p", "10.0.0.96/28").unwrap();
    assert_eq!(
        p.allocate("p", &owner("t", "b")).unwrap().ip.to_string(),
        "10.0.0.112"
    );
    assert_eq!(
        p.reserved_intervals("p").unwrap().len(),
        2,
        "network..111 merged, broadcast"
    );
    // An address reserved while bound is not freed on release.
    p.exclude("p", "10.0.0.112/32").unwrap();
    p.release_owner("p", &owner("t", "b")).unwrap();
    assert!(
        p.free_intervals("p")
            .unwrap()
            .iter()
            .all(|(s, _)| s.to_string() != "10.0.0.112")
    );
}

#[test]
fn ipv6_slash_64_allocates_like_a_slash_24() {
    let mut p = pool_with("fd00::/64", Strategy::Random);
    let mut seen = BTreeSet::new();
    for i in 0..1000 {
        let b = p
            .allocate("p", &owner("t", &i.to_string()))
            .unwrap()
            .to_binding();
        assert!(seen.insert(b.ip));
    }
    let s = p.stats("p").unwrap();
    assert_eq!(s.total, 1u128 << 64);
    assert_eq!(s.allocated, 1000);
    assert_eq!(s.available, (1u128 << 64) - 1000);
    assert_eq!(p.list_by_tenant("p", "t").unwrap().len(), 1000);
}

#[test]
fn snapshot_round_trips() {
    let (mut p, _) = fake();
    p.create_pool(
        "p",
        PoolConfig {
            strategy: Strategy::RoundRobin,
            lease_ttl_ms: Some(5_000),
            seed: 7,
        },
    )
    .unwrap();
    p.add_cidr("p", "10.0.0.0/28", true).unwrap();
    p.add_range("p", "fd00::10", "fd00::20").unwrap();
    p.exclude("p", "10.0.0.4-10.0.0.6").unwrap();
    p.set_quota("p", "q", Some(3)).unwrap();
    p.allocate(
        "p",
        &Owner::new("t", "r", ResourceType::Custom("gpu".into())),
    )
    .unwrap();
    let bytes = p.snapshot();
    let (mut q, _) = fake();
    q.restore(&bytes).unwrap();
    assert_eq!(q.snapshot(), bytes);
    for cut in [0, 5, 6, 8, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(q.restore(&bytes[..cut]), Err(PoolError::InvalidSnapshot(_))),
            "cut {cut}"
        );
    }
    assert_eq!(q.snapshot(), bytes, "a failed restore changes nothing");
}

// ---- property tests ----

#[derive(Debug, Clone)]
enum Op {
    Allocate(u8, u8),
    AllocateSpecific(u8, u8, u16),
    Release(u16, bool),
    ReleaseOwner(u8, u8),
    ReleaseTenant(u8),
    Exclude(u16, u8),
    Quota(u8, Option<u8>),
    Advance(u16),
    Renew(u16),
}

fn op() -> impl Gen<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 0u8..24).prop_map(|(t, r)| Op::Allocate(t, r)),
        1 => (0u8..4, 0u8..24, any::<u16>()).prop_map(|(t, r, o)| Op::AllocateSpecific(t, r, o)),
        3 => (any::<u16>(), any::<bool>()).prop_map(|(i, s)| Op::Release(i, s)),
        1 => (0u8..4, 0u8..24).prop_map(|(t, r)| Op::ReleaseOwner(t, r)),
        1 => (0u8..4).prop_map(Op::ReleaseTenant),
        1 => (any::<u16>(), 0u8..6).prop_map(|(o, n)| Op::Exclude(o, n)),
        1 => (0u8..4, proptest::option::of(0u8..8)).prop_map(|(t, q)| Op::Quota(t, q)),
        1 => (0u16..3000).prop_map(Op::Advance),
        1 => any::<u16>().prop_map(Op::Renew),
    ]
}

/// The ranges used: a small IPv4 CIDR, a small IPv6 start-end range and a huge IPv6 range.
struct Setup {
    small: Vec<(u128, u128)>,
    huge: (u128, u128),
}

fn setup(p: &mut IpPools, strategy: Strategy, with_huge: bool) -> Setup {
    p.create_pool(
        "p",
        PoolConfig {
            strategy,
            lease_ttl_ms: Some(2_000),
            seed: 42,
        },
    )
    .unwrap();
    p.add_cidr("p", "127.0.10.0/28", true).unwrap();
    p.add_range("p", "fd00::1", "fd00::a").unwrap();
    let k = |s: &str| to_key(s.parse::<IpAddr>().unwrap());
    let mut s = Setup {
        small: vec![
            (k("127.0.10.0"), k("127.0.10.15")),
            (k("fd00::1"), k("fd00::a")),
        ],
        huge: (0, 0),
    };
    if with_huge {
        p.add_cidr("p", "fd01::/64", true).unwrap();
        s.huge = (k("fd01::"), k("fd01::ffff:ffff:ffff:ffff"));
    }
    s
}

fn apply(p: &mut IpPools, clock: &AtomicU64, setup: &Setup, op: &Op) -> String {
    let tenant = |t: u8| format!("t{t}");
    let all: Vec<Binding> = (0..4)
        .flat_map(|t| p.list_by_tenant("p", &tenant(t)).unwrap())
        .collect();
    let addr_at = |o: u16| {
        let ranges: Vec<(u128, u128)> = setup
            .small
            .iter()
            .copied()
            .chain((setup.huge.0 != 0).then_some(setup.huge))
            .collect();
        let (s, e) = ranges[o as usize % ranges.len()];
        let off = u128::from(o) % (e - s + 1).min(40);
        ip_pool::addr::from_key(s + off)
    };
    let r = match op {
        Op::Allocate(t, r) => format!("{:?}", p.allocate("p", &owner(&tenant(*t), &r.to_string()))),
        Op::AllocateSpecific(t, r, o) => {
            format!(
                "{:?}",
                p.allocate_specific(
                    "p",
                    &addr_at(*o).to_string(),
                    &owner(&tenant(*t), &r.to_string())
                )
            )
        }
        Op::Release(i, stale) => match all.get(*i as usize % all.len().max(1)) {
            Some(b) => {
                let g = if *stale {
                    b.generation.wrapping_sub(1)
                } else {
                    b.generation
                };
                format!("{:?}", p.release("p", &b.ip.to_string(), g))
            }
            None => "none".into(),
        },
        Op::ReleaseOwner(t, r) => format!(
            "{:?}",
            p.release_owner("p", &owner(&tenant(*t), &r.to_string()))
        ),
        Op::ReleaseTenant(t) => format!("{:?}", p.release_tenant("p", &tenant(*t))),
        Op::Exclude(o, n) => {
            let a = addr_at(*o);
            let b = ip_pool::addr::from_key(to_key(a) + u128::from(*n));
            format!("{:?}", p.exclude("p", &format!("{a}-{b}")))
        }
        Op::Quota(t, q) => format!("{:?}", p.set_quota("p", &tenant(*t), q.map(u64::from))),
        Op::Advance(ms) => {
            clock.fetch_add(u64::from(*ms), Ordering::SeqCst);
            "advanced".into()
        }
        Op::Renew(i) => match all.get(*i as usize % all.len().max(1)) {
            Some(b) => format!("{:?}", p.renew("p", &b.ip.to_string(), b.generation)),
            None => "none".into(),
        },
    };
    if let Op::Allocate(..) | Op::AllocateSpecific(..) = op {
        // Never a reserved address.
        let reserved = p.reserved_intervals("p").unwrap();
        if let Some(ip) = r
            .strip_prefix("Ok(Binding { ip: ")
            .and_then(|s| s.split(',').next())
        {
            let k = to_key(ip.parse().unwrap());
            let bound_before = all.iter().any(|b| to_key(b.ip) == k);
            assert!(
                bound_before
                    || !reserved
                        .iter()
                        .any(|(s, e)| to_key(*s) <= k && k <= to_key(*e)),
                "allocated reserved {ip}"
            );
        }
    }
    r
}

fn check_invariants(p: &mut IpPools, setup: &Setup) {
    let tenants: Vec<String> = (0..4).map(|t| format!("t{t}")).collect();
    let mut bound: BTreeMap<u128, Owner> = BTreeMap::new();
    let mut owners = BTreeSet::new();
    for t in &tenants {
        for b in p.list_by_tenant("p", t).unwrap() {
            assert!(
                bound.insert(to_key(b.ip), b.owner()).is_none(),
                "address held twice"
            );
            assert!(owners.insert(b.owner()), "owner holds two addresses");
        }
    }
    let free: Vec<(u128, u128)> = p
        .free_intervals("p")
        .unwrap()
        .iter()
        .map(|(s, e)| (to_key(*s), to_key(*e)))
        .collect();
    let reserved: Vec<(u128, u128)> = p
        .reserved_intervals("p")
        .unwrap()
        .iter()
        .map(|(s, e)| (to_key(*s), to_key(*e)))
        .collect();
    let in_set = |set: &[(u128, u128)], k: u128| set.iter().any(|&(s, e)| s <= k && k <= e);
    // Every address of the small ranges is exactly one of free, bound, reserved.
    for &(s, e) in &setup.small {
        for k in s..=e {
            let f = in_set(&free, k);
            let b = bound.contains_key(&k);
            let r = in_set(&reserved, k);
            assert!(
                f as u8 + b as u8 + (r && !b) as u8 == 1,
                "address {k:x}: free {f} bound {b} reserved {r}"
            );
        }
    }
    // Counts over everything, including the huge range.
    for &k in bound.keys() {
        assert!(!in_set(&free, k), "bound address is free");
    }
    for &(s, e) in &free {
        assert!(
            !reserved.iter().any(|&(rs, re)| rs <= e && s <= re),
            "free space is reserved"
        );
    }
    let stats = p.stats("p").unwrap();
    let free_count: u128 = free.iter().map(|(s, e)| e - s + 1).sum();
    assert_eq!(stats.available, free_count);
    assert_eq!(stats.allocated as usize, bound.len());
    assert_eq!(
        stats.available + u128::from(stats.allocated) + stats.reserved,
        stats.total
    );
}

fn run_ops(strategy: Strategy, with_huge: bool, ops: &[Op], cut: usize) {
    let (mut p, clock) = fake();
    let setup = setup(&mut p, strategy, with_huge);
    let mut twin: Option<(IpPools, Arc<AtomicU64>)> = None;
    for (i, o) in ops.iter().enumerate() {
        if i == cut {
            let (mut q, qclock) = fake();
            qclock.store(clock.load(Ordering::SeqCst), Ordering::SeqCst);
            q.restore(&p.snapshot()).unwrap();
            twin = Some((q, qclock));
        }
        let a = apply(&mut p, &clock, &setup, o);
        check_invariants(&mut p, &setup);
        if let Some((q, qclock)) = twin.as_mut() {
            let b = apply(q, qclock, &setup, o);
            assert_eq!(a, b, "restored twin diverged at op {i}: {o:?}");
            check_invariants(q, &setup);
        }
    }
    if let Some((q, _)) = twin {
        assert_eq!(q.snapshot(), p.snapshot());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sequential_small(ops in proptest::collection::vec(op(), 1..80), cut in 0usize..80) {
        run_ops(Strategy::Sequential, false, &ops, cut);
    }

    #[test]
    fn round_robin_small(ops in proptest::collection::vec(op(), 1..80), cut in 0usize..80) {
        run_ops(Strategy::RoundRobin, false, &ops, cut);
    }

    #[test]
    fn random_with_a_huge_range(ops in proptest::collection::vec(op(), 1..80), cut in 0usize..80) {
        run_ops(Strategy::Random, true, &ops, cut);
    }
}
