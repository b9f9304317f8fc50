//! Which way the request goes: through a proxy or not (as curl picks one), and what the
//! user's instance may therefore reach.

use std::sync::Arc;

use super::ExecArgs;
use crate::engine;
use crate::format::proxy::{self, ProxyUrl};
use crate::runtime::Policy;

/// The first of the variables that is set (and not empty).
fn first_set(env: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()))
}

/// The proxy for `url`, as curl picks it: `-x` (`""` for none), else `http_proxy` for http
/// (lower case only, as curl: `HTTP_PROXY` may come from a CGI request's `Proxy:` header),
/// `https_proxy` or `HTTPS_PROXY` for https, then `all_proxy` or `ALL_PROXY`; none when
/// `--noproxy` (else `no_proxy` or `NO_PROXY`) lists the host.
pub fn proxy_for(
    args: &ExecArgs,
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ProxyUrl>, String> {
    let Ok(u) = url::Url::parse(url) else {
        return Ok(None);
    };
    let chosen = match &args.proxy {
        Some(p) => Some(p.clone()),
        None => {
            let scheme = match u.scheme() {
                "https" => first_set(env, &["https_proxy", "HTTPS_PROXY"]),
                _ => first_set(env, &["http_proxy"]),
            };
            scheme.or_else(|| first_set(env, &["all_proxy", "ALL_PROXY"]))
        }
    };
    let Some(chosen) = chosen.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let no_proxy = match &args.noproxy {
        Some(list) => Some(list.clone()),
        None => first_set(env, &["no_proxy", "NO_PROXY"]),
    };
    let host = u.host_str().unwrap_or_default();
    if no_proxy.is_some_and(|list| proxy::bypassed(&list, host)) {
        return Ok(None);
    }
    proxy::parse(&chosen, args.proxy_user.as_deref()).map(Some)
}

/// What the instance may reach: the URL's host (any port of it with `-L`), or the proxy
/// alone; `--resolve`'s addresses; the source address asked for.
pub async fn policy_for(
    args: &ExecArgs,
    url: &str,
    proxy: Option<&ProxyUrl>,
    params: &serde_json::Value,
) -> Arc<Policy> {
    let policy = Arc::new(Policy::default());
    match proxy {
        Some(p) => engine::allow_proxy(&policy, p).await,
        None => {
            engine::allow_url(&policy, url).await;
            if args.location {
                for t in engine::target_of_url(url).await.unwrap_or_default() {
                    policy.allow_host(t.ip());
                }
            }
        }
    }
    for r in &args.resolve {
        engine::allow_resolved(&policy, r, args.location);
    }
    let bind = params["bind_ip"].as_str().and_then(|ip| ip.parse().ok());
    if let Some(ip) = bind {
        policy.allow_bind(ip);
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        exec: ExecArgs,
    }

    fn args(extra: &[&str]) -> ExecArgs {
        let mut argv = vec!["exec"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).exec
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn proxies_as_curl_picks_them() {
        let env = env_of(&[
            ("http_proxy", "127.0.0.1:3128"),
            ("HTTPS_PROXY", "http://127.0.0.2:3129"),
            ("HTTP_PROXY", "127.0.0.9:1"),
            ("no_proxy", "skip.test"),
        ]);
        let a = args(&["http://a.test/"]);
        let p = |url: &str, a: &ExecArgs| proxy_for(a, url, &env).unwrap().map(|p| p.url);
        assert_eq!(
            p("http://a.test/", &a).as_deref(),
            Some("http://127.0.0.1:3128")
        );
        assert_eq!(
            p("https://a.test/", &a).as_deref(),
            Some("http://127.0.0.2:3129")
        );
        assert_eq!(p("http://www.skip.test/", &a), None);
        let off = args(&["-x", "", "http://a.test/"]);
        assert_eq!(p("http://a.test/", &off), None);
        let own = args(&[
            "-x",
            "127.0.0.5:8",
            "-U",
            "u:p",
            "--noproxy",
            "",
            "http://a/",
        ]);
        assert_eq!(
            p("http://www.skip.test/", &own).as_deref(),
            Some("http://u:p@127.0.0.5:8")
        );
        // Upper-case HTTP_PROXY alone is not read, as curl.
        let upper = env_of(&[("HTTP_PROXY", "127.0.0.9:1")]);
        assert_eq!(proxy_for(&a, "http://a.test/", &upper).unwrap(), None);
    }
}
