//! Resource properties that name each other: resolved to a fixed point, bounded, cycles told.

use super::*;

/// A resource's property, by the resource's place and the property's name.
type Slot = (usize, String);

/// Resource properties that name other resources' properties (`url: "{{base.scheme}}://..."`)
/// are resolved to a fixed point, a bounded number of rounds; what still names one after that
/// is a cycle, reported with the properties in it. Other templates (`{{user.id}}`) stay for
/// the run.
pub(super) fn resolve_properties(w: &mut Walker, resources: &mut [Resource]) -> Vec<Cycle> {
    let too_big = expand(resources);
    for (i, k) in &too_big {
        w.problem(
            &format!("workbook.resources[{i}].properties.{k}"),
            format!(
                "expands to more than {} bytes (its references multiply)",
                template::MAX_LEN
            ),
        );
    }
    let blocked = reading(resources, too_big);
    unresolved(w, resources, &blocked)
}

/// The `RESOURCE.PROPERTY` names `text` reads, of the resources there are.
fn refers(text: &str, resources: &[Resource]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else { break };
        let name = after[..j].trim();
        if let Some((r, p)) = name.split_once('.')
            && resources.iter().any(|x| x.id == r)
        {
            out.push(format!("{r}.{p}"));
        }
        rest = &after[j + 2..];
    }
    out
}

/// Put resolved values in for the references, round after round until nothing changes (at
/// most 32 rounds). A property may expand to at most a template's length: references that
/// multiply (a thousand of one that holds a thousand of another) stop there; those are
/// returned.
fn expand(resources: &mut [Resource]) -> BTreeSet<Slot> {
    const ROUNDS: usize = 32;
    let mut too_big: BTreeSet<Slot> = BTreeSet::new();
    for _ in 0..ROUNDS {
        let mut changed = false;
        let snapshot: Vec<Resource> = resources.to_vec();
        for (i, r) in resources.iter_mut().enumerate() {
            for (k, value) in r.properties.iter_mut() {
                if too_big.contains(&(i, k.clone())) {
                    continue;
                }
                let (c, big) = expand_one(value, &snapshot);
                changed |= c;
                if big {
                    too_big.insert((i, k.clone()));
                }
            }
        }
        if !changed {
            break;
        }
    }
    too_big
}

/// One round on one value: whether it changed, and whether it stopped there, too big.
fn expand_one(value: &mut String, snapshot: &[Resource]) -> (bool, bool) {
    let mut changed = false;
    for name in refers(value, snapshot) {
        let (rid, prop) = name.split_once('.').unwrap_or_default();
        let target = snapshot
            .iter()
            .find(|x| x.id == rid)
            .and_then(|x| x.properties.get(prop));
        // Only a resolved value is put in, so a round never copies a reference.
        let Some(v) = target.filter(|v| refers(v, snapshot).is_empty()) else {
            continue;
        };
        for pattern in [format!("{{{{{name}}}}}"), format!("{{{{ {name} }}}}")] {
            let n = value.matches(&pattern).count();
            if n == 0 {
                continue;
            }
            let grown = (value.len() - n * pattern.len()).saturating_add(n.saturating_mul(v.len()));
            if grown > template::MAX_LEN {
                return (changed, true);
            }
            *value = value.replace(&pattern, v);
            changed = true;
        }
    }
    (changed, false)
}

/// The properties too big to expand, and every one that reads one of them at any depth:
/// those are told once, where it is too big.
fn reading(resources: &[Resource], too_big: BTreeSet<Slot>) -> BTreeSet<Slot> {
    let reads = |set: &BTreeSet<Slot>, names: &[String]| {
        names.iter().any(|n| {
            let (rid, prop) = n.split_once('.').unwrap_or_default();
            resources
                .iter()
                .position(|x| x.id == rid)
                .is_some_and(|j| set.contains(&(j, prop.to_string())))
        })
    };
    let mut blocked = too_big;
    loop {
        let before = blocked.len();
        for (i, r) in resources.iter().enumerate() {
            for (k, v) in &r.properties {
                if reads(&blocked, &refers(v, resources)) {
                    blocked.insert((i, k.clone()));
                }
            }
        }
        if blocked.len() == before {
            return blocked;
        }
    }
}

/// What still names a property after the rounds: a property that does not exist (a
/// problem), or a cycle.
fn unresolved(w: &mut Walker, resources: &[Resource], blocked: &BTreeSet<Slot>) -> Vec<Cycle> {
    let mut cycles = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        for (k, v) in &r.properties {
            if blocked.contains(&(i, k.clone())) {
                continue;
            }
            let mut names = refers(v, resources);
            names.sort();
            names.dedup();
            if names.is_empty() {
                continue;
            }
            let path = format!("workbook.resources[{i}].properties.{k}");
            let missing = names.iter().find(|n| {
                let (rid, prop) = n.split_once('.').unwrap_or_default();
                !resources
                    .iter()
                    .any(|x| x.id == rid && x.properties.contains_key(prop))
            });
            if let Some(m) = missing {
                w.problem(&path, format!("{{{{{m}}}}}: no such property"));
            } else {
                cycles.push(Cycle {
                    path,
                    property: format!("{}.{k}", r.id),
                    message: format!(
                        "circular reference: {}.{k} -> {} never resolves",
                        r.id,
                        names.join(", ")
                    ),
                });
            }
        }
    }
    cycles
}

/// A property whose references never resolve: a problem when a template of an action or an
/// edge reads it, a warning otherwise (the original runs such a file: its
/// `http_circular_ref` scenario reads none of them).
pub(super) struct Cycle {
    pub(super) path: String,
    pub(super) property: String,
    pub(super) message: String,
}

pub(super) fn judge_cycles(w: &mut Walker, cycles: Vec<Cycle>, read: &BTreeSet<String>) {
    for c in cycles {
        if read.contains(&c.property) {
            w.problem(&c.path, format!("{}, and a template reads it", c.message));
        } else {
            w.warnings.push(Problem {
                path: c.path,
                message: format!(
                    "{}; no template reads it, so it is left as it is",
                    c.message
                ),
                line: None,
            });
        }
    }
}
