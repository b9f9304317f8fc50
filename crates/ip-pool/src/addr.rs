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
    bare.parse()
        .map_err(|_| PoolError::InvalidAddress(text.to_string()))
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
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
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
pub fn format_ip(ip: IpAddr) -> String {
    let mut out = Vec::with_capacity(39);
    match ip {
        IpAddr::V4(v4) => push_v4(&mut out, v4),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if seg[..5] == [0; 5] && seg[5] == 0xffff {
                out.extend_from_slice(b"::ffff:");
                push_v4(&mut out, Ipv4Addr::from(u128::from(v6) as u32));
            } else {
                push_v6(&mut out, &seg);
            }
        }
    }
    // Only ASCII digits, hex letters, '.' and ':' were written.
    String::from_utf8(out).unwrap_or_default()
}

fn push_v6(out: &mut Vec<u8>, seg: &[u16; 8]) {
    // The longest run of two or more zero groups (the first of equals) becomes "::".
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, &s) in seg.iter().enumerate() {
        if s == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let mut i = 0;
    while i < 8 {
        if best_len >= 2 && i == best {
            out.extend_from_slice(b"::");
            i += best_len;
            continue;
        }
        if i > 0 && out.last() != Some(&b':') {
            out.push(b':');
        }
        push_hex(out, seg[i]);
        i += 1;
    }
}

fn push_v4(out: &mut Vec<u8>, v4: Ipv4Addr) {
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        if o >= 100 {
            out.push(b'0' + o / 100);
        }
        if o >= 10 {
            out.push(b'0' + o / 10 % 10);
        }
        out.push(b'0' + o % 10);
    }
}

fn push_hex(out: &mut Vec<u8>, v: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in [12, 8, 4, 0] {
        let d = (v >> shift) & 0xf;
        if d != 0 || started || shift == 0 {
            out.push(HEX[usize::from(d)]);
            started = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_ip_matches_display() {
        let mut fixed: Vec<IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "127.0.10.100",
            "::",
            "::1",
            "1::",
            "fd00::",
            "fd00::1:0:0:1",
            "1:0:0:1:0:0:0:1",
            "1:0:0:0:1:0:0:1",
            "0:1:0:1:0:1:0:1",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "2001:db8::ff00:42:8329",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        // Random addresses, with zero groups made likely.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut v = 0u128;
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let group = if x.is_multiple_of(3) {
                    0
                } else {
                    (x >> 20) as u16 >> (x % 13)
                };
                v = (v << 16) | u128::from(group);
            }
            fixed.push(IpAddr::V6(Ipv6Addr::from(v)));
            fixed.push(IpAddr::V4(Ipv4Addr::from(v as u32 >> (x % 29))));
        }
        for ip in fixed {
            assert_eq!(format_ip(ip), ip.to_string());
        }
    }
}
