//! Falco output templates (`%proc.name`, `%proc.aname[2]`) as vigil templates.

use super::fields::{subject, Subject};
use super::parser::is_field_name;

/// A Falco output (`%proc.name`, `%proc.aname[2]`) as a vigil template
/// (`{proc.name}`); fields vigil does not have render as `<NA>`.
pub(crate) fn output_template(s: &str, events: crate::event::EventMask) -> String {
    let carried = |f: &str| {
        crate::fields::lookup(f).is_some_and(|f| !f.def().events.intersect(events).is_empty())
    };
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b"._".contains(&b[j])) {
                j += 1;
            }
            if j < b.len() && b[j] == b'[' {
                if let Some(e) = s[j..].find(']') {
                    j += e + 1;
                }
            }
            let name = s[start..j].trim_end_matches('.');
            j = start + name.len();
            if is_field_name(name) {
                let (f, arg) = match name.split_once('[') {
                    Some((f, a)) => (f, Some(a.trim_end_matches(']'))),
                    None => (name, None),
                };
                let vigil = match subject(f, arg) {
                    Ok(Some(Subject::Expr(x, _))) => Some(x),
                    _ => match f {
                        "evt.type" | "proc.tty" => Some(f.to_string()),
                        "proc.exe" | "proc.args" => Some(f.to_string()),
                        "evt.res" | "fd.num" => Some("evt.ret".into()),
                        _ => None,
                    },
                };
                match vigil.filter(|x| carried(x)) {
                    Some(x) => out.push_str(&format!("{{{x}}}")),
                    None => out.push_str("<NA>"),
                }
                i = j;
                continue;
            }
        }
        match c {
            b'{' => out.push_str("{{"),
            b'}' => out.push_str("}}"),
            _ => {
                let ch = s[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;

    #[test]
    fn outputs() {
        assert_eq!(
            output_template(
                "Shell %proc.name gp=%proc.aname[2] x=%evt.arg.flags {y} 50%",
                crate::event::EventMask::of(&[EventType::Open])
            ),
            "Shell {proc.name} gp=<NA> x={file.flags} {{y}} 50%"
        );
        assert_eq!(
            output_template(
                "f=%fd.name",
                crate::event::EventMask::of(&[EventType::Exec])
            ),
            "f=<NA>"
        );
    }
}
