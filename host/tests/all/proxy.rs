//! Proxies: `exec -x`, the proxy environment variables and a scenario's `proxy:`, through a
//! real forward proxy (proxy.py) to real servers, the connection to the proxy leaving from
//! the user's own address.

use std::process::{Command, Output};

use compose::tls::pki::{Ca, Validity};
use integration_tests::nginx::{self, Nginx};
use integration_tests::proxy_py::ProxyPy;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_scheduler");

/// `exec` with these arguments and environment (the proxy variables of the test's own
/// environment removed).
fn exec(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("exec").args(args);
    for v in [
        "http_proxy",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run scheduler")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// nginx with TLS, its certificate from `ca`.
fn nginx_tls(dir: &std::path::Path, ca: &Ca) -> Option<Nginx> {
    let bin = nginx::binary_or_skip()?;
    let leaf = ca
        .server(&["localhost", "127.0.0.1"], Validity::Now)
        .unwrap();
    std::fs::write(dir.join("server.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &leaf.key_pem).unwrap();
    let server = format!(
        "server {{ listen 127.0.0.1:{{port}} ssl; ssl_certificate {}; ssl_certificate_key {}; location / {{ return 200 \"ok\\n\"; }} }}",
        dir.join("server.pem").display(),
        dir.join("server.key").display(),
    );
    Some(Nginx::start_server(&bin, "proxied-https", "", &server).unwrap())
}

#[test]
fn exec_goes_through_a_forward_proxy_from_its_own_address() {
    let Some(proxy) = ProxyPy::start_or_skip("exec", Some("ann:s3cret")) else {
        return;
    };
    let (target, log) = recording_target();
    let url = target.url("/via");
    let with_auth = format!("http://ann:s3cret@127.0.0.1:{}", proxy.port);
    let out = exec(
        &[
            "-x",
            &with_auth,
            "--bind-ip",
            "127.0.0.7",
            "-w",
            "%{http_code}",
            &url,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{}200");
    // The proxy saw the user's address; the target saw the proxy's.
    let seen = proxy.log_with("127.0.0.7:", 1);
    assert!(
        seen.contains("127.0.0.7:") && seen.contains("/via"),
        "{seen}"
    );
    assert_eq!(log.lock().unwrap().last().unwrap().1, "127.0.0.1");
    // --proxy-user gives the credentials; without them the proxy's 407 is the answer.
    let bare = format!("127.0.0.1:{}", proxy.port);
    let out = exec(
        &[
            "-x",
            &bare,
            "-U",
            "ann:s3cret",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ],
        &[],
    );
    assert_eq!(text(&out.stdout), "200");
    let out = exec(
        &["-x", &bare, "-o", "/dev/null", "-w", "%{http_code}", &url],
        &[],
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "407".into())
    );
    let out = exec(&["-x", &bare, "-f", "-s", &url], &[]);
    assert_eq!(out.status.code(), Some(22));
    // The environment, as curl reads it; no_proxy sends the request straight, from the
    // bound address.
    let out = exec(
        &["-w", "%{http_code}", "-o", "/dev/null", &url],
        &[("http_proxy", &with_auth)],
    );
    assert_eq!(text(&out.stdout), "200", "{}", text(&out.stderr));
    let env = [
        ("http_proxy", with_auth.as_str()),
        ("no_proxy", "localhost,127.0.0.0/8"),
    ];
    let out = exec(&["--bind-ip", "127.0.0.8", "-o", "/dev/null", &url], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(log.lock().unwrap().last().unwrap().1, "127.0.0.8");
    // curl through the same proxy prints the same and exits the same.
    for args in [
        vec!["-s", "-x", with_auth.as_str(), url.as_str()],
        vec!["-s", "-f", "-x", bare.as_str(), url.as_str()],
        vec![
            "-s",
            "-x",
            bare.as_str(),
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            url.as_str(),
        ],
    ] {
        let Ok(c) = Command::new("curl").args(&args).output() else {
            break;
        };
        let e = exec(&args, &[]);
        assert_eq!(
            (e.status.code(), text(&e.stdout)),
            (c.status.code(), text(&c.stdout)),
            "{args:?}"
        );
    }
    // A proxy that does not listen: curl's 7.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = exec(&["-x", &closed.to_string(), "-s", &url], &[]);
    assert_eq!(out.status.code(), Some(7));
    let out = exec(&["-x", "socks5://127.0.0.1:1", &url], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn https_goes_through_a_connect_tunnel() {
    let Some(proxy) = ProxyPy::start_or_skip("tunnel", Some("ann:s3cret")) else {
        return;
    };
    let dir = tmp("proxy-tunnel");
    let ca = Ca::new("proxy test CA").unwrap();
    std::fs::write(dir.join("ca.pem"), &ca.cert_pem).unwrap();
    let Some(ng) = nginx_tls(&dir, &ca) else {
        return;
    };
    let url = format!("https://127.0.0.1:{}/", ng.port);
    let ca_file = dir.join("ca.pem");
    let ca_file = ca_file.to_str().unwrap();
    let with_auth = format!("http://ann:s3cret@127.0.0.1:{}", proxy.port);
    let out = exec(
        &[
            "-x",
            &with_auth,
            "--cacert",
            ca_file,
            "--bind-ip",
            "127.0.0.9",
            &url,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok\n");
    let seen = proxy.log_with("127.0.0.9:", 1);
    assert!(
        seen.contains(&format!("CONNECT 127.0.0.1:{}", ng.port)),
        "{seen}"
    );
    // https_proxy from the environment; the tunnel refused without credentials: 56.
    let out = exec(&["--cacert", ca_file, &url], &[("https_proxy", &with_auth)]);
    assert_eq!(text(&out.stdout), "ok\n", "{}", text(&out.stderr));
    let bare = format!("127.0.0.1:{}", proxy.port);
    let out = exec(&["-x", &bare, "--cacert", ca_file, &url], &[]);
    assert_eq!(out.status.code(), Some(56));
    assert!(text(&out.stderr).contains("407"), "{}", text(&out.stderr));
}

#[test]
fn a_scenarios_users_reach_the_target_through_its_proxy_from_their_addresses() {
    let Some(proxy) = ProxyPy::start_or_skip("scenario", Some("ann:s3cret")) else {
        return;
    };
    let (target, log) = recording_target();
    let dir = tmp("proxy-scenario");
    let scenario = format!(
        r#"
version: "1.0"
name: proxied
proxy: {{ url: "http://ann:s3cret@127.0.0.1:{pp}", tenants: {{ direct: "" }} }}
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.78.0/30"] }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 2 }}, {{ at_second: 0, spawn_users: 1, tenant_id: direct }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2 }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
actions:
  actions:
    - {{ id: get, call: get, with: {{ url: "{url}/t/{{{{tenant.id}}}}" }} }}
workflows:
  nodes:
    - {{ id: a, type: action, action: get, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#,
        pp = proxy.port,
        url = target.url(""),
    );
    let path = scenario_file(&dir, &scenario);
    let out = run(&["validate", "--strict", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let (out, r) = report(&dir, &scenario);
    assert!(out.status.success(), "{}\n{r}", text(&out.stderr));
    assert_eq!(r["totals"]["ok"], 6, "{r}");
    let log = log.lock().unwrap().clone();
    // The default tenant's requests came through the proxy; the direct tenant's did not.
    let proxied: Vec<_> = log
        .iter()
        .filter(|(p, _)| p.ends_with("/default-tenant"))
        .collect();
    let direct: Vec<_> = log.iter().filter(|(p, _)| p.ends_with("/direct")).collect();
    assert_eq!((proxied.len(), direct.len()), (4, 2), "{log:?}");
    assert!(proxied.iter().all(|(_, ip)| ip == "127.0.0.1"), "{log:?}");
    assert!(
        direct.iter().all(|(_, ip)| ip.starts_with("127.0.78.")),
        "{log:?}"
    );
    // proxy.py writes a line per connection: each user's two requests share one.
    let seen = proxy.log_with("/t/default-tenant", 2);
    let sources: std::collections::BTreeSet<&str> = seen
        .lines()
        .filter(|l| l.contains("/t/default-tenant"))
        .filter_map(|l| l.split(" - ").nth(2))
        .filter_map(|a| a.rsplit_once(':').map(|(ip, _)| ip))
        .collect();
    assert_eq!(sources.len(), 2, "{seen}");
    assert!(
        sources.iter().all(|ip| ip.starts_with("127.0.78.")),
        "{seen}"
    );
}
