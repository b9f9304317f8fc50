//! Segments (`run --segment I/N`): a share with no user has nothing to run, which is no
//! failure (the merge of all shares judges the run).

mod common;
use common::*;

#[test]
fn an_empty_segment_exits_0() {
    let (server, log) = recording_target();
    let dir = tmp("empty-segment");
    let s = format!(
        r#"
version: "1.0"
name: two-users
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 2 }} ] }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let mut codes = Vec::new();
    for seg in ["0/3", "1/3", "2/3"] {
        let out = run(&["run", path.to_str().unwrap(), "--segment", seg]);
        codes.push(out.status.code());
        if seg == "2/3" {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("nothing to run in this segment"), "{text}");
        }
    }
    assert_eq!(codes, [Some(0), Some(0), Some(0)]);
    assert_eq!(log.lock().unwrap().len(), 2, "two users ran, once each");
}
