//! `servers:`: HTTP servers of the http-server component, each instance on its own address
//! (`scheduler serve`): `[{id, pool | address, instances, port, routes, middleware, limits}]`.
//! A server's routes, middleware and limits are checked as the component reads them.

use super::*;

/// One server: its id, its instances' addresses, its port, and the rest of its configuration
/// as the component reads it (without `address`).
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub id: String,
    pub addresses: Vec<std::net::IpAddr>,
    /// `{id, port, routes, middleware, limits}`; `address` is put in per instance, and each
    /// route's `dir` is the name of its preopened directory.
    pub config: serde_json::Value,
    /// The routes' directories as written (relative to the scenario), each preopened for the
    /// instances as `dirN`.
    pub dirs: Vec<String>,
}

impl ServerSpec {
    /// The directories to preopen (host path under `base`, name) for every instance.
    pub fn preopens(&self, base: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
        self.dirs
            .iter()
            .enumerate()
            .map(|(i, d)| (base.join(d), format!("dir{i}")))
            .collect()
    }

    /// Problems with the directories under `base`: those that are not directories.
    pub fn check_dirs(&self, base: &std::path::Path) -> Vec<String> {
        self.preopens(base)
            .iter()
            .zip(&self.dirs)
            .filter(|((p, _), _)| !p.is_dir())
            .map(|((p, _), d)| {
                format!(
                    "servers {:?}: dir {d:?}: {} is not a directory",
                    self.id,
                    p.display()
                )
            })
            .collect()
    }

    /// The port every instance listens on.
    pub fn port(&self) -> u16 {
        self.config["port"].as_u64().unwrap_or(0) as u16
    }

    /// What `{{ID.url}}`, `{{ID.address}}` and `{{ID.port}}` give user `user` (from 1): the
    /// instances taken in turn.
    pub fn vars_for(&self, user: u32) -> std::collections::HashMap<String, String> {
        let ip = self.addresses[(user.saturating_sub(1) as usize) % self.addresses.len()];
        let port = self.port();
        let url = match ip {
            std::net::IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
            std::net::IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        };
        [
            ("url".to_string(), url),
            ("address".to_string(), ip.to_string()),
            ("port".to_string(), port.to_string()),
        ]
        .into()
    }

    /// The component's configuration for instance `i`.
    pub fn config_for(&self, i: usize) -> String {
        let mut c = self.config.clone();
        c["address"] = self.addresses[i].to_string().into();
        c.to_string()
    }
}

/// The first `n` addresses of `pool`'s ranges.
fn pool_addresses(pool: &PoolSpec, n: usize) -> Result<Vec<std::net::IpAddr>, String> {
    let mut out = Vec::with_capacity(n);
    for r in &pool.ranges {
        let (first, last) = pools::check_cidr(r, pool.reserve_network_broadcast)?;
        let mut k = first;
        while k <= last && out.len() < n {
            out.push(pools::key_ip(k));
            k += 1;
        }
    }
    if out.len() < n {
        return Err(format!(
            "pool {:?} has {} addresses, {n} instances asked for",
            pool.id,
            out.len()
        ));
    }
    Ok(out)
}

/// One server at `path`.
fn server(w: &mut Walker, v: &Value, path: &str, pools: &[PoolSpec]) -> Option<ServerSpec> {
    let m = w.typed::<schema::Server>(v, path)?;
    let id = m.id.text();
    let instances = match m.instances {
        None => 1,
        Some(n) if (1..=1024).contains(&n) => n as usize,
        Some(_) => {
            w.problem(&join(path, "instances"), "a count from 1 to 1024");
            return None;
        }
    };
    let addresses = addresses(w, &m, path, instances, pools)?;
    let Some(port) = u16::try_from(m.port).ok().filter(|p| *p != 0) else {
        w.problem(&join(path, "port"), "required: a port from 1 to 65535");
        return None;
    };
    let mut config = serde_json::json!({ "id": id, "port": port });
    for (k, x) in [
        ("routes", &m.routes),
        ("middleware", &m.middleware),
        ("limits", &m.limits),
    ] {
        if let Some(x) = x {
            config[k] = yaml_to_json(x);
        }
    }
    // Each route's dir becomes the name of its preopened directory.
    let mut dirs: Vec<String> = Vec::new();
    for r in config["routes"].as_array_mut().into_iter().flatten() {
        if let Some(d) = r.get("dir").and_then(|d| d.as_str()).map(str::to_string) {
            let n = dirs.iter().position(|x| *x == d).unwrap_or_else(|| {
                dirs.push(d.clone());
                dirs.len() - 1
            });
            r["dir"] = format!("dir{n}").into();
        }
    }
    let spec = ServerSpec {
        id,
        addresses,
        config,
        dirs,
    };
    if let Err(e) = http_server_core::Config::parse(&spec.config_for(0)) {
        w.problem(path, e);
        return None;
    }
    Some(spec)
}

/// The instances' addresses: a pool's first, or the one address given.
fn addresses(
    w: &mut Walker,
    m: &schema::Server,
    path: &str,
    instances: usize,
    pools: &[PoolSpec],
) -> Option<Vec<std::net::IpAddr>> {
    match (&m.pool, &m.address) {
        (Some(p), None) => {
            let p = p.text();
            let Some(pool) = pools.iter().find(|x| x.id == p) else {
                w.problem(
                    &join(path, "pool"),
                    format!("no pool {p:?} in workbook.ip_pools"),
                );
                return None;
            };
            pool_addresses(pool, instances)
                .map_err(|e| w.problem(&join(path, "instances"), e))
                .ok()
        }
        (None, Some(a)) => {
            let a = a.text();
            match a.parse::<std::net::IpAddr>() {
                Ok(ip) if instances == 1 => Some(vec![ip]),
                Ok(_) => {
                    w.problem(
                        &join(path, "instances"),
                        "one address serves one instance: give a pool",
                    );
                    None
                }
                Err(_) => {
                    w.problem(
                        &join(path, "address"),
                        format!("{a:?} is not an IP address"),
                    );
                    None
                }
            }
        }
        _ => {
            w.problem(path, "give a pool (its first addresses) or an address");
            None
        }
    }
}

/// `servers: [...]`.
pub(super) fn scenario_servers(
    w: &mut Walker,
    v: Option<&Value>,
    pools: &[PoolSpec],
) -> Vec<ServerSpec> {
    let mut out: Vec<ServerSpec> = Vec::new();
    for (i, s) in w.list(v, "servers").iter().enumerate() {
        let path = format!("servers[{i}]");
        if let Some(spec) = server(w, s, &path, pools) {
            if out.iter().any(|o| o.id == spec.id) {
                w.problem(
                    &join(&path, "id"),
                    format!("duplicate server id {:?}", spec.id),
                );
            }
            out.push(spec);
        }
    }
    out
}
