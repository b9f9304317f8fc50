//! HTTP/2 (RFC 9113) for the client: HPACK (RFC 7541), frames, and a connection that carries
//! a user's requests one stream after another. Over plain TCP with prior knowledge (h2c).

pub mod conn;
mod exchange;
pub mod frame;
pub mod hpack;
pub mod huffman;
