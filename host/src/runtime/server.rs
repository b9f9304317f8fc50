//! The server artifact (`scheduler-server.wasm`: the http-server component over its own socket
//! component) in wasmtime: one instance per server address, its policy binding and listening
//! on that address only and connecting nowhere.

use std::net::IpAddr;
use std::sync::Arc;

use wasmtime::{Config, Engine, Store};

use super::{Policy, Tls, UserCtx, fail, linker, store};

pub mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/server"],
        world: "scheduler:server/scheduler-server",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use bindings::exports::scheduler::server::http_server::Served;

/// The server artifact compiled once, for any number of instances.
pub struct ServerRuntime {
    engine: Engine,
    pre: wasmtime::component::InstancePre<UserCtx>,
    indices: bindings::SchedulerServerIndices,
    tls: Tls,
}

/// One server instance.
pub struct ServerInstance {
    store: Store<UserCtx>,
    bindings: bindings::SchedulerServer,
}

impl ServerRuntime {
    pub fn new() -> Result<ServerRuntime, String> {
        let mut config = Config::new();
        super::perfmap_if_asked(&mut config);
        let engine = Engine::new(&config).map_err(fail("engine"))?;
        let component = compose::cache::component(&engine, compose::SERVER_BYTES)
            .map_err(fail("loading the built-in server artifact"))?;
        let pre = linker(&engine)?
            .instantiate_pre(&component)
            .map_err(fail("pre-instantiating the server"))?;
        let indices =
            bindings::SchedulerServerIndices::new(&pre).map_err(fail("binding the server"))?;
        let tls = Tls::new(&Default::default(), &[])?;
        Ok(ServerRuntime {
            engine,
            pre,
            indices,
            tls,
        })
    }

    /// An instance that may bind and listen on `ip` only, and read `dirs` (host path, name).
    pub async fn instantiate(
        &self,
        ip: IpAddr,
        dirs: &[(std::path::PathBuf, String)],
    ) -> Result<ServerInstance, String> {
        let (tls, _) = self.tls.client(None).context();
        let mut store = store(&self.engine, Arc::new(Policy::server(ip)), tls, dirs)?;
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(fail("instantiating the server"))?;
        let bindings = self
            .indices
            .load(&mut store, &instance)
            .map_err(fail("binding the server instance"))?;
        Ok(ServerInstance { store, bindings })
    }
}

impl ServerInstance {
    /// Listen as `config` (JSON) says: the address bound, or why not.
    pub async fn start(&mut self, config: &str) -> Result<Result<String, String>, String> {
        self.bindings
            .scheduler_server_http_server()
            .call_start(&mut self.store, config)
            .await
            .map_err(fail("start trapped"))
    }

    /// Serve for about `ms`; the counts so far.
    pub async fn serve(&mut self, ms: u64) -> Result<Result<Served, String>, String> {
        self.bindings
            .scheduler_server_http_server()
            .call_serve(&mut self.store, ms)
            .await
            .map_err(fail("serve trapped"))
    }

    pub async fn stop(&mut self) -> Result<(), String> {
        self.bindings
            .scheduler_server_http_server()
            .call_stop(&mut self.store)
            .await
            .map_err(fail("stop trapped"))
    }
}
