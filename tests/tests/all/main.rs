//! The components' integration tests, one binary: each module is a concern (a file of
//! its own), and one link of wasmtime serves them all.

mod alloc_count;
mod compression;
mod executor;
mod jco;
mod nginx;
mod pool_component;
mod socket;
mod store_code;
mod tcp_host;
mod tls;
