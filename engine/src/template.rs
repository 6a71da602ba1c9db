//! Output templates: `"Shell {proc.name} spawned by {proc.pname}"`.
//!
//! `{field}` is replaced by the field's value (arrays joined by spaces;
//! `<NA>` when the event's type does not carry the field); `{{` and `}}` are
//! literal braces; Falco's `%field` form is accepted too. `{vigil.count}` is
//! the number of matches in the window of a `threshold` rule. Templates are
//! parsed at load: an unknown field, a field none of the rule's events carry,
//! or an unclosed `{` is a load error.

use crate::event::{Event, EventMask};
use crate::fields::{self, Field};

/// The extra placeholder of threshold rules.
pub const COUNT_FIELD: &str = "vigil.count";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Field(Field),
    Count,
}

/// A parsed output template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    segs: Vec<Seg>,
}

impl Template {
    /// Parse `text` for a rule taking `events`; `threshold` allows `{vigil.count}`.
    /// Errors are messages (the caller adds the location).
    pub fn parse(text: &str, events: EventMask, threshold: bool) -> Result<Template, Vec<String>> {
        let mut segs = Vec::new();
        let mut errs = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        let field = |name: &str, errs: &mut Vec<String>, segs: &mut Vec<Seg>| {
            if name == COUNT_FIELD {
                if threshold {
                    segs.push(Seg::Count);
                } else {
                    errs.push(format!(
                        "output placeholder `{{{name}}}` is only available in rules with a `threshold`"
                    ));
                }
                return;
            }
            match fields::lookup(name) {
                Some(f) => {
                    if f.def().events.intersect(events).is_empty() && !events.is_empty() {
                        errs.push(format!(
                            "output placeholder `{{{name}}}`: no event of this rule ({}) carries `{name}`",
                            events.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    segs.push(Seg::Field(f));
                }
                None => errs.push(format!(
                    "unknown field `{name}` in output placeholder{}",
                    fields::suggest(name)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default()
                )),
            }
        };
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    match rest.find('}') {
                        Some(end) => {
                            if !lit.is_empty() {
                                segs.push(Seg::Lit(std::mem::take(&mut lit)));
                            }
                            field(rest[..end].trim(), &mut errs, &mut segs);
                            // skip the placeholder
                            let stop = i + 1 + end;
                            while chars.peek().is_some_and(|(j, _)| *j <= stop) {
                                chars.next();
                            }
                        }
                        None => {
                            errs.push(format!(
                                "unclosed `{{` in output at byte {i} (write `{{{{` for a literal brace)"
                            ));
                            break;
                        }
                    }
                }
                '%' => {
                    let rest = &text[i + 1..];
                    let len = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                        .unwrap_or(rest.len());
                    let name = rest[..len].trim_end_matches('.');
                    if fields::lookup(name).is_some() || name == COUNT_FIELD {
                        if !lit.is_empty() {
                            segs.push(Seg::Lit(std::mem::take(&mut lit)));
                        }
                        field(name, &mut errs, &mut segs);
                        for _ in 0..name.chars().count() {
                            chars.next();
                        }
                    } else {
                        lit.push('%');
                    }
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segs.push(Seg::Lit(lit));
        }
        if errs.is_empty() {
            Ok(Template { segs })
        } else {
            Err(errs)
        }
    }

    /// Render for an event; `count` fills `{vigil.count}`.
    pub fn render(&self, ev: &Event, count: Option<u64>) -> String {
        let mut out = String::new();
        for s in &self.segs {
            match s {
                Seg::Lit(l) => out.push_str(l),
                Seg::Field(f) => match ev.get(*f) {
                    Some(v) => out.push_str(&v.render()),
                    None => out.push_str("<NA>"),
                },
                Seg::Count => out.push_str(&count.unwrap_or(0).to_string()),
            }
        }
        out
    }

    /// The fields the template reads.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.segs.iter().filter_map(|s| match s {
            Seg::Field(f) => Some(*f),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;

    fn ev() -> Event {
        let j = serde_json::json!({"evt.type": "exec", "proc.name": "sh", "proc.pid": 42, "proc.args": ["-c", "id"]});
        Event::from_flat_json(j.as_object().unwrap()).unwrap()
    }

    #[test]
    fn renders_fields_and_braces() {
        let exec = EventMask::of(&[EventType::Exec]);
        let t = Template::parse(
            "{proc.name} pid={proc.pid} {{x}} %proc.args 100%",
            exec,
            false,
        )
        .unwrap();
        assert_eq!(t.render(&ev(), None), "sh pid=42 {x} -c id 100%");
        let t = Template::parse("n={vigil.count}", exec, true).unwrap();
        assert_eq!(t.render(&ev(), Some(7)), "n=7");
    }

    #[test]
    fn errors() {
        let exec = EventMask::of(&[EventType::Exec]);
        let e = Template::parse("{proc.nmae}", exec, false).unwrap_err();
        assert!(e[0].contains("did you mean `proc.name`"), "{e:?}");
        let e = Template::parse("{file.path}", exec, false).unwrap_err();
        assert!(e[0].contains("no event of this rule"), "{e:?}");
        assert!(Template::parse("{proc.name", exec, false).is_err());
        assert!(Template::parse("{vigil.count}", exec, false).is_err());
    }
}
