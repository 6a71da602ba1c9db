//! The tokenizer of Falco's filter syntax (words, quoted strings,
//! comparison operators, parentheses, commas; a field argument `x[...]`
//! stays inside its word).

#[derive(Clone, Debug, PartialEq)]
pub(super) enum T {
    Word(String),
    Quoted(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

#[derive(Clone, Debug)]
pub(super) struct Tok {
    pub(super) tok: T,
    pub(super) pos: usize,
}

pub(super) fn lex(s: &str) -> Result<Vec<Tok>, (usize, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let tok = match c {
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                T::LParen
            }
            b')' => {
                i += 1;
                T::RParen
            }
            b',' => {
                i += 1;
                T::Comma
            }
            b'"' | b'\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err((start, "unterminated string".into())),
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if i + 1 < b.len() => {
                            let n = b[i + 1];
                            v.push(match n {
                                b'n' => '\n',
                                b't' => '\t',
                                _ => n as char,
                            });
                            i += 2;
                        }
                        Some(_) => {
                            let ch = s[i..].chars().next().unwrap_or(' ');
                            v.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                T::Quoted(v)
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = s.get(i..i + 2).unwrap_or("");
                let op = match two {
                    "==" => "==",
                    "!=" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    _ => match c {
                        b'=' => "=",
                        b'<' => "<",
                        b'>' => ">",
                        _ => return Err((start, "unexpected `!` (use `!=` or `not`)".into())),
                    },
                };
                i += op.len();
                T::Op(op)
            }
            _ => {
                while i < b.len() && !b[i].is_ascii_whitespace() && !b"(),=<>!\"'".contains(&b[i]) {
                    // A field argument (`proc.aname[2]`, `x.y[/a b]`) runs to its `]`.
                    if b[i] == b'[' {
                        match s[i..].find(']') {
                            Some(e) => i += e + 1,
                            None => return Err((i, "unclosed `[`".into())),
                        }
                        continue;
                    }
                    i += 1;
                }
                T::Word(s[start..i].to_string())
            }
        };
        out.push(Tok { tok, pos: start });
    }
    Ok(out)
}
