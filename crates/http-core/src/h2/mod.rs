//! HTTP/2 (RFC 9113) for the client: HPACK (RFC 7541), frames, and a connection that carries
//! a user's requests one stream after another. Over plain TCP with prior knowledge (h2c).

pub mod conn;
mod exchange;
pub mod frame;
pub mod hpack;
pub mod huffman;

/// Hex digits (spaces ignored) as bytes: the RFC's examples in the tests.
#[cfg(test)]
pub(crate) fn hex(s: &str) -> alloc::vec::Vec<u8> {
    let s: alloc::string::String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
