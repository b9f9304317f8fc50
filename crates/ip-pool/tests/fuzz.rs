//! Fuzzing on the stable toolchain (see crates/http-core/tests/fuzz.rs): address and CIDR
//! parsing, and restoring snapshots, arbitrary or mutated from real ones. Every input gives a
//! value or a typed error; a restored pool keeps its invariants.

use ip_pool::{IpPools, Owner, ResourceType};
use proptest::prelude::*;

fn owner(i: u32) -> Owner {
    Owner {
        tenant: format!("t{}", i % 3),
        resource: format!("r{i}"),
        resource_type: ResourceType::Custom("user".into()),
    }
}

/// A real snapshot: two pools, some addresses held.
fn snapshot() -> Vec<u8> {
    let mut p = IpPools::new();
    p.create_pool("a", Default::default()).unwrap();
    p.add_cidr("a", "127.0.60.0/28", true).unwrap();
    p.create_pool("b", Default::default()).unwrap();
    p.add_range("b", "::1:0", "::1:ff").unwrap();
    for i in 0..5 {
        p.allocate("a", &owner(i)).unwrap();
        p.allocate("b", &owner(i)).unwrap();
    }
    p.snapshot()
}

proptest! {
    #[test]
    fn addresses_and_ranges(text in prop_oneof![
        ".{0,48}",
        "[0-9./:a-f-]{0,48}",
        "(25[0-9]|1?[0-9]{1,3})(\\.[0-9]{1,4}){3}/[0-9]{1,3}",
    ]) {
        let _ = ip_pool::addr::parse_ip(&text);
        let _ = ip_pool::addr::parse_cidr(&text);
        let mut p = IpPools::new();
        p.create_pool("x", Default::default()).unwrap();
        if let Ok(r) = p.add_cidr("x", &text, true) {
            prop_assert!(r.first <= r.last);
            let st = p.stats("x").unwrap();
            prop_assert_eq!(st.allocated, 0);
        }
        if let Some((a, b)) = text.split_once('-') {
            let _ = p.add_range("x", a, b);
        }
    }

    #[test]
    fn snapshots_restore_or_are_refused(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 0..6),
        random in proptest::collection::vec(any::<u8>(), 0..256),
        use_random in any::<bool>(),
    ) {
        let mut bytes = if use_random { random } else { snapshot() };
        for (at, byte, op) in edits {
            let at = if bytes.is_empty() { 0 } else { at % (bytes.len() + 1) };
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                2 if at < bytes.len() => { bytes.remove(at); }
                _ => bytes.truncate(at),
            }
        }
        let mut p = IpPools::new();
        if p.restore(&bytes).is_ok() {
            // Whatever was restored is usable and consistent.
            for name in p.pool_names() {
                let st = p.stats(&name).unwrap();
                let held = p.list_by_tenant(&name, "t0").unwrap().len() as u64
                    + p.list_by_tenant(&name, "t1").unwrap().len() as u64
                    + p.list_by_tenant(&name, "t2").unwrap().len() as u64;
                prop_assert!(held <= st.allocated);
                let _ = p.allocate(&name, &owner(99));
                let _ = p.release_owner(&name, &owner(0));
            }
            let again = p.snapshot();
            let mut q = IpPools::new();
            prop_assert!(q.restore(&again).is_ok(), "a pool's own snapshot restores");
        }
    }
}
