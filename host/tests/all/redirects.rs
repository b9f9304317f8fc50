//! A scenario's redirect to another port of the same host: refused by the user's policy
//! unless the action allows it (`redirects: {any_port: true}`).

use integration_tests::http_server::{Reply, serve};

use crate::common::*;

#[test]
fn another_port_of_the_host_only_when_the_action_allows_it() {
    let upgraded = serve("127.0.0.1:0", None, |_| Reply::ok("upgraded"));
    let to = upgraded.url("/here");
    let origin = serve("127.0.0.1:0", None, move |_| {
        Reply::status(301, &[("Location", to.as_str())])
    });
    let dir = tmp("redirect-ports");
    let scenario = |any_port: bool| {
        format!(
            r#"
version: "1.0"
name: upgrade
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 1 }} ] }}
actions:
  actions:
    - {{ id: go, call: get, with: {{ url: "{}", redirects: {{ follow: true, any_port: {any_port} }} }} }}
workflows:
  nodes:
    - {{ id: a, type: action, action: go, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#,
            origin.url("/old")
        )
    };
    let (_, r) = report(&dir, &scenario(false));
    assert_eq!(r["by_action"]["go"]["ok"], 0, "{r}");
    assert!(r.to_string().contains("access-denied"), "{r}");
    assert_eq!(upgraded.stats.requests(), 0);
    let (out, r) = report(&dir, &scenario(true));
    assert!(out.status.success(), "{r}");
    assert_eq!(r["by_action"]["go"]["ok"], 1, "{r}");
    assert_eq!(upgraded.stats.requests(), 1);
    let path = scenario_file(&dir, &scenario(true));
    let out = run(&["validate", "--strict", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
