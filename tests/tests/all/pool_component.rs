//! The ip-pool component in wasmtime, with real sockets bound to the addresses it hands out:
//! the four scenarios of the original notes. Pools come from 127.0.0.0/8.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

use integration_tests::pool_bindings::exports::scheduler::core_libs::ip_pool::{
    Address, Binding, Owner, PoolConfig, PoolError, ResourceType, Strategy,
};
use integration_tests::*;

fn config(strategy: Strategy) -> PoolConfig {
    PoolConfig {
        strategy,
        lease_ttl_ms: None,
        seed: 1,
    }
}

fn owner(tenant: &str, resource: &str, resource_type: ResourceType) -> Owner {
    Owner {
        tenant: tenant.into(),
        resource: resource.into(),
        resource_type,
    }
}

fn pool_guest(name: &str, cidr: &str) -> PoolGuest {
    let mut g = PoolGuest::new();
    add_pool(&mut g, name, cidr);
    g
}

/// A sequential pool `name` of `cidr` in `g`.
fn add_pool(g: &mut PoolGuest, name: &str, cidr: &str) {
    let f = g.pool().clone();
    f.call_create_pool(&mut g.store, name, config(Strategy::Sequential))
        .unwrap()
        .unwrap();
    f.call_add_cidr(&mut g.store, name, cidr, true)
        .unwrap()
        .unwrap();
}

fn allocate(g: &mut PoolGuest, pool: &str, o: &Owner) -> Binding {
    let f = g.pool().clone();
    f.call_allocate(&mut g.store, pool, o).unwrap().unwrap()
}

#[test]
fn tcp_server_bound_to_a_pool_address() {
    let mut pools = pool_guest("servers", "127.0.20.0/28");
    let b = allocate(
        &mut pools,
        "servers",
        &owner("tenant-a", "web-1", ResourceType::Vm),
    );
    assert_eq!(b.ip, "127.0.20.1");
    let mut g = SocketGuest::new();
    let l = g.tcp4();
    g.bind(l, &addr(&b.ip, 0)).unwrap();
    g.listen(l, 8).unwrap();
    let local = g.local_address(l).unwrap();
    assert_eq!(local.host, b.ip);
    let port = local.port;
    let target = b.ip.clone();
    let client = thread::spawn(move || {
        let mut c = TcpStream::connect((target.as_str(), port)).unwrap();
        c.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        c.read_exact(&mut buf).unwrap();
        (buf, c.peer_addr().unwrap())
    });
    let conn = g.accept(l).unwrap();
    let got = g.receive(conn, 2).unwrap();
    g.send(conn, &got).unwrap();
    let (echo, server_addr) = client.join().unwrap();
    assert_eq!(&echo, b"hi");
    assert_eq!(server_addr.ip().to_string(), "127.0.20.1");
}

#[test]
fn tcp_client_source_is_a_pool_address() {
    let mut pools = pool_guest("clients", "127.0.21.0/29");
    let b = allocate(
        &mut pools,
        "clients",
        &owner("tenant-a", "ctr-1", ResourceType::Container),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || listener.accept().unwrap().1);
    let mut g = SocketGuest::new();
    let s = g.tcp4();
    g.bind(s, &addr(&b.ip, 0)).unwrap();
    g.connect(s, &addr("127.0.0.1", port)).unwrap();
    assert_eq!(
        server.join().unwrap().ip().to_string(),
        b.ip,
        "the peer sees the pool address"
    );
}

#[test]
fn udp_metrics_from_a_pool_address() {
    let mut pools = pool_guest("metrics", "127.0.22.0/29");
    let b = allocate(
        &mut pools,
        "metrics",
        &owner("tenant-a", "pod-1", ResourceType::Pod),
    );
    // A statsd-style collector (port 8125 in the notes; any free port here).
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut g = SocketGuest::new();
    let s = g.udp4();
    g.bind(s, &addr(&b.ip, 0)).unwrap();
    g.send_to(
        s,
        b"requests:1|c",
        &addr("127.0.0.1", collector.local_addr().unwrap().port()),
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = collector.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"requests:1|c");
    assert_eq!(from.ip().to_string(), b.ip);
}

#[test]
fn two_tenants_get_disjoint_addresses_and_use_them() {
    let mut pools = PoolGuest::new();
    let f = pools.pool().clone();
    f.call_create_pool(&mut pools.store, "shared", config(Strategy::RoundRobin))
        .unwrap()
        .unwrap();
    f.call_add_cidr(&mut pools.store, "shared", "127.0.23.0/28", true)
        .unwrap()
        .unwrap();
    f.call_set_quota(&mut pools.store, "shared", "b", Some(3))
        .unwrap()
        .unwrap();
    let mut by_tenant = std::collections::BTreeMap::new();
    for tenant in ["a", "b"] {
        for i in 0..3 {
            let b = allocate(
                &mut pools,
                "shared",
                &owner(
                    tenant,
                    &format!("vm-{i}"),
                    ResourceType::Custom("gpu".into()),
                ),
            );
            by_tenant
                .entry(tenant)
                .or_insert_with(BTreeSet::new)
                .insert(b.ip);
        }
    }
    let quota = f
        .call_allocate(
            &mut pools.store,
            "shared",
            &owner("b", "vm-9", ResourceType::Vm),
        )
        .unwrap();
    assert!(matches!(quota, Err(PoolError::QuotaExceeded(q)) if q.limit == 3));
    assert!(by_tenant["a"].is_disjoint(&by_tenant["b"]));
    let listed: BTreeSet<String> = f
        .call_list_by_tenant(&mut pools.store, "shared", "a")
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|b| b.ip)
        .collect();
    assert_eq!(listed, by_tenant["a"]);

    // Each tenant's connections arrive from its own addresses.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        (0..6)
            .map(|_| listener.accept().unwrap().1.ip().to_string())
            .collect::<Vec<_>>()
    });
    let mut g = SocketGuest::new();
    let mut order = Vec::new();
    for (tenant, ips) in &by_tenant {
        for ip in ips {
            let s = g.tcp4();
            g.bind(s, &addr(ip, 0)).unwrap();
            g.connect(s, &addr("127.0.0.1", port)).unwrap();
            order.push((tenant.to_string(), ip.clone()));
        }
    }
    let seen = server.join().unwrap();
    for ((tenant, ip), peer) in order.iter().zip(seen) {
        assert_eq!(&peer, ip);
        assert!(by_tenant[tenant.as_str()].contains(&peer));
    }
}

#[test]
fn typed_errors_and_snapshots_cross_the_component_boundary() {
    let mut g = PoolGuest::new();
    let f = g.pool().clone();
    f.call_create_pool(&mut g.store, "p", config(Strategy::Random))
        .unwrap()
        .unwrap();
    for bad in ["10.0.0.0/33", "300.1.1.1/24", "fd00::/129", "", "garbage"] {
        let r = f.call_add_cidr(&mut g.store, "p", bad, true).unwrap();
        assert!(
            matches!(r, Err(PoolError::InvalidCidr(_))),
            "{bad:?}: {r:?}"
        );
    }
    assert!(matches!(
        f.call_stats(&mut g.store, "nope").unwrap(),
        Err(PoolError::UnknownPool(_))
    ));
    f.call_add_cidr(&mut g.store, "p", "fd00::/64", true)
        .unwrap()
        .unwrap();
    let b = allocate(&mut g, "p", &owner("t", "r", ResourceType::Vm));
    let stats = f.call_stats(&mut g.store, "p").unwrap().unwrap();
    assert_eq!(stats.total, "18446744073709551616");
    assert_eq!(stats.available, "18446744073709551615");
    let snap = f.call_snapshot(&mut g.store).unwrap();

    let mut h = PoolGuest::new();
    let fh = h.pool().clone();
    fh.call_restore(&mut h.store, &snap).unwrap().unwrap();
    let again = fh
        .call_get_binding(&mut h.store, "p", &b.ip)
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.tenant.as_str(), again.generation),
        ("t", b.generation)
    );
    assert!(matches!(
        fh.call_restore(&mut h.store, &snap[..snap.len() - 3])
            .unwrap(),
        Err(PoolError::InvalidSnapshot(_))
    ));
    let stale = fh
        .call_release(&mut h.store, "p", &b.ip, b.generation + 1)
        .unwrap();
    assert!(matches!(stale, Err(PoolError::StaleGeneration(_))));
}

/// A lease's address as text, as `binding.ip` spells it.
fn text(a: &Address) -> String {
    match *a {
        Address::V4(n) => std::net::Ipv4Addr::from(n).to_string(),
        Address::V6((hi, lo)) => {
            std::net::Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)).to_string()
        }
    }
}

/// A pool's handle names that pool only: not a pool made later under the same name, and
/// nothing after a restore; an unknown handle is the typed unknown-pool error.
#[test]
fn pool_handles_name_one_pool_for_its_life() {
    let mut g = pool_guest("p", "127.0.25.0/30");
    let f = g.pool().clone();
    let h = f.call_pool_handle(&mut g.store, "p").unwrap().unwrap();
    assert_eq!(f.call_pool_handle(&mut g.store, "p").unwrap().unwrap(), h);
    assert!(matches!(
        f.call_pool_handle(&mut g.store, "nope").unwrap(),
        Err(PoolError::UnknownPool(name)) if name == "nope"
    ));
    let a = owner("t", "a", ResourceType::Pod);
    let lease = f.call_allocate_lease(&mut g.store, h, &a).unwrap().unwrap();
    let snapshot = f.call_snapshot(&mut g.store).unwrap();
    f.call_delete_pool(&mut g.store, "p").unwrap().unwrap();
    add_pool(&mut g, "p", "127.0.25.0/30");
    let again = f.call_pool_handle(&mut g.store, "p").unwrap().unwrap();
    assert_ne!(again, h, "a new pool under the old name gets a new handle");
    for stale in [h, again + 1000] {
        match f.call_allocate_lease(&mut g.store, stale, &a).unwrap() {
            Err(PoolError::UnknownPool(text)) => {
                assert!(text.contains(&stale.to_string()), "{text}")
            }
            other => panic!("handle {stale}: {other:?}"),
        }
    }
    assert!(matches!(
        f.call_release_lease(&mut g.store, h, lease.ip, lease.generation)
            .unwrap(),
        Err(PoolError::UnknownPool(_))
    ));
    f.call_restore(&mut g.store, &snapshot).unwrap().unwrap();
    assert!(matches!(
        f.call_release_lease(&mut g.store, again, lease.ip, lease.generation)
            .unwrap(),
        Err(PoolError::UnknownPool(_))
    ));
    let restored = f.call_pool_handle(&mut g.store, "p").unwrap().unwrap();
    f.call_release_lease(&mut g.store, restored, lease.ip, lease.generation)
        .unwrap()
        .unwrap();
}

/// The lean pair agrees with the full one: same address for the same owner, the same typed
/// errors, and a release-lease frees the address for the next owner.
#[test]
fn lease_calls_agree_with_allocate_and_release() {
    let mut g = pool_guest("p", "127.0.24.0/30");
    let f = g.pool().clone();
    let h = f.call_pool_handle(&mut g.store, "p").unwrap().unwrap();
    let a = owner("t", "a", ResourceType::Pod);
    let full = allocate(&mut g, "p", &a);
    let lease = f.call_allocate_lease(&mut g.store, h, &a).unwrap().unwrap();
    // 127.0.24.1: the network address is reserved.
    assert!(
        matches!(lease.ip, Address::V4(0x7f00_1801)),
        "{:?}",
        lease.ip
    );
    assert_eq!(
        (text(&lease.ip), lease.generation),
        (full.ip, full.generation)
    );
    let b = f
        .call_allocate_lease(&mut g.store, h, &owner("t", "b", ResourceType::Pod))
        .unwrap()
        .unwrap();
    assert_ne!(text(&b.ip), text(&lease.ip));
    // A /30 holds two: the third owner is refused with the typed error.
    assert!(matches!(
        f.call_allocate_lease(&mut g.store, h, &owner("t", "c", ResourceType::Pod))
            .unwrap(),
        Err(PoolError::Exhausted(_))
    ));
    assert!(matches!(
        f.call_release_lease(&mut g.store, h, b.ip, b.generation + 1)
            .unwrap(),
        Err(PoolError::StaleGeneration(_))
    ));
    // Addresses nobody holds, outside the pool and of the other family, are not found.
    for stranger in [Address::V4(0x7f00_0001), Address::V6((0, 1))] {
        match f.call_release_lease(&mut g.store, h, stranger, 1).unwrap() {
            Err(PoolError::NotFound(ip)) => assert_eq!(ip, text(&stranger)),
            other => panic!("{stranger:?}: {other:?}"),
        }
    }
    f.call_release_lease(&mut g.store, h, b.ip, b.generation)
        .unwrap()
        .unwrap();
    assert!(
        f.call_get_binding(&mut g.store, "p", &text(&b.ip))
            .unwrap()
            .unwrap()
            .is_none()
    );
    let c = f
        .call_allocate_lease(&mut g.store, h, &owner("t", "c", ResourceType::Pod))
        .unwrap()
        .unwrap();
    assert_eq!(
        text(&c.ip),
        text(&b.ip),
        "sequential hands the freed address out again"
    );
    // An IPv6 address crosses as its two halves, both ways.
    add_pool(&mut g, "v6", "::1/128");
    let h6 = f.call_pool_handle(&mut g.store, "v6").unwrap().unwrap();
    assert_ne!(h6, h);
    let v6 = f
        .call_allocate_lease(&mut g.store, h6, &owner("t", "d", ResourceType::Vm))
        .unwrap()
        .unwrap();
    assert!(matches!(v6.ip, Address::V6((0, 1))), "{:?}", v6.ip);
    f.call_release_lease(&mut g.store, h6, v6.ip, v6.generation)
        .unwrap()
        .unwrap();
    assert!(
        f.call_get_binding(&mut g.store, "v6", "::1")
            .unwrap()
            .unwrap()
            .is_none()
    );
}
