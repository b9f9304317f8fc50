//! The host's integration tests, one binary: each module is a concern (a file of its
//! own), and one link of wasmtime serves them all.

mod body_files;
mod common;
mod cookies;
mod curl;
mod dashboard;
mod deploy;
mod etcd;
mod hostile;
mod http2;
mod https;
mod k6;
mod layout;
mod meaning;
mod outputs;
mod proxy;
mod readme;
mod redirects;
mod scheduler;
mod schema;
mod segments;
mod server;
mod upload;
mod websocket;
