//! Paths of the built components and the composition of `scheduler-executor.wasm`.

/// The socket component (`scheduler:core-libs/socket`), release build.
pub const SOCKET_COMPONENT: &str = env!("SOCKET_COMPONENT_WASM");

/// The ip-pool component (`scheduler:core-libs/ip-pool`), release build.
pub const IP_POOL_COMPONENT: &str = env!("IP_POOL_COMPONENT_WASM");
