//! The tokenizer shared by the vigil (Rhai-syntax) front-end: name checks,
//! macro expansion and the native parser all read conditions through it.

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Op(&'static str),
    /// Something the native parser does not understand (floats, chars,
    /// backtick strings, other punctuation). Rhai gets the text.
    Other,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

const OPS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%",
];

/// Split a condition into tokens. Never fails: what it cannot read becomes
/// [`Tok::Other`] (Rhai will report real syntax errors).
pub(crate) fn lex(s: &str) -> Vec<Token> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let tok = if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            Tok::Ident(s[start..i].to_string())
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let is_float = i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit();
            if is_float {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Tok::Other
            } else {
                let text: String = s[start..i].chars().filter(|c| *c != '_').collect();
                let v = if let Some(h) = text.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).ok()
                } else if let Some(o) = text.strip_prefix("0o") {
                    i64::from_str_radix(o, 8).ok()
                } else if let Some(bn) = text.strip_prefix("0b") {
                    i64::from_str_radix(bn, 2).ok()
                } else {
                    text.parse().ok()
                };
                v.map(Tok::Int).unwrap_or(Tok::Other)
            }
        } else if c == b'"' {
            i += 1;
            let mut val = String::new();
            let mut ok = false;
            let mut bad = false;
            while i < b.len() {
                let ch = s[i..].chars().next().unwrap_or('\0');
                if ch == '"' {
                    i += 1;
                    ok = true;
                    break;
                }
                if ch == '\\' {
                    let nx = s[i + 1..].chars().next();
                    match nx {
                        Some('n') => val.push('\n'),
                        Some('t') => val.push('\t'),
                        Some('r') => val.push('\r'),
                        Some('\\') => val.push('\\'),
                        Some('"') => val.push('"'),
                        Some('\'') => val.push('\''),
                        Some(other) => {
                            bad = true;
                            val.push(other)
                        }
                        None => break,
                    }
                    i += 1 + nx.map(char::len_utf8).unwrap_or(0);
                    continue;
                }
                if ch == '\n' {
                    bad = true;
                }
                val.push(ch);
                i += ch.len_utf8();
            }
            if ok && !bad {
                Tok::Str(val)
            } else {
                Tok::Other
            }
        } else if c == b'`' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            Tok::Other
        } else {
            let rest = &s[i..];
            if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
                i += op.len();
                Tok::Op(op)
            } else {
                let ch = rest.chars().next().unwrap_or(' ');
                i += ch.len_utf8();
                match ch {
                    '.' => Tok::Dot,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    ',' => Tok::Comma,
                    _ => Tok::Other,
                }
            }
        };
        // Rhai: `!in` is one operator.
        out.push(Token { tok, start, end: i });
    }
    out
}

/// An unbalanced bracket: where to point (`at`, a byte offset in the
/// condition), a nearby `start` (at or before `at`) whose text from there
/// to `at` locates it in the file, and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BracketError {
    pub start: usize,
    pub at: usize,
    pub msg: String,
}

/// The first unbalanced `(`/`)`/`[`/`]` of a condition, if any. An unclosed
/// call or array bracket followed by `&&`/`||` inside it is reported at that
/// operator (`starts_with("/etc/" && ...`: the `)` is missing before the
/// `&&`); any other unclosed bracket at the end of the condition.
pub(crate) fn check_brackets(text: &str) -> Option<BracketError> {
    let toks = lex(text);
    let close_of = |t: &Tok| if *t == Tok::LParen { ')' } else { ']' };
    // Where a bracket's opener begins: the called name for `name(`.
    let opener = |j: usize| match j.checked_sub(1).map(|k| &toks[k].tok) {
        Some(Tok::Ident(_)) if toks[j].tok == Tok::LParen => toks[j - 1].start,
        _ => toks[j].start,
    };
    let shown = |j: usize| text[opener(j)..toks[j].end].to_string();
    let mut stack: Vec<usize> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::LParen | Tok::LBracket => stack.push(i),
            Tok::RParen | Tok::RBracket => {
                let c = if t.tok == Tok::RParen { ')' } else { ']' };
                let start = i.checked_sub(1).map_or(t.start, |k| toks[k].start);
                match stack.pop() {
                    None => {
                        return Some(BracketError {
                            start,
                            at: t.start,
                            msg: format!(
                                "unbalanced brackets: this `{c}` closes nothing (one `{c}` too many, or its opening bracket is missing)"
                            ),
                        })
                    }
                    Some(j) if close_of(&toks[j].tok) != c => {
                        return Some(BracketError {
                            start: opener(j),
                            at: t.start,
                            msg: format!(
                                "unbalanced brackets: `{c}` cannot close `{}`: missing `{}`",
                                shown(j),
                                close_of(&toks[j].tok)
                            ),
                        })
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    let &j = stack.last()?;
    let close = close_of(&toks[j].tok);
    let call_or_array = toks[j].tok == Tok::LBracket || opener(j) != toks[j].start;
    let mut depth = 0usize;
    for t in &toks[j + 1..] {
        match &t.tok {
            Tok::LParen | Tok::LBracket => depth += 1,
            Tok::RParen | Tok::RBracket => depth = depth.saturating_sub(1),
            Tok::Op(op @ ("&&" | "||")) if depth == 0 && call_or_array => {
                return Some(BracketError {
                    start: opener(j),
                    at: t.start,
                    msg: format!(
                        "unbalanced brackets: missing `{close}` before `{op}`: `{}` is not closed",
                        shown(j)
                    ),
                });
            }
            _ => {}
        }
    }
    Some(BracketError {
        start: opener(j),
        at: toks[j].start,
        msg: format!(
            "unbalanced brackets: `{}` is never closed: missing `{close}`",
            shown(j)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (String, String, String) {
        let e = check_brackets(text).expect("an error");
        (text[e.start..].to_string(), text[e.at..].to_string(), e.msg)
    }

    #[test]
    fn unbalanced_brackets_are_named_where_the_bracket_is_missing() {
        assert_eq!(check_brackets(r#"f(a, [1, 2]) && (b || c)"#), None);
        let (from, at, msg) = err(r#"file.path.starts_with("/etc/" && proc.name == "sh""#);
        assert!(from.starts_with("starts_with("), "{from}");
        assert!(at.starts_with("&& proc.name"), "{at}");
        assert_eq!(
            msg,
            "unbalanced brackets: missing `)` before `&&`: `starts_with(` is not closed"
        );
        let (_, at, msg) = err(r#"(file.path == "/etc/x")) && proc.name == "sh""#);
        assert!(at.starts_with(") &&"), "{at}");
        assert!(msg.contains("this `)` closes nothing"), "{msg}");
        let (_, at, msg) = err(r#"proc.name in ["sh", "bash") && x"#);
        assert!(at.starts_with(") &&"), "{at}");
        assert_eq!(
            msg,
            "unbalanced brackets: `)` cannot close `[`: missing `]`"
        );
        let (from, _, msg) = err(r#"(proc.name == "sh" && proc.tty"#);
        assert!(from.starts_with("(proc.name"), "{from}");
        assert_eq!(msg, "unbalanced brackets: `(` is never closed: missing `)`");
    }
}
