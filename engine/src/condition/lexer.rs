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
