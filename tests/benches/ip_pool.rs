//! allocate+release per second, natively and through the ip-pool component in wasmtime, on an
//! empty pool and a 90%-full one (IPv4 /16; IPv6 /64 with one million scattered bindings, as
//! 90% of a /64 cannot be held by anyone), and heap bytes per binding. Prints a markdown table.
//!
//! `cargo bench -p integration-tests --bench ip_pool [-- --quick]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use integration_tests::PoolGuest;
use integration_tests::pool_bindings::exports::scheduler::core_libs::ip_pool as wit;
use ip_pool::{IpPools, Owner, PoolConfig, ResourceType};

/// Counts heap bytes while `COUNTING` is on (only around the heap measurement, so the
/// timed loops pay no atomic per allocation).
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(l.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_sub(l.size(), Ordering::Relaxed);
        }
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(n, Ordering::Relaxed);
            ALLOCATED.fetch_sub(l.size(), Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

struct Case {
    name: &'static str,
    cidr: &'static str,
    /// Addresses to bind before measuring, scattered over the range.
    fill: u64,
    span: u64,
}

/// A scattered, repeat-free sequence over 0..span (multiplicative step coprime with span).
fn scatter(i: u64, span: u64) -> u64 {
    (i.wrapping_mul(2_654_435_761) % span + span) % span
}

fn offset_ip(cidr: &str, off: u64) -> String {
    let base = cidr.split('/').next().unwrap();
    match base.parse::<std::net::IpAddr>().unwrap() {
        std::net::IpAddr::V4(v) => std::net::Ipv4Addr::from(u32::from(v) + off as u32).to_string(),
        std::net::IpAddr::V6(v) => {
            std::net::Ipv6Addr::from(u128::from(v) + u128::from(off)).to_string()
        }
    }
}

fn fill_ips(case: &Case) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut i = 0u64;
    while (out.len() as u64) < case.fill {
        let off = 1 + scatter(i, case.span - 2);
        i += 1;
        if seen.insert(off) {
            out.push(offset_ip(case.cidr, off));
        }
    }
    out
}

fn owners(n: usize) -> Vec<Owner> {
    (0..n)
        .map(|i| Owner::new("bench", format!("r{i}"), ResourceType::Vm))
        .collect()
}

fn native(case: &Case, ops: usize) -> f64 {
    let mut p = IpPools::new();
    p.create_pool("p", PoolConfig::default()).unwrap();
    p.add_cidr("p", case.cidr, true).unwrap();
    for (i, ip) in fill_ips(case).iter().enumerate() {
        p.allocate_specific(
            "p",
            ip,
            &Owner::new("fill", format!("f{i}"), ResourceType::Pod),
        )
        .unwrap();
    }
    let os = owners(1024);
    let start = Instant::now();
    for i in 0..ops {
        native_pair(&mut p, &os[i & 1023]);
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

/// One allocate + release; not inlined, so a profiler can count it alone. The binding is read
/// in place (`BindingRef`), as a native caller would.
#[inline(never)]
fn native_pair(p: &mut IpPools, o: &Owner) {
    let b = std::hint::black_box(p.allocate("p", o).unwrap());
    let (ip, generation) = (b.ip, b.generation);
    std::hint::black_box(p.release_addr("p", ip, generation).unwrap());
}

/// Through the component: `allocate` + `release` (full bindings back), or with `lease`,
/// `allocate-lease` + `release-lease` (only the address and generation back).
fn component(case: &Case, ops: usize, lease: bool) -> f64 {
    let mut g = PoolGuest::new();
    let f = g.pool().clone();
    let cfg = wit::PoolConfig {
        strategy: wit::Strategy::Sequential,
        lease_ttl_ms: None,
        seed: 1,
    };
    f.call_create_pool(&mut g.store, "p", cfg).unwrap().unwrap();
    f.call_add_cidr(&mut g.store, "p", case.cidr, true)
        .unwrap()
        .unwrap();
    for (i, ip) in fill_ips(case).iter().enumerate() {
        let o = wit::Owner {
            tenant: "fill".into(),
            resource: format!("f{i}"),
            resource_type: wit::ResourceType::Pod,
        };
        f.call_allocate_specific(&mut g.store, "p", ip, &o)
            .unwrap()
            .unwrap();
    }
    let os: Vec<wit::Owner> = (0..1024)
        .map(|i| wit::Owner {
            tenant: "bench".into(),
            resource: format!("r{i}"),
            resource_type: wit::ResourceType::Vm,
        })
        .collect();
    let h = f.call_pool_handle(&mut g.store, "p").unwrap().unwrap();
    let start = Instant::now();
    for i in 0..ops {
        if lease {
            lease_pair(&f, &mut g.store, h, &os[i & 1023]);
        } else {
            binding_pair(&f, &mut g.store, &os[i & 1023]);
        }
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

/// One `allocate-lease` + `release-lease`; not inlined, so a profiler can count it alone
/// (`valgrind --tool=callgrind --toggle-collect='*lease_pair*'`).
#[inline(never)]
fn lease_pair(
    f: &wit::Guest,
    store: &mut wasmtime::Store<integration_tests::Ctx>,
    pool: u64,
    o: &wit::Owner,
) {
    let l = f
        .call_allocate_lease(&mut *store, pool, o)
        .unwrap()
        .unwrap();
    f.call_release_lease(store, pool, l.ip, l.generation)
        .unwrap()
        .unwrap();
}

/// One `allocate` + `release`, the full bindings back.
#[inline(never)]
fn binding_pair(
    f: &wit::Guest,
    store: &mut wasmtime::Store<integration_tests::Ctx>,
    o: &wit::Owner,
) {
    let b = f.call_allocate(&mut *store, "p", o).unwrap().unwrap();
    f.call_release(store, "p", &b.ip, b.generation)
        .unwrap()
        .unwrap();
}

fn bytes_per_binding(n: u64) -> f64 {
    let mut p = IpPools::new();
    p.create_pool("p", PoolConfig::default()).unwrap();
    p.add_cidr("p", "fd00::/64", true).unwrap();
    let os: Vec<Owner> = (0..n)
        .map(|i| Owner::new("t", format!("resource-{i}"), ResourceType::Vm))
        .collect();
    COUNTING.store(true, Ordering::SeqCst);
    let before = ALLOCATED.load(Ordering::Relaxed);
    for o in &os {
        p.allocate("p", o).unwrap();
    }
    let after = ALLOCATED.load(Ordering::Relaxed);
    COUNTING.store(false, Ordering::SeqCst);
    (after - before) as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Each target met or not, from the medians (native, component, component with the lease pair)
/// of the four cases in the order of `main`'s `cases`: /16 empty, /16 90% full, /64 empty, /64
/// scattered. The rates are targets on the empty pools (as go-ipam's figure is); full pools are
/// held to within 2x of empty.
fn verdicts(m: &[(f64, f64, f64)]) -> String {
    let [e16, f16, e64, f64_] = m else {
        return String::new();
    };
    let met = |ok: bool| if ok { "met" } else { "not met" };
    let within = |empty: f64, full: f64| empty <= 2.0 * full;
    format!(
        "\nnative >= 10 M/s on the empty pools: {} ({:.2} M on the /16, {:.2} M on the /64); \
         >= 1 M/s through the component on the empty pools, with allocate-lease and \
         release-lease: {} ({:.2} M and {:.2} M; the full bindings {:.2} M and {:.2} M); 90% full \
         within 2x of empty: {} (natively {:.2}x on the /16 and {:.2}x on the /64, through the \
         component {:.2}x and {:.2}x)\n",
        met(e16.0 >= 10e6 && e64.0 >= 10e6),
        e16.0 / 1e6,
        e64.0 / 1e6,
        met(e16.2 >= 1e6 && e64.2 >= 1e6),
        e16.2 / 1e6,
        e64.2 / 1e6,
        e16.1 / 1e6,
        e64.1 / 1e6,
        met(within(e16.0, f16.0)
            && within(e64.0, f64_.0)
            && within(e16.2, f16.2)
            && within(e64.2, f64_.2)),
        e16.0 / f16.0,
        e64.0 / f64_.0,
        e16.2 / f16.2,
        e64.2 / f64_.2,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let machine = integration_tests::machine::MachineCpu::now();
    // `--only native|component` and `--case <part of a case name>`, for profiling.
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let only = flag("--only");
    let case_filter = flag("--case");
    let (ops_native, ops_comp, reps, scale) = if quick {
        (20_000, 2_000, 1, 100)
    } else {
        (2_000_000, 200_000, 5, 1)
    };
    let cases = [
        Case {
            name: "IPv4 /16, empty",
            cidr: "10.0.0.0/16",
            fill: 0,
            span: 65536,
        },
        Case {
            name: "IPv4 /16, 90% full",
            cidr: "10.0.0.0/16",
            fill: 58_982 / scale,
            span: 65536,
        },
        Case {
            name: "IPv6 /64, empty",
            cidr: "fd00::/64",
            fill: 0,
            span: 1 << 40,
        },
        Case {
            name: "IPv6 /64, 1M scattered",
            cidr: "fd00::/64",
            fill: 1_000_000 / scale,
            span: 1 << 40,
        },
    ];
    let mut table = String::from(
        "| pool | native alloc+release/s (median, min-max) | component allocate+release/s | component allocate-lease+release-lease/s | component/native (lease) |\n|---|---|---|---|---|\n",
    );
    // Medians per case, in order: native, component, component with the lease pair.
    let mut medians = Vec::new();
    for case in &cases {
        if case_filter
            .as_ref()
            .is_some_and(|f| !case.name.contains(f.as_str()))
        {
            continue;
        }
        let mut n = Vec::new();
        let mut c = Vec::new();
        let mut l = Vec::new();
        for _ in 0..reps {
            if only.as_deref() != Some("component") {
                n.push(native(case, ops_native));
            }
            if only.as_deref() != Some("native") {
                c.push(component(case, ops_comp, false));
                l.push(component(case, ops_comp, true));
            }
        }
        let (nm, nlo, nhi) = median(n);
        let (cm, clo, chi) = median(c);
        let (lm, llo, lhi) = median(l);
        medians.push((nm, cm, lm));
        table += &format!(
            "| {} | {:.2} M ({:.2}-{:.2}) | {:.2} M ({:.2}-{:.2}) | {:.2} M ({:.2}-{:.2}) | {:.3} |\n",
            case.name,
            nm / 1e6,
            nlo / 1e6,
            nhi / 1e6,
            cm / 1e6,
            clo / 1e6,
            chi / 1e6,
            lm / 1e6,
            llo / 1e6,
            lhi / 1e6,
            lm / nm
        );
    }
    let n = if quick { 10_000 } else { 1_000_000 };
    if only.is_some() || case_filter.is_some() {
        print!("{table}");
        return;
    }
    if !quick {
        table += &verdicts(&medians);
    }
    table += &format!(
        "\nheap per binding (native, {n} bindings on a /64): {:.0} bytes\n",
        bytes_per_binding(n)
    );
    // The ip-pool section of bench/RESULTS.md (the suite writes the part above it).
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/RESULTS.md");
    let prev = std::fs::read_to_string(&path).unwrap_or_default();
    let (head, section) = prev.split_once("\n## ip-pool").unwrap_or((&prev, ""));
    if let Some(m) = &machine {
        table += &format!("\n{}\n", m.report_against(section, section));
    }
    print!("{table}");
    if !quick && only.is_none() && case_filter.is_none() {
        let section = format!(
            "\n## ip-pool allocate+release\n\nMeasured {} on {} by `cargo bench --bench ip_pool`. Targets: >= 10 M/s native, >= 1 M/s through the component, 90% full within 2x of empty (go-ipam publishes 196,687/s in memory on an empty /16). The IPv6 /64 is filled with one million scattered bindings: 90% of a /64 cannot be held by anyone.\n\n{table}",
            integration_tests::machine::utc_now(),
            integration_tests::machine::description()
        );
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = head.trim_end().to_string() + "\n" + &section;
        integration_tests::machine::write_whole(&path, &text).unwrap();
    }
}
