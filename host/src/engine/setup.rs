//! `setup:` and `teardown:`: actions run once for the whole run (k6's setup() and
//! teardown()), by a user of their own (id 0, the default tenant, no pool address), recorded
//! as every request is. Setup's variables (exports, `ok`, `status_code`) are every user's.

use super::*;

/// Run the actions `ids` in order, each seeing what the ones before it exported and `given`
/// (setup's, for teardown); their variables, or why one failed.
pub(super) async fn run_once(
    shared: &Shared,
    ids: &[String],
    what: &str,
    given: &Vars,
) -> Result<Vars, String> {
    let user = user::User {
        id: 0,
        tenant: crate::format::scenario::DEFAULT_TENANT.into(),
        pool: None,
        jobs: None,
        retire: None,
    };
    let policy = Arc::new(Policy::default());
    let mut inst = shared
        .runtime
        .instantiate(policy.clone(), None)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let mut st = user::UserState::new(shared, &user);
    let mut vars = pass::pass_vars(&st, None, 0);
    for (scope, values) in given {
        vars.insert(scope.clone(), values.clone());
    }
    let mut kept = Vars::new();
    let mut failed = None;
    for id in ids {
        let Some(index) = shared.scenario.action_index(id) else {
            continue;
        };
        let sample = action::run_action(&mut st, &mut inst, &policy, None, index, &mut vars).await;
        let (ok, error, status) = (sample.ok, sample.error.clone(), sample.status);
        st.record(sample);
        if let Some(scope) = vars.get(id) {
            kept.insert(id.clone(), scope.clone());
        }
        if !ok {
            let why = error.unwrap_or_else(|| format!("status {}", status.unwrap_or(0)));
            failed = Some(format!("{what} action {id:?} failed: {why}"));
            break;
        }
    }
    st.flush();
    inst.close_idle().await.ok();
    match failed {
        Some(e) => Err(e),
        None => Ok(kept),
    }
}
