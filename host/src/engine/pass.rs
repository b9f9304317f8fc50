//! One pass through the workflow: a user's iteration, with the original scheduler's meaning.
//!
//! Steps run from a queue, as the original's engine runs its tasks: a node's action, then the
//! node its first matching edge leads to, then the dynamic tasks the action's success adds
//! (behind the nodes already queued). An edge without `trigger:` is always taken; its
//! `on:` routes on the action's outcome, its `condition:` on what earlier actions exported;
//! a trigger with neither is never taken. A node whose edges all fail to match ends the user
//! with an error, and so does an action that cannot be sent (a template, a parameter, the
//! policy or the pool refused it before anything went on the wire). With `per_task`, each
//! node's action runs from an address of its own, given back when the node is done.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::{Shared, UserState, acquire, run_action};
use crate::format::scenario::{MAX_NODES, Node, NodeKind, Outcome, Scenario};
use crate::format::template::{self, Vars};
use crate::runtime::{Instance, Policy, pool};

/// What a pass needs to give each node's action an address of its own (`per_task`).
pub struct TaskBinding<'a> {
    pub pool_id: &'a str,
    pub own: &'a pool::Owner,
}

enum Step<'a> {
    Node(&'a Node),
    /// A dynamic task: the action's index.
    Dynamic(usize),
}

/// One pass; `Err` ends the user with that error.
pub async fn run_task(
    st: &mut UserState<'_>,
    inst: &mut Instance,
    policy: &Policy,
    ip: Option<&str>,
    iteration: u32,
    per_task: Option<&TaskBinding<'_>>,
) -> Result<(), String> {
    let shared = st.shared;
    let sc = &shared.scenario;
    let mut vars = pass_vars(st, ip, iteration);
    let Some(start) = sc.start_node() else {
        return Ok(());
    };
    let mut queue = VecDeque::from([Step::Node(start)]);
    let mut nodes_run = 0usize;
    let mut last_action = None;
    st.last_reply.iter_mut().for_each(|r| *r = None);
    while let Some(step) = queue.pop_front() {
        if shared.stop.load(Ordering::SeqCst) || st.trapped {
            // Stopping, or the instance trapped: the steps not yet started are dropped.
            break;
        }
        let node = match step {
            Step::Dynamic(index) => {
                let task = Task { ip, per_task };
                if task.run(st, inst, policy, index, &mut vars).await? == Outcome::Success {
                    queue_dynamic(st, sc, index, &vars, &mut queue);
                }
                continue;
            }
            Step::Node(node) => node,
        };
        nodes_run += 1;
        if nodes_run > MAX_NODES {
            return Err(format!(
                "the workflow pass ran {MAX_NODES} nodes without reaching an end (a cycle?)"
            ));
        }
        match &node.kind {
            NodeKind::End => {}
            NodeKind::Wait(w) => {
                let on = w
                    .action
                    .as_deref()
                    .and_then(|a| sc.action_index(a))
                    .or(last_action);
                let got = on.and_then(|i| st.last_reply[i].as_deref());
                // No matching reply: this branch of the pass ends here.
                if got.is_some_and(|r| w.expect.holds(r)) {
                    queue_next(sc, node, &vars, Outcome::Success, &mut queue)?;
                }
            }
            NodeKind::Action(action_id) => {
                let Some(index) = sc.action_index(action_id) else {
                    continue;
                };
                last_action = Some(index);
                // A `once` node ran in the first pass: the others go on as it ended.
                if let (true, Some(outcome)) = (node.once, st.once.get(&index).copied()) {
                    queue_next(sc, node, &vars, outcome, &mut queue)?;
                    continue;
                }
                let task = Task { ip, per_task };
                let outcome = task.run(st, inst, policy, index, &mut vars).await?;
                if node.once {
                    st.once.insert(index, outcome);
                    if let Some(scope) = vars.get(action_id) {
                        st.kept.insert(action_id.clone(), scope.clone());
                    }
                }
                queue_next(sc, node, &vars, outcome, &mut queue)?;
                if outcome == Outcome::Success {
                    queue_dynamic(st, sc, index, &vars, &mut queue);
                }
            }
        }
    }
    Ok(())
}

/// What templates and conditions read in a pass: the resources' properties, the user and its
/// tenant (`user.iteration` counts from 1, as the original's), and the names nothing declares.
pub(super) fn pass_vars(st: &UserState<'_>, ip: Option<&str>, iteration: u32) -> Vars {
    let shared = st.shared;
    let sc = &shared.scenario;
    let mut vars: Vars = Vars::new();
    if !shared.uses_vars {
        return vars;
    }
    for r in &sc.resources {
        vars.insert(r.id.clone(), r.properties.clone().into_iter().collect());
    }
    for s in &sc.servers {
        vars.insert(s.id.clone(), s.vars_for(st.user).into_iter().collect());
    }
    let u = vars.entry("user".into()).or_default();
    u.insert("id".into(), st.user.to_string());
    u.insert("tenant".into(), st.tenant.to_string());
    u.insert("allocated_ip".into(), ip.unwrap_or("").to_string());
    u.insert("iteration".into(), (u64::from(iteration) + 1).to_string());
    let t = vars.entry("tenant".into()).or_default();
    t.insert("id".into(), st.tenant.to_string());
    // This pass's data rows.
    for (d, &row) in sc.data.iter().zip(&st.rows).filter(|(d, _)| d.read) {
        let values = d
            .table
            .columns
            .iter()
            .cloned()
            .zip(d.table.rows[row].iter().cloned());
        vars.insert(d.id.clone(), values.collect());
    }
    // What setup exported, and the user's `once` actions in its first pass.
    let setup = shared.setup_vars.get().into_iter().flatten();
    for (scope, values) in setup.chain(&st.kept) {
        vars.insert(scope.clone(), values.clone());
    }
    if !sc.undeclared.is_empty() {
        vars.insert(
            template::UNDECLARED.into(),
            sc.undeclared
                .iter()
                .map(|n| (n.clone(), String::new()))
                .collect(),
        );
    }
    vars
}

/// The node a node's first matching edge leads to, queued; none matching ends the user (as
/// in the original). A node without edges ends its branch of the pass.
fn queue_next<'a>(
    sc: &'a Scenario,
    node: &Node,
    vars: &Vars,
    outcome: Outcome,
    queue: &mut VecDeque<Step<'a>>,
) -> Result<(), String> {
    if node.edges.is_empty() {
        return Ok(());
    }
    let next = node.edges.iter().find(|e| match &e.trigger {
        None => true,
        Some(t) if t.condition.is_none() && t.on.is_none() => false,
        Some(t) => {
            t.on.is_none_or(|o| o == outcome)
                && t.condition
                    .as_deref()
                    .is_none_or(|c| template::eval_condition(c, vars).unwrap_or(false))
        }
    });
    match next.and_then(|e| sc.node(&e.to)) {
        Some(n) => {
            queue.push_back(Step::Node(n));
            Ok(())
        }
        None => Err(format!("no edge of node {:?} matched", node.id)),
    }
}

/// The dynamic tasks of action `index`'s success (each id once per user), behind what is
/// queued.
fn queue_dynamic(
    st: &mut UserState<'_>,
    sc: &Scenario,
    index: usize,
    vars: &Vars,
    queue: &mut VecDeque<Step<'_>>,
) {
    for t in &sc.actions[index].dynamic {
        let id = template::render(&t.id, vars).unwrap_or_else(|_| t.id.clone());
        if st.dynamic_seen.insert(id)
            && let Some(i) = t.action.as_deref().and_then(|a| sc.action_index(a))
        {
            queue.push_back(Step::Dynamic(i));
        }
    }
}

/// One action of a pass, from the user's address or (`per_task`) one of its own.
struct Task<'a, 'b> {
    ip: Option<&'a str>,
    per_task: Option<&'a TaskBinding<'b>>,
}

impl Task<'_, '_> {
    async fn run(
        &self,
        st: &mut UserState<'_>,
        inst: &mut Instance,
        policy: &Policy,
        index: usize,
        vars: &mut Vars,
    ) -> Result<Outcome, String> {
        let shared = st.shared;
        let held = match self.per_task {
            Some(b) => Some(bind(shared, policy, b).await?),
            None => None,
        };
        let ip = held.as_ref().map(|(b, _)| b.ip.as_str()).or(self.ip);
        let sample = run_action(st, inst, policy, ip, index, vars).await;
        // The address goes back: the instance may no longer bind it, and its kept-alive
        // connections from it are closed (the next holder may be another user). A failure
        // to give it back ends the user, after the request is recorded: it was made.
        let released = match (self.per_task, &held) {
            (Some(b), Some((_, from))) => {
                policy.pin(None);
                match inst.close_idle().await {
                    Ok(()) => shared.authority.release(from, b.own).await,
                    Err(e) => Err(e),
                }
            }
            _ => Ok(()),
        };
        shared.live.requests.fetch_add(1, Ordering::Relaxed);
        if !sample.ok {
            shared.live.errors.fetch_add(1, Ordering::Relaxed);
        }
        let outcome = outcome_of(&sample);
        // Refused before anything went on the wire: the original stops the user.
        let unsendable = match (&sample.error, sample.sent) {
            (Some(e), false) => Some(format!(
                "action {:?} could not be sent: {e}",
                shared.scenario.actions[index].id
            )),
            _ => None,
        };
        st.record(sample);
        released?;
        unsendable.map_or(Ok(outcome), Err)
    }
}

/// An address of its own for one task, pinned in the policy; and the pool it goes back to.
async fn bind(
    shared: &Shared,
    policy: &Policy,
    b: &TaskBinding<'_>,
) -> Result<(pool::Binding, String), String> {
    let held = acquire(shared, b.pool_id, b.own).await?;
    policy.pin(held.0.ip.parse().ok());
    Ok(held)
}

fn outcome_of(sample: &crate::results::report::Sample) -> Outcome {
    match &sample.error {
        None if sample.ok => Outcome::Success,
        Some(e) if e.starts_with("timeout") => Outcome::Timeout,
        _ => Outcome::Failed,
    }
}
