//! IP addresses to and from text, and quoted strings for messages, written without
//! `core::fmt`'s formatting machinery and `core::net`'s parser. The components use these, so
//! each of them carries a few hundred bytes here instead of several kilobytes of `Display`,
//! `Debug` and parser code. Both directions are checked against `core` in the tests.

#![no_std]

extern crate alloc;

use alloc::string::String;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::ops::{Div, Rem};

/// An address as `core`'s `Display` writes it (RFC 5952 for IPv6, `::ffff:a.b.c.d` for
/// IPv4-mapped addresses).
pub fn format_ip(ip: IpAddr) -> String {
    let mut out = Buf::default();
    match ip {
        IpAddr::V4(v4) => push_v4(&mut out, v4),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if seg[..5] == [0; 5] && seg[5] == 0xffff {
                out.extend(b"::ffff:");
                push_v4(&mut out, Ipv4Addr::from(u128::from(v6) as u32));
            } else {
                push_v6(&mut out, &seg);
            }
        }
    }
    // Only ASCII digits, hex letters, '.' and ':' were written.
    String::from(core::str::from_utf8(out.bytes()).unwrap_or_default())
}

/// Text of an address on the stack: the longest form, `ffff:...:ffff` or
/// `::ffff:255.255.255.255`, has 39 bytes.
struct Buf {
    b: [u8; 40],
    n: usize,
}

impl Default for Buf {
    fn default() -> Self {
        Buf { b: [0; 40], n: 0 }
    }
}

impl Buf {
    #[inline]
    fn push(&mut self, c: u8) {
        if let Some(slot) = self.b.get_mut(self.n) {
            *slot = c;
            self.n += 1;
        }
    }

    fn extend(&mut self, s: &[u8]) {
        for &c in s {
            self.push(c);
        }
    }

    fn last(&self) -> Option<u8> {
        self.n.checked_sub(1).map(|i| self.b[i])
    }

    fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

fn push_v6(out: &mut Buf, seg: &[u16; 8]) {
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
            out.extend(b"::");
            i += best_len;
            continue;
        }
        if i > 0 && out.last() != Some(b':') {
            out.push(b':');
        }
        push_hex(out, seg[i]);
        i += 1;
    }
}

fn push_v4(out: &mut Buf, v4: Ipv4Addr) {
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

fn push_hex(out: &mut Buf, v: u16) {
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

/// `ip:port`, or `[ip]:port` for IPv6.
pub fn format_socket_addr(addr: SocketAddr) -> String {
    let mut out = String::with_capacity(47);
    if addr.is_ipv6() {
        out.push('[');
        out.push_str(&format_ip(addr.ip()));
        out.push(']');
    } else {
        out.push_str(&format_ip(addr.ip()));
    }
    out.push(':');
    let mut digits = [0u8; 5];
    let mut n = 0;
    let mut port = addr.port();
    loop {
        digits[n] = b'0' + (port % 10) as u8;
        n += 1;
        port /= 10;
        if port == 0 {
            break;
        }
    }
    out.extend(digits[..n].iter().rev().map(|&d| char::from(d)));
    out
}

/// Append `n` in decimal (64-bit arithmetic: ports, lengths, counts).
pub fn push_decimal(out: &mut String, n: u64) {
    push_digits(out, n);
}

/// A number in decimal (counts of addresses reach 2^128).
pub fn decimal(n: u128) -> String {
    let mut out = String::new();
    push_digits(&mut out, n);
    out
}

/// The one digit loop, in the caller's width: `u64` on hot paths (128-bit division is a
/// library call on wasm32), `u128` for address counts.
fn push_digits<T>(out: &mut String, mut n: T)
where
    T: Copy + PartialEq + From<u8> + TryInto<u8> + Div<Output = T> + Rem<Output = T>,
{
    let (zero, ten) = (T::from(0), T::from(10));
    let mut digits = [0u8; 39];
    let mut at = digits.len();
    loop {
        at -= 1;
        // A remainder of 10 is below 10: the conversion cannot fail.
        digits[at] = b'0' + (n % ten).try_into().unwrap_or(0);
        n = n / ten;
        if n == zero {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// An address in the forms `core` accepts: dotted decimal without leading zeros for IPv4;
/// hex groups with at most one `::` and an optional trailing dotted quad for IPv6.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let b = text.as_bytes();
    if b.contains(&b':') {
        parse_v6(b).map(IpAddr::V6)
    } else {
        parse_v4(b).map(IpAddr::V4)
    }
}

pub fn parse_v4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = b.split(|&c| c == b'.');
    for slot in &mut octets {
        *slot = octet(parts.next()?)?;
    }
    match parts.next() {
        None => Some(Ipv4Addr::from(octets)),
        Some(_) => None,
    }
}

fn octet(d: &[u8]) -> Option<u8> {
    if d.is_empty() || d.len() > 3 || (d.len() > 1 && d[0] == b'0') {
        return None;
    }
    let mut v = 0u16;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u16::from(c - b'0');
    }
    u8::try_from(v).ok()
}

pub fn parse_v6(b: &[u8]) -> Option<Ipv6Addr> {
    let mut groups = [0u16; 8];
    match b.windows(2).position(|w| w == b"::") {
        None => {
            if read_groups(b, &mut groups)? != 8 {
                return None;
            }
        }
        Some(at) => {
            let (head, tail) = (&b[..at], &b[at + 2..]);
            // `::` stands for at least one zero group, so each side has at most seven, and an
            // embedded IPv4 address may only end the whole address.
            let mut h = [0u16; 7];
            let hn = if head.is_empty() {
                0
            } else {
                if head.contains(&b'.') {
                    return None;
                }
                read_groups(head, &mut h)?
            };
            let mut t = [0u16; 7];
            let tn = if tail.is_empty() {
                0
            } else {
                read_groups(tail, &mut t[..7 - hn])?
            };
            groups[..hn].copy_from_slice(&h[..hn]);
            groups[8 - tn..].copy_from_slice(&t[..tn]);
        }
    }
    Some(Ipv6Addr::from(groups))
}

/// `a:b:c`, the last part possibly a dotted quad (two groups); fills at most `out.len()`
/// groups and says how many.
fn read_groups(b: &[u8], out: &mut [u16]) -> Option<usize> {
    let mut n = 0;
    let mut parts = b.split(|&c| c == b':').peekable();
    while let Some(part) = parts.next() {
        if part.contains(&b'.') {
            if parts.peek().is_some() || n + 2 > out.len() {
                return None;
            }
            let [a, b, c, d] = parse_v4(part)?.octets();
            out[n] = u16::from_be_bytes([a, b]);
            out[n + 1] = u16::from_be_bytes([c, d]);
            n += 2;
        } else {
            if part.is_empty() || part.len() > 4 || n >= out.len() {
                return None;
            }
            let mut v = 0u16;
            for &c in part {
                v = v << 4 | u16::from(char::from(c).to_digit(16)? as u8);
            }
            out[n] = v;
            n += 1;
        }
    }
    Some(n)
}

/// `s` as a JSON string literal: in double quotes, with `"`, `\\` and control characters
/// escaped (RFC 8259). Used for JSON output and to quote text in error messages.
pub fn push_quoted(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(char::from(HEX[(c as usize) >> 4]));
                out.push(char::from(HEX[(c as usize) & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A string quoted for an error message (as [`push_quoted`] writes it).
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(self.0.len() + 2);
        push_quoted(&mut out, self.0);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use std::vec;
    use std::vec::Vec;

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

    #[test]
    fn socket_addresses_match_display() {
        for text in [
            "127.0.0.1:80",
            "0.0.0.0:0",
            "[::1]:8080",
            "[fd00::1:2]:65535",
            "[::ffff:1.2.3.4]:9",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(format_socket_addr(addr), addr.to_string());
        }
    }

    /// Every string from a generator of address-like text parses the way `core` parses it.
    #[test]
    fn parse_ip_agrees_with_core() {
        let mut fixed: Vec<String> = [
            "",
            "1.2.3.4",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.4 ",
            "::",
            "::1",
            "1::",
            ":::",
            "1:::2",
            "1::2::3",
            "::ffff:1.2.3.4",
            "1.2.3.4::",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "1:2:3:4:5::1.2.3.4",
            "1:2:3:4:5:6::1.2.3.4",
            "1:2:3:4:5:6:7::",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7",
            "::1:2:3:4:5:6:7:8",
            "12345::",
            "abcd:EF01::",
            "::1.2.3",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7",
            ":1::",
            "1::2:",
            "0000:0000::0",
            "fe80::1%1",
            "[::1]",
            "+1.2.3.4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let alphabet = b"0123456789abcdefABCDEF:::....g 00";
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let len = (next() % 24) as usize;
            let s: String = (0..len)
                .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
                .collect();
            fixed.push(s);
        }
        // Valid addresses written out, and then damaged by one character.
        for _ in 0..20_000 {
            let v = u128::from(next()) << 64 | u128::from(next());
            let v = v & !(u128::MAX >> (next() % 128) << (next() % 64));
            let text = format!("{}", Ipv6Addr::from(v));
            fixed.push(text.clone());
            let mut bytes = text.into_bytes();
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = alphabet[(next() % alphabet.len() as u64) as usize];
            fixed.push(String::from_utf8(bytes).unwrap());
            fixed.push(format!("{}", Ipv4Addr::from(next() as u32)));
        }
        for s in &fixed {
            assert_eq!(parse_ip(s), s.parse::<IpAddr>().ok(), "{s:?}");
        }
    }

    #[test]
    fn decimal_matches_display() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut cases = vec![
            0u128,
            1,
            9,
            10,
            99,
            100,
            u128::MAX,
            u128::from(u64::MAX) + 1,
        ];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push((u128::from(x) << 64 | u128::from(x.rotate_left(17))) >> (x % 128));
        }
        for n in cases {
            assert_eq!(decimal(n), n.to_string());
            let small = n as u64;
            let mut out = String::from("x");
            push_decimal(&mut out, small);
            assert_eq!(out, std::format!("x{small}"));
        }
    }

    #[test]
    fn quoting_escapes_what_json_requires() {
        for (s, want) in [
            ("", r#""""#),
            ("abc", r#""abc""#),
            ("a\"b", r#""a\"b""#),
            ("back\\slash", r#""back\\slash""#),
            ("line\nbreak\ttab\r", r#""line\nbreak\ttab\r""#),
            ("nul\u{0}x\u{1f}\u{8}\u{c}", r#""nul\u0000x\u001f\b\f""#),
            ("héllo \u{7f}", "\"héllo \u{7f}\""),
        ] {
            assert_eq!(Quoted(s).to_string(), want);
        }
    }
}
