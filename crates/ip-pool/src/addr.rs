//! Addresses as one `u128` key space: IPv6 as itself, IPv4 as its IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`). IPv6 ranges inside `::ffff:0:0/96` are refused so the two never mix.

#[allow(unused_imports)]
use crate::prelude::*;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::PoolError;

pub const V4_BASE: u128 = 0xffff_0000_0000;
pub const V4_END: u128 = V4_BASE + u32::MAX as u128;

pub fn to_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => V4_BASE | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub fn from_key(k: u128) -> IpAddr {
    if (V4_BASE..=V4_END).contains(&k) {
        IpAddr::V4(Ipv4Addr::from((k - V4_BASE) as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(k))
    }
}

pub fn is_v4_key(k: u128) -> bool {
    (V4_BASE..=V4_END).contains(&k)
}

pub fn parse_ip(text: &str) -> Result<IpAddr, PoolError> {
    let t = text.trim();
    let bare = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t);
    net_text::parse_ip(bare).ok_or_else(|| PoolError::InvalidAddress(text.to_string()))
}

/// A parsed range: inclusive key bounds, and whether it came from an IPv4 CIDR of /30 or
/// wider (whose network and broadcast addresses are reserved by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedRange {
    pub start: u128,
    pub end: u128,
    pub v4_cidr_prefix: Option<u8>,
}

/// `192.168.1.0/24` or `fd00::/64`. Host bits must be zero.
pub fn parse_cidr(text: &str) -> Result<ParsedRange, PoolError> {
    let bad = || PoolError::InvalidCidr(text.to_string());
    let (ip, len) = text.trim().split_once('/').ok_or_else(bad)?;
    let ip = net_text::parse_ip(ip).ok_or_else(bad)?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 3 {
        return Err(bad());
    }
    let len: u32 = len.parse().map_err(|_| bad())?;
    match ip {
        IpAddr::V4(v4) => {
            if len > 32 {
                return Err(bad());
            }
            let n = u32::from(v4);
            let host_mask = if len == 0 {
                u32::MAX
            } else {
                (1u32 << (32 - len)).wrapping_sub(1)
            };
            if n & host_mask != 0 {
                return Err(PoolError::InvalidCidr(format!("{text} (host bits set)")));
            }
            let start = V4_BASE | u128::from(n);
            Ok(ParsedRange {
                start,
                end: start + u128::from(host_mask),
                v4_cidr_prefix: Some(len as u8),
            })
        }
        IpAddr::V6(v6) => {
            if len > 128 {
                return Err(bad());
            }
            if len == 0 {
                return Err(PoolError::InvalidCidr(format!(
                    "{text} (::/0 is not a pool range)"
                )));
            }
            let n = u128::from(v6);
            let host_mask = if len == 128 {
                0
            } else {
                (1u128 << (128 - len)) - 1
            };
            if n & host_mask != 0 {
                return Err(PoolError::InvalidCidr(format!("{text} (host bits set)")));
            }
            check_v6_range(text, n, n + host_mask)?;
            Ok(ParsedRange {
                start: n,
                end: n + host_mask,
                v4_cidr_prefix: None,
            })
        }
    }
}

/// `10.0.0.10-10.0.0.20` (inclusive, same family, start <= end).
pub fn parse_start_end(start: &str, end: &str) -> Result<ParsedRange, PoolError> {
    let a = parse_ip(start)?;
    let b = parse_ip(end)?;
    let text = format!("{start}-{end}");
    if a.is_ipv4() != b.is_ipv4() {
        return Err(PoolError::InvalidRange(format!("{text} (mixed families)")));
    }
    let (s, e) = (to_key(a), to_key(b));
    if s > e {
        return Err(PoolError::InvalidRange(format!("{text} (start after end)")));
    }
    if a.is_ipv6() {
        check_v6_range(&text, s, e)?;
    }
    Ok(ParsedRange {
        start: s,
        end: e,
        v4_cidr_prefix: None,
    })
}

fn check_v6_range(text: &str, s: u128, e: u128) -> Result<(), PoolError> {
    let mapped = (0xffff_0000_0000u128, 0xffff_ffff_ffffu128);
    if s <= mapped.1 && e >= mapped.0 {
        return Err(PoolError::InvalidRange(format!(
            "{text} (overlaps ::ffff:0:0/96; write IPv4 ranges in IPv4 notation)"
        )));
    }
    Ok(())
}

/// `ip` as text, exactly as `Display` writes it (RFC 5952 for IPv6), without the formatting
/// machinery: a component returns an address in every binding, and this is several times
/// cheaper there.
pub use net_text::format_ip;
