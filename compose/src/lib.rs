//! Paths of the built components and of the composed `scheduler-executor.wasm` (all built by
//! this crate's build script), and the composition itself.

mod graph;

pub use graph::{EXECUTOR, IP_POOL, SOCKET, compose_executor};

/// The socket component (`scheduler:core-libs/socket`), release build.
pub const SOCKET_COMPONENT: &str = env!("SOCKET_COMPONENT_WASM");

/// The ip-pool component (`scheduler:core-libs/ip-pool`), release build.
pub const IP_POOL_COMPONENT: &str = env!("IP_POOL_COMPONENT_WASM");

/// The http-actions component (imports socket and ip-pool), release build.
pub const HTTP_ACTIONS_COMPONENT: &str = env!("HTTP_ACTIONS_COMPONENT_WASM");

/// The composed executor artifact: exports the executor and ip-pool, imports only WASI.
pub const EXECUTOR_ARTIFACT: &str = env!("EXECUTOR_WASM");
