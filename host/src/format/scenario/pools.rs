//! Address ranges: what a CIDR or FIRST-LAST range gives, and overlaps between pools.

use super::*;

/// The first and last address of a range as the pool reads it (the pool has the last word when
/// the scenario runs).
/// The addresses a range gives, first and last: every address of a CIDR, as the original
/// gives them (a /30 serves 4 users), unless `reserve` keeps an IPv4 CIDR's network and
/// broadcast addresses out (/30 and wider). Every mode (one process, segments, etcd) takes
/// its addresses from here.
pub(crate) fn check_cidr(text: &str, reserve: bool) -> Result<(u128, u128), String> {
    let mut pools = ip_pool::IpPools::new();
    pools
        .create_pool("check", Default::default())
        .map_err(|e| e.to_string())?;
    let r = match text.split_once('-') {
        Some((a, b)) if !text.contains('/') => pools.add_range("check", a.trim(), b.trim()),
        _ => pools.add_cidr("check", text, false),
    };
    let (first, last) = r
        .map(|i| (key(i.first), key(i.last)))
        .map_err(|e| e.to_string())?;
    let v4_wide = text.contains('/')
        && key_ip(first).is_ipv4()
        && text
            .rsplit_once('/')
            .and_then(|(_, n)| n.trim().parse::<u8>().ok())
            .is_some_and(|n| n <= 30);
    Ok(if reserve && v4_wide {
        (first + 1, last - 1)
    } else {
        (first, last)
    })
}

/// The address of a key (`key`'s inverse).
pub(crate) fn key_ip(k: u128) -> std::net::IpAddr {
    let v6 = std::net::Ipv6Addr::from(k);
    match v6.to_ipv4_mapped() {
        Some(v4) => v4.into(),
        None => v6.into(),
    }
}

/// Addresses in one order, IPv4 as IPv4-mapped IPv6.
pub(super) fn key(ip: std::net::IpAddr) -> u128 {
    match ip {
        std::net::IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        std::net::IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Ranges of different pools that share an address: each address has one pool, so that no
/// two users can hold it at once through two pools.
pub(super) fn check_overlaps(w: &mut Walker, ranges: &mut [(u128, u128, usize, String, String)]) {
    ranges.sort_by_key(|r| (r.0, r.1));
    // The range reaching furthest so far: (last, pool, path, text).
    let mut reach: Option<(u128, usize, String, String)> = None;
    for (first, last, pool, path, text) in ranges.iter() {
        if let Some((end, p, other_path, other_text)) = &reach
            && *first <= *end
            && *p != *pool
        {
            w.problem(
                path,
                format!("{text} overlaps {other_text} of another pool ({other_path}); an address can be in one pool only"),
            );
        }
        if reach.as_ref().is_none_or(|r| *last > r.0) {
            reach = Some((*last, *pool, path.clone(), text.clone()));
        }
    }
}
