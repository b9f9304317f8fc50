//! The patched wasmtime (`vendor/README.md`) finds a store's code for every funcref in a short
//! list of at most eight codes, and in its maps past that. One store holding a socket
//! component, nine copies of the ip-pool component (each copy its own code) and a second socket
//! must reach each instance's own code on every call, whether that code is in the list or only
//! in the maps: a call sent into another component's code traps or answers wrongly.

use integration_tests::pool_bindings::IpPoolComponent;
use integration_tests::pool_bindings::exports::scheduler::core_libs::ip_pool::{
    Address, Owner, PoolConfig, ResourceType, Strategy,
};
use integration_tests::socket_bindings::SocketComponent;
use integration_tests::*;
use wasmtime::Store;
use wasmtime::component::Component;

/// Instances of the ip-pool component, each from its own copy of the compiled code.
const POOLS: u8 = 9;

fn pool_copies(store: &mut Store<Ctx>) -> Vec<IpPoolComponent> {
    let compiled = Component::from_file(engine(), compose::IP_POOL_COMPONENT).unwrap();
    let bytes = compiled.serialize().unwrap();
    (0..POOLS)
        .map(|_| {
            // SAFETY: the bytes were serialized by this engine just above.
            let copy = unsafe { Component::deserialize(engine(), &bytes) }.unwrap();
            IpPoolComponent::instantiate(&mut *store, &copy, linker()).unwrap()
        })
        .collect()
}

fn socket(store: &mut Store<Ctx>) -> SocketComponent {
    let compiled = Component::from_file(engine(), compose::SOCKET_COMPONENT).unwrap();
    SocketComponent::instantiate(store, &compiled, linker()).unwrap()
}

/// Pool `i` hands out 127.0.(40 + i).1 and .2 (a /30 without its network and broadcast).
fn lease_from(store: &mut Store<Ctx>, pool: &IpPoolComponent, i: u8, round: u8) {
    let f = pool.scheduler_core_libs_ip_pool();
    if round == 0 {
        let cfg = PoolConfig {
            strategy: Strategy::Sequential,
            lease_ttl_ms: None,
            seed: 1,
        };
        f.call_create_pool(&mut *store, "p", cfg).unwrap().unwrap();
        let cidr = format!("127.0.{}.0/30", 40 + i);
        f.call_add_cidr(&mut *store, "p", &cidr, true)
            .unwrap()
            .unwrap();
    }
    let owner = Owner {
        tenant: "t".into(),
        resource: format!("r{round}"),
        resource_type: ResourceType::Vm,
    };
    let pool = f.call_pool_handle(&mut *store, "p").unwrap().unwrap();
    let lease = f.call_allocate_lease(store, pool, &owner).unwrap().unwrap();
    let want = u32::from_be_bytes([127, 0, 40 + i, 1 + round]);
    assert!(
        matches!(lease.ip, Address::V4(n) if n == want),
        "pool {i}, round {round}: {:?}",
        lease.ip
    );
}

fn make_socket(store: &mut Store<Ctx>, s: &SocketComponent) {
    let api = s.scheduler_core_libs_socket();
    let sock = api
        .call_create_socket(&mut *store, AddressFamily::Ipv4, Protocol::Udp)
        .unwrap()
        .unwrap();
    let family = api.socket().call_family(&mut *store, sock).unwrap();
    assert!(matches!(family, AddressFamily::Ipv4));
    sock.resource_drop(store).unwrap();
}

#[test]
fn every_call_reaches_its_own_code_in_the_list_and_past_it() {
    let mut store = Store::new(engine(), Ctx::new(loopback_policy()));
    let first = socket(&mut store);
    let pools = pool_copies(&mut store);
    let last = socket(&mut store);
    for round in 0..2 {
        for (i, pool) in pools.iter().enumerate() {
            lease_from(&mut store, pool, i as u8, round);
        }
        make_socket(&mut store, &first);
        make_socket(&mut store, &last);
    }
}
