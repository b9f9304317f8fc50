//! deploy/kubernetes holds what the README says: the scenario in its ConfigMap validates, and
//! the Job's and the merge Job's command lines use flags the scheduler has. (CI also checks the
//! manifests against the Kubernetes API schemas offline, with kubernetes-validate.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_scheduler");
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes");

fn manifest(name: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(format!("{DEPLOY}/{name}")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn command_line(job: &serde_yaml::Value) -> String {
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    c["args"][0].as_str().unwrap().to_string()
}

#[test]
fn the_kubernetes_manifests_run_what_the_scheduler_has() {
    let cm = manifest("scenario.yaml");
    let scenario = cm["data"]["scenario.yaml"].as_str().unwrap();
    let dir = std::env::temp_dir().join(format!("deploy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, scenario).unwrap();
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The run Job: an Indexed Job whose index is the segment, of as many as it completes.
    let job = manifest("job.yaml");
    assert_eq!(job["spec"]["completionMode"].as_str(), Some("Indexed"));
    let n = job["spec"]["completions"].as_u64().unwrap();
    let run = command_line(&job);
    assert!(
        run.contains(&format!("--segment \"${{JOB_COMPLETION_INDEX}}/{n}\"")),
        "{run}"
    );
    let help = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in run.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(help.contains(flag), "run has no {flag}");
    }
    let merge = command_line(&manifest("merge.yaml"));
    let help = Command::new(BIN)
        .args(["merge", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in merge.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(help.contains(flag), "merge has no {flag}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
