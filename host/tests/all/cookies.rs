//! Each user's cookie jar in a scenario: on by default (as k6), never shared between users,
//! sent on redirects, off for an action that says `cookies: false`.

use integration_tests::http_server::{Reply, serve};

use crate::common::*;

#[test]
fn every_user_keeps_its_own_cookies() {
    // The session cookie names the address that logged in; /me wants the caller's own.
    let server = serve("127.0.0.1:0", None, |r| {
        let peer = r.peer.ip().to_string();
        let cookie = r.header("cookie").unwrap_or_default().to_string();
        match r.path.as_str() {
            "/login" => Reply::status(
                302,
                &[
                    ("Location", "/welcome"),
                    ("Set-Cookie", &format!("sid={peer}; Path=/; HttpOnly")),
                ],
            ),
            "/welcome" | "/me" if cookie == format!("sid={peer}") => Reply::ok("ok"),
            "/bare" if cookie.is_empty() => Reply::ok("ok"),
            _ => Reply::status(401, &[]),
        }
    });
    let dir = tmp("cookies");
    let scenario = format!(
        r#"
version: "1.0"
name: sessions
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.79.0/29"] }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 3 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 2 }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
actions:
  actions:
    - {{ id: login, call: post, with: {{ url: "{base}/login", body: "u=1" }} }}
    - {{ id: me, call: get, with: {{ url: "{base}/me" }} }}
    - {{ id: bare, call: get, with: {{ url: "{base}/bare", cookies: false }} }}
workflows:
  nodes:
    - {{ id: a, type: action, action: login, edges: [ {{ to: b }} ] }}
    - {{ id: b, type: action, action: me, edges: [ {{ to: c }} ] }}
    - {{ id: c, type: action, action: bare, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#,
        base = server.url("")
    );
    let (out, r) = report(&dir, &scenario);
    assert!(
        out.status.success(),
        "{}\n{r}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ["login", "me", "bare"] {
        assert_eq!(r["by_action"][id]["ok"], 6, "{id}: {r}");
    }
}
