//! The YAML line of each problem's field path (`load.stages[1].target`), from the parser's
//! events, so a problem found anywhere (a type, a name, an overlap) names the line it is
//! about. Only the paths asked about (and the fields above them) are followed: a large file
//! costs one pass and no memory for the rest.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser};

/// The lines (1-based) of the paths asked about and of the fields above them: the key's line
/// in a mapping, the item's in a sequence.
pub(super) struct Lines(HashMap<String, usize>);

enum Frame {
    Map {
        /// None under a field nobody asked about.
        path: Option<String>,
        /// Whether the value of a key comes next (its key's path, when followed).
        value: Option<Option<String>>,
    },
    Seq {
        path: Option<String>,
        next: usize,
    },
}

/// The largest document whose lines are found: 1 MiB.
const MAX_TEXT: usize = 1 << 20;

/// Every path and the fields above it (`a.b[0].c`: `a`, `a.b`, `a.b[0]`, `a.b[0].c`).
fn prefixes<'a>(paths: impl Iterator<Item = &'a str>) -> HashSet<String> {
    let mut out = HashSet::new();
    for p in paths {
        out.insert(p.to_string());
        for (i, c) in p.char_indices() {
            if c == '.' || c == '[' {
                out.insert(p[..i].to_string());
            }
        }
    }
    out
}

impl Lines {
    /// The lines in `text`'s first document of `wanted`'s paths, as far as it parses. None
    /// for a document over `MAX_TEXT` (the parser's buffers grow with a long flow collection:
    /// a scenario is far smaller, and a larger file's problems keep their paths).
    pub(super) fn of<'a>(text: &str, wanted: impl Iterator<Item = &'a str>) -> Lines {
        let mut lines = HashMap::new();
        let mut wanted = wanted.peekable();
        if text.len() > MAX_TEXT || wanted.peek().is_none() {
            return Lines(lines);
        }
        let follow = prefixes(wanted);
        let mut stack: Vec<Frame> = Vec::new();
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            let line = span.start.line();
            let scalar = match &event {
                Event::Scalar(value, ..) => Some(value.as_ref()),
                _ => None,
            };
            let is_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::Alias(_)
                    | Event::MappingStart(..)
                    | Event::SequenceStart(..)
            );
            let at = match is_node {
                true => node(&mut stack, scalar, &follow),
                false => None,
            };
            // A key's line is its field's; a value's, an item's or the root's its own.
            if let Some(Some(path)) = &at {
                lines.entry(path.clone()).or_insert(line);
            }
            match event {
                Event::MappingStart(..) => stack.push(Frame::Map {
                    path: at.flatten().or_else(|| stack.is_empty().then(String::new)),
                    value: None,
                }),
                Event::SequenceStart(..) => stack.push(Frame::Seq {
                    path: at.flatten().or_else(|| stack.is_empty().then(String::new)),
                    next: 0,
                }),
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::DocumentEnd => break,
                _ => {}
            }
        }
        Lines(lines)
    }

    /// The line of `path`, or of the nearest field above it that has one.
    pub(super) fn line(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.0.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// A node in the innermost container: `Some(path)` when it is followed (`Some(None)` when
/// not), `None` at the top. A scalar key is remembered for the value after it, and is itself
/// the line its field is on.
fn node(
    stack: &mut [Frame],
    scalar: Option<&str>,
    follow: &HashSet<String>,
) -> Option<Option<String>> {
    let followed = |p: String| follow.contains(&p).then_some(p);
    match stack.last_mut()? {
        Frame::Map { path, value } => match value.take() {
            // The value: its field's path (whose line is its key's, kept first).
            Some(key) => Some(key),
            None => {
                // A key: non-scalar keys get a name that no field path has.
                let key = path
                    .as_deref()
                    .and_then(|p| followed(super::join(p, scalar.unwrap_or("?"))));
                *value = Some(key.clone());
                Some(key)
            }
        },
        Frame::Seq { path, next } => {
            *next += 1;
            Some(
                path.as_deref()
                    .and_then(|p| followed(format!("{p}[{}]", *next - 1))),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_have_their_lines() {
        let text = "name: x\nload:\n  stages:\n    - { target: 1, duration: 5s }\n    - target: 2\n      duration: 1s\nactions: { actions: [ { id: a } ] }\n";
        let asked = [
            "name",
            "load.stages[0].duration",
            "load.stages[1].duration.deeper",
            "actions.actions[0].id",
            "(document)",
        ];
        let l = Lines::of(text, asked.into_iter());
        assert_eq!(l.line("name"), Some(1));
        assert_eq!(l.line("load"), Some(2));
        assert_eq!(l.line("load.stages[0].duration"), Some(4));
        assert_eq!(l.line("load.stages[1]"), Some(5));
        assert_eq!(l.line("load.stages[1].duration"), Some(6));
        assert_eq!(l.line("load.stages[1].duration.deeper"), Some(6));
        assert_eq!(l.line("actions.actions[0].id"), Some(7));
        assert_eq!(l.line("(document)"), None);
        // What was not asked about is not kept.
        assert!(!l.0.keys().any(|k| k.contains("target")), "{:?}", l.0);
        // A document over the bound, or nothing asked: no lines (and no pass over it).
        let big = format!("a: 1\nb: \"{}\"\n", "x".repeat(MAX_TEXT));
        assert_eq!(Lines::of(&big, ["a"].into_iter()).line("a"), None);
        assert_eq!(Lines::of(text, std::iter::empty()).line("name"), None);
        // A broken document: lines as far as it parses.
        assert_eq!(
            Lines::of("a: 1\nb: [\n", ["a"].into_iter()).line("a"),
            Some(1)
        );
    }
}
