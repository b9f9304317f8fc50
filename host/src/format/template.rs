//! `{{...}}` templates and edge conditions, evaluated by the host.
//!
//! Names: `RESOURCE_ID.PROPERTY` for any resource, `user.id`, `user.tenant`,
//! `user.allocated_ip`, and `ACTION_ID.NAME` for values exported by earlier actions (plus
//! `ACTION_ID.status_code` and `ACTION_ID.ok` for every action run). Conditions: comparisons
//! (`==`, `!=`, `<`, `<=`, `>`, `>=`), `&&`, `||`, `!`, parentheses, numbers, quoted strings,
//! `true` and `false`. Names may contain `-`, as action ids do.

use std::collections::BTreeMap;

/// Values a template can see: `scope -> name -> value`.
pub type Vars = BTreeMap<String, BTreeMap<String, String>>;

fn lookup<'a>(vars: &'a Vars, path: &str) -> Option<&'a str> {
    let (scope, name) = path.split_once('.')?;
    vars.get(scope)?.get(name).map(String::as_str)
}

/// The scope holding the names nothing in the scenario declares (`Scenario::undeclared`):
/// those are left as written, as the original scheduler leaves them.
pub const UNDECLARED: &str = "\u{0}undeclared";

/// Walk a text's templates: `text(literal)` for what is between them, `template(expr, raw)`
/// for each (`expr` trimmed, `raw` with its braces). An unclosed `{{` is an error.
fn scan(
    text: &str,
    mut literal: impl FnMut(&str),
    mut template: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = find_pair(rest, '{') {
        literal(&rest[..i]);
        let after = &rest[i + 2..];
        let j = find_pair(after, '}').ok_or_else(|| format!("unclosed {{{{ in {text:?}"))?;
        template(after[..j].trim(), &rest[i..i + 2 + j + 2])?;
        rest = &after[j + 2..];
    }
    literal(rest);
    Ok(())
}

/// Where `cc` (the ASCII `c` twice: `{{` or `}}`) first begins in `text`. A search for one
/// character is `memchr`'s; `str::find` with a two-character text sets up a two-way search
/// first, which costs more than these short texts (every action's `with`, every request) take
/// to scan.
fn find_pair(text: &str, c: char) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(c) {
        let at = from + i;
        if text.as_bytes().get(at + 1) == Some(&(c as u8)) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Whether `text` holds a `{{`.
pub fn opens_template(text: &str) -> bool {
    find_pair(text, '{').is_some()
}

/// Replace each `{{name}}` with its value; a whole-string `{{expression}}` with an operator is
/// evaluated as a condition (`true`/`false`). A name in the `UNDECLARED` scope stays as
/// written; other unknown names (an export of an action that has not run) are an error.
pub fn render(text: &str, vars: &Vars) -> Result<String, String> {
    let out = std::cell::RefCell::new(String::new());
    scan(
        text,
        |lit| out.borrow_mut().push_str(lit),
        |expr, raw| {
            let mut out = out.borrow_mut();
            match lookup(vars, expr) {
                Some(v) => out.push_str(v),
                None if vars.get(UNDECLARED).is_some_and(|u| u.contains_key(expr)) => {
                    out.push_str(raw);
                }
                None if is_name(expr) => {
                    return Err(format!("unknown template variable {expr:?}"));
                }
                None => out.push_str(&eval_condition(expr, vars)?.to_string()),
            }
            Ok(())
        },
    )?;
    Ok(out.into_inner())
}

/// Check a text's templates without values: every `{{` is closed, and each expression is a
/// name or a condition that parses. What `render` would refuse whatever the values.
pub fn check(text: &str) -> Result<(), String> {
    if text.len() > MAX_LEN {
        return Err(format!("template longer than {MAX_LEN} bytes"));
    }
    names(text).map(|_| ())
}

/// Every template inside a JSON value, with the path of the string holding it.
pub fn check_json(v: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    let mut all = Vec::new();
    strings(v, path, &mut all);
    for (p, text) in all {
        if let Err(e) = check(text) {
            out.push((p, e));
        }
    }
}

/// The names a text's templates read (`{{a.b}}`, and the names inside `{{a.b == 1}}`), or why
/// a template does not parse.
pub fn names(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    scan(
        text,
        |_| {},
        |expr, _| {
            if is_name(expr) {
                out.push(expr.to_string());
            } else {
                expr_names(&parse_condition(expr)?, &mut out);
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// The names a condition reads (those of templates inside it too).
pub fn condition_names(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let inner = unwrap_condition(text, |expr| {
        out.extend(names(&format!("{{{{{expr}}}}}"))?);
        Ok("\"\"".into())
    })?;
    expr_names(&parse_inner(&inner)?, &mut out);
    Ok(out)
}

/// A name is `scope.name`; a bare word without a dot (`tb`, `tenant-a`) is a literal, as in
/// the original's conditions.
fn is_bare_word(n: &str) -> bool {
    !n.contains('.')
}

fn expr_names(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Name(n) if is_bare_word(n) => {}
        Expr::Name(n) => out.push(n.clone()),
        Expr::Not(x) => expr_names(x, out),
        Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) => {
            expr_names(a, out);
            expr_names(b, out);
        }
        Expr::Num(_) | Expr::Str(_) | Expr::Bool(_) => {}
    }
}

/// Each string inside a JSON value, with its path.
pub fn strings<'a>(v: &'a serde_json::Value, path: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        serde_json::Value::String(s) => out.push((path.to_string(), s)),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                strings(x, &format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                strings(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// Whether any string inside a JSON value holds a `{{` (a template to render).
pub fn has_template(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => opens_template(s),
        serde_json::Value::Array(a) => a.iter().any(has_template),
        serde_json::Value::Object(o) => o.values().any(has_template),
        _ => false,
    }
}

/// Render every string inside a JSON value.
pub fn render_json(v: &serde_json::Value, vars: &Vars) -> Result<serde_json::Value, String> {
    Ok(match v {
        serde_json::Value::String(s) => serde_json::Value::String(render(s, vars)?),
        serde_json::Value::Array(a) => serde_json::Value::Array(
            a.iter()
                .map(|x| render_json(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), render_json(x, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Num(f64),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // `get` and not a slice: the next two bytes may end inside a multi-byte character.
        let two = s.get(i..i + 2).unwrap_or("");
        if let Some(op) = ["==", "!=", "<=", ">=", "&&", "||"]
            .into_iter()
            .find(|o| *o == two)
        {
            out.push(Tok::Op(op));
            i += 2;
            continue;
        }
        match c {
            b'<' => out.push(Tok::Op("<")),
            b'>' => out.push(Tok::Op(">")),
            b'!' => out.push(Tok::Op("!")),
            b'(' => out.push(Tok::LParen),
            b')' => out.push(Tok::RParen),
            b'"' | b'\'' => {
                let end = s[i + 1..].find(c as char).ok_or("unclosed string")? + i + 1;
                out.push(Tok::Str(s[i + 1..end].to_string()));
                i = end + 1;
                continue;
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_' || b[i] == b'-') {
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_-.".contains(&b[i])) {
                        i += 1;
                    }
                    out.push(Tok::Name(s[start..i].to_string()));
                } else {
                    out.push(Tok::Num(
                        s[start..i]
                            .parse()
                            .map_err(|_| format!("bad number {:?}", &s[start..i]))?,
                    ));
                }
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_-.".contains(&b[i])) {
                    i += 1;
                }
                out.push(Tok::Name(s[start..i].to_string()));
                continue;
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(format!("unexpected character {ch:?}"));
            }
        }
        i += 1;
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Name(String),
    Num(f64),
    Str(String),
    Bool(bool),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(&'static str, Box<Expr>, Box<Expr>),
}

/// How deeply `!` and parentheses may nest: evaluation recurses, and a user's thread has a
/// small stack. Real conditions nest a few levels.
pub const MAX_DEPTH: usize = 64;

/// The longest condition or template accepted (bytes).
pub const MAX_LEN: usize = 64 * 1024;

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("condition nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek() == Some(&Tok::Op("||")) {
            self.pos += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while self.peek() == Some(&Tok::Op("&&")) {
            self.pos += 1;
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::Op("!")) {
            self.pos += 1;
            self.enter()?;
            let e = Expr::Not(Box::new(self.not()?));
            self.depth -= 1;
            return Ok(e);
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let left = self.atom()?;
        if let Some(Tok::Op(op)) = self.peek().cloned()
            && ["==", "!=", "<", "<=", ">", ">="].contains(&op)
        {
            self.pos += 1;
            return Ok(Expr::Cmp(op, Box::new(left), Box::new(self.atom()?)));
        }
        // The original's `contains`: the left side's text holds the right side's.
        if matches!(self.peek(), Some(Tok::Name(n)) if n == "contains") {
            self.pos += 1;
            return Ok(Expr::Cmp(
                "contains",
                Box::new(left),
                Box::new(self.atom()?),
            ));
        }
        Ok(left)
    }
    fn atom(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::LParen) => {
                self.enter()?;
                let e = self.or()?;
                self.depth -= 1;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err("missing )".into()),
                }
            }
            Some(Tok::Num(n)) => Ok(Expr::Num(n)),
            Some(Tok::Str(s)) => Ok(Expr::Str(s)),
            Some(Tok::Name(n)) if n == "true" => Ok(Expr::Bool(true)),
            Some(Tok::Name(n)) if n == "false" => Ok(Expr::Bool(false)),
            Some(Tok::Name(n)) => Ok(Expr::Name(n)),
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end of condition".into()),
        }
    }
}

/// A condition's text as the grammar reads it: a whole `{{ expr }}` unwrapped, and templates
/// inside a longer text (the original's `"{{tenant.id}} == tb"`) replaced by `value(expr)`, a
/// literal of the grammar.
fn unwrap_condition(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let t = text.trim();
    if t.len() > MAX_LEN {
        return Err(format!("condition longer than {MAX_LEN} bytes"));
    }
    if let Some(inner) = t.strip_prefix("{{").and_then(|x| x.strip_suffix("}}"))
        && !inner.contains("{{")
        && !inner.contains("}}")
    {
        return Ok(inner.to_string());
    }
    let out = std::cell::RefCell::new(String::new());
    scan(
        t,
        |lit| out.borrow_mut().push_str(lit),
        |expr, _| {
            let v = value(expr)?;
            let mut out = out.borrow_mut();
            out.push(' ');
            out.push_str(&v);
            out.push(' ');
            Ok(())
        },
    )?;
    Ok(out.into_inner())
}

/// A value as a string literal of the grammar.
fn quoted(v: &str) -> Result<String, String> {
    match (v.contains('"'), v.contains('\'')) {
        (false, _) => Ok(format!("\"{v}\"")),
        (true, false) => Ok(format!("'{v}'")),
        (true, true) => Err(format!(
            "{v:?}: a value with both kinds of quote in a condition"
        )),
    }
}

/// Parse a condition, written bare or inside `{{ }}`, or with templates inside it.
pub fn parse_condition(text: &str) -> Result<Expr, String> {
    let inner = unwrap_condition(text, |expr| {
        names(&format!("{{{{{expr}}}}}"))?;
        Ok("\"\"".into())
    })?;
    parse_inner(&inner)
}

fn parse_inner(inner: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: tokenize(inner)?,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?} in condition", p.toks[p.pos]));
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Num(n) => *n != 0.0,
            Val::Str(s) => !s.is_empty() && s != "false" && s != "0",
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Bool(_) | Val::Null => None,
        }
    }
    fn text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => b.to_string(),
            Val::Num(n) => n.to_string(),
            Val::Str(s) => s.clone(),
        }
    }
}

fn eval(e: &Expr, vars: &Vars) -> Val {
    match e {
        Expr::Name(n) if is_bare_word(n) => Val::Str(n.clone()),
        Expr::Name(n) => lookup(vars, n)
            .map(|s| Val::Str(s.to_string()))
            .unwrap_or(Val::Null),
        Expr::Num(n) => Val::Num(*n),
        Expr::Str(s) => Val::Str(s.clone()),
        Expr::Bool(b) => Val::Bool(*b),
        Expr::Not(x) => Val::Bool(!eval(x, vars).truthy()),
        Expr::And(a, b) => Val::Bool(eval(a, vars).truthy() && eval(b, vars).truthy()),
        Expr::Or(a, b) => Val::Bool(eval(a, vars).truthy() || eval(b, vars).truthy()),
        Expr::Cmp(op, a, b) => {
            let (a, b) = (eval(a, vars), eval(b, vars));
            if a == Val::Null || b == Val::Null {
                return Val::Bool(*op == "!=" && a != b);
            }
            if *op == "contains" {
                return Val::Bool(a.text().contains(&b.text()));
            }
            let ord = match (a.num(), b.num()) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => Some(a.text().cmp(&b.text())),
            };
            let Some(ord) = ord else {
                return Val::Bool(false);
            };
            use std::cmp::Ordering::*;
            Val::Bool(match *op {
                "==" => ord == Equal,
                "!=" => ord != Equal,
                "<" => ord == Less,
                "<=" => ord != Greater,
                ">" => ord == Greater,
                _ => ord != Less,
            })
        }
    }
}

pub fn eval_condition(text: &str, vars: &Vars) -> Result<bool, String> {
    let inner = unwrap_condition(text, |expr| {
        quoted(&render(&format!("{{{{{expr}}}}}"), vars)?)
    })?;
    Ok(eval(&parse_inner(&inner)?, vars).truthy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_found_where_it_first_begins() {
        for (text, at) in [
            ("{{", Some(0)),
            ("a{b{{c{{", Some(3)),
            ("é{{x}}", Some(2)),
            ("{ {", None),
            ("x{", None),
            ("", None),
            ("{{{", Some(0)),
        ] {
            assert_eq!(find_pair(text, '{'), at, "{text:?}");
            assert_eq!(text.find("{{"), at, "{text:?}");
        }
        assert_eq!(find_pair("a}b}}", '}'), Some(3));
        assert!(opens_template("x{{") && !opens_template("x{y}"));
    }

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.entry("probe-get".into())
            .or_default()
            .insert("status_code".into(), "200".into());
        v.entry("resource".into())
            .or_default()
            .insert("ip".into(), "127.0.0.1".into());
        v.entry("user".into())
            .or_default()
            .insert("tenant".into(), "tenant-a".into());
        v
    }

    #[test]
    fn renders_names() {
        assert_eq!(
            render("http://{{resource.ip}}:80/{{ user.tenant }}", &vars()).unwrap(),
            "http://127.0.0.1:80/tenant-a"
        );
        assert!(render("{{resource.nope}}", &vars()).is_err());
        assert!(render("{{resource.ip", &vars()).is_err());
    }

    /// The original's forms: templates inside the text, bare words, `contains`.
    #[test]
    fn the_originals_conditions() {
        let v = vars();
        for (c, want) in [
            ("{{user.tenant}} == tenant-a", true),
            ("{{user.tenant}} == tb", false),
            ("{{user.tenant}} != tb", true),
            ("{{probe-get.status_code}} == 200", true),
            (
                "{{probe-get.status_code}} == {{probe-get.status_code}}",
                true,
            ),
            ("user.tenant == tenant-a", true),
            ("user.tenant contains tenant", true),
            ("user.tenant contains \"b\"", false),
            (
                "{{user.tenant}} contains nt-a && probe-get.status_code == 200",
                true,
            ),
        ] {
            assert_eq!(eval_condition(c, &v), Ok(want), "{c}");
        }
        // Bare words are literals, not names; names inside templates are names.
        assert_eq!(
            condition_names("{{user.tenant}} == tb && probe-get.ok").unwrap(),
            vec!["user.tenant".to_string(), "probe-get.ok".to_string()]
        );
        assert!(parse_condition("{{user.tenant == tb").is_err());
    }

    #[test]
    fn conditions() {
        let v = vars();
        for (c, want) in [
            ("{{probe-get.status_code == 200}}", true),
            ("probe-get.status_code != 200", false),
            (
                "probe-get.status_code >= 200 && probe-get.status_code < 300",
                true,
            ),
            (
                "!(probe-get.status_code == 200) || user.tenant == 'tenant-a'",
                true,
            ),
            ("user.tenant == \"tenant-b\"", false),
            ("missing.value == 1", false),
            ("missing.value != 1", true),
            ("true", true),
            ("false || 1 > 2", false),
        ] {
            assert_eq!(eval_condition(c, &v).unwrap(), want, "{c}");
        }
        for bad in ["a ==", "(a == 1", "a == 1 )", "a @ b", "'open"] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
    }
}
