//! The YAML line of each field path (`load.stages[1].target`), from the parser's events, so a
//! problem found anywhere (a type, a name, an overlap) names the line it is about.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// Each path's line (1-based): the key's line in a mapping, the item's in a sequence.
pub(super) struct Lines(HashMap<String, usize>);

enum Frame {
    Map {
        path: String,
        /// The key whose value comes next, or None when a key comes next.
        key: Option<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

impl Lines {
    /// The lines of `text`'s first document; as far as it parses (a YAML error ends it).
    pub(super) fn of(text: &str) -> Lines {
        let mut lines = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            let line = span.start.line();
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(path) = node(&mut stack, Some(&value), line, &mut lines) {
                        lines.entry(path).or_insert(line);
                    }
                }
                Event::Alias(_) => {
                    node(&mut stack, None, line, &mut lines);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = node(&mut stack, None, line, &mut lines).unwrap_or_default();
                    lines.entry(path.clone()).or_insert(line);
                    stack.push(match event {
                        Event::MappingStart(..) => Frame::Map { path, key: None },
                        _ => Frame::Seq { path, next: 0 },
                    });
                }
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

/// A node in the innermost container: its path when it is a value (None when it is a key, or
/// at the top). A scalar key is remembered for the value after it.
fn node(
    stack: &mut [Frame],
    scalar: Option<&str>,
    line: usize,
    lines: &mut HashMap<String, usize>,
) -> Option<String> {
    match stack.last_mut()? {
        Frame::Map { path, key } => match key.take() {
            Some(k) => Some(k),
            None => {
                // A key: non-scalar keys get a name that no field path has.
                let k = super::join(path, scalar.unwrap_or("?"));
                lines.entry(k.clone()).or_insert(line);
                *key = Some(k);
                None
            }
        },
        Frame::Seq { path, next } => {
            *next += 1;
            Some(format!("{path}[{}]", *next - 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_have_their_lines() {
        let text = "name: x\nload:\n  stages:\n    - { target: 1, duration: 5s }\n    - target: 2\n      duration: 1s\nactions: { actions: [ { id: a } ] }\n";
        let l = Lines::of(text);
        assert_eq!(l.line("name"), Some(1));
        assert_eq!(l.line("load"), Some(2));
        assert_eq!(l.line("load.stages[0].duration"), Some(4));
        assert_eq!(l.line("load.stages[1]"), Some(5));
        assert_eq!(l.line("load.stages[1].duration"), Some(6));
        assert_eq!(l.line("load.stages[1].duration.deeper"), Some(6));
        assert_eq!(l.line("actions.actions[0].id"), Some(7));
        assert_eq!(l.line("(document)"), None);
        // A broken document: lines as far as it parses.
        assert_eq!(Lines::of("a: 1\nb: [\n").line("a"), Some(1));
    }
}
