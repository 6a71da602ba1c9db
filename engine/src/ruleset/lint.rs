//! Warnings for a rule that loads but can never fire (`vigil validate`
//! shows them; the set still loads): a top-level clause that is false
//! whatever the event (a constant, `x in` an empty list), a clause that
//! reads only fields one of the rule's event types does not carry and is
//! then false (the rule never fires on that type), and an exception that is
//! the same as the condition or one of its clauses.

use crate::condition::{EventSlot, Node, RhaiCtx};
use crate::event::{Event, EventType};

/// A reason the rule (or part of it) can never fire.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Finding {
    /// The exception it is about (index), else the condition.
    pub exception: Option<usize>,
    /// Text to point at (in the condition or the exception).
    pub needle: Option<String>,
    pub msg: String,
}

/// What one rule's lint looks at.
pub(super) struct RuleView<'a> {
    pub events: &'a [EventType],
    pub cond: &'a Node,
    /// The condition after macro expansion.
    pub cond_text: &'a str,
    /// Its top-level `&&` clause texts (aligned with `cond.conjuncts()` when
    /// the lengths agree).
    pub clauses: &'a [String],
    /// `(name, text after expansion)` per exception.
    pub exceptions: Vec<(&'a str, &'a str)>,
}

/// True when `n` is false for every event.
fn always_false(n: &Node) -> bool {
    match n {
        Node::Const(b) => !b,
        Node::InSet(_, set) => set.is_empty(),
        Node::And(v) => v.iter().any(always_false),
        Node::Or(v) => v.iter().all(always_false),
        _ => false,
    }
}

/// `a && (b)` and ` a&&b ` compare equal: no whitespace, no outer parentheses.
fn normalized(text: &str) -> String {
    let mut t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    loop {
        let inner = t.strip_prefix('(').and_then(|x| x.strip_suffix(')'));
        // Only when those parentheses enclose the whole text.
        let encloses = inner.is_some_and(|x| {
            let mut depth = 0i32;
            x.chars().all(|c| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth >= 0
            }) && depth == 0
        });
        match inner {
            Some(x) if encloses => t = x.to_string(),
            _ => return t,
        }
    }
}

/// Every reason `r` can never fire (or never on one of its event types).
/// `empty_list` tells whether a name is a list without items; `slot` and
/// `ctx` evaluate a clause on an event with no field set.
pub(super) fn never_fires(
    r: &RuleView<'_>,
    empty_list: &dyn Fn(&str) -> bool,
    slot: &EventSlot,
    ctx: &mut RhaiCtx<'_>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let conj = r.cond.conjuncts();
    let aligned = r.clauses.len() == conj.len();
    let text_of = |k: usize| {
        if aligned {
            r.clauses[k].as_str()
        } else {
            r.cond_text
        }
    };
    let label = |k: usize| {
        if aligned && conj.len() > 1 {
            format!("clause `{}`", r.clauses[k])
        } else {
            "the condition".to_string()
        }
    };
    for (k, c) in conj.iter().enumerate() {
        if !always_false(c) {
            continue;
        }
        let lists: Vec<String> = crate::condition::lex(text_of(k))
            .into_iter()
            .filter_map(|t| match t.tok {
                crate::condition::Tok::Ident(i) if empty_list(&i) => Some(format!("`{i}`")),
                _ => None,
            })
            .collect();
        let why = if lists.is_empty() {
            String::new()
        } else {
            format!(" (list {} has no items)", lists.join(", "))
        };
        out.push(Finding {
            exception: None,
            needle: Some(text_of(k).to_string()),
            msg: format!(
                "rule can never fire: {} is false for every event{why}",
                label(k)
            ),
        });
        return out;
    }
    // Per event type: a clause reading only fields the type does not carry
    // has one value on it; false means the rule never fires on that type.
    let mut dead = Vec::new();
    for &t in r.events {
        let ev = Event::new(t);
        for (k, c) in conj.iter().enumerate() {
            let Some(fields) = c.fields() else { continue };
            if fields.is_empty() || fields.iter().any(|f| f.def().events.contains(t)) {
                continue;
            }
            slot.set(Some(&ev));
            let value = c.eval(&ev, ctx);
            slot.set(None);
            if matches!(value, Ok(false)) {
                let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
                dead.push((t, k, names.join(", ")));
                break;
            }
        }
    }
    let all_dead = !r.events.is_empty() && dead.len() == r.events.len();
    for (t, k, fields) in dead {
        let head = if all_dead {
            "rule can never fire".to_string()
        } else {
            format!("rule never fires on `{t}` events")
        };
        out.push(Finding {
            exception: None,
            needle: Some(text_of(k).to_string()),
            msg: format!(
                "{head}: {} reads only {fields}, which `{t}` events do not carry, and is then false",
                label(k)
            ),
        });
    }
    let cond = normalized(r.cond_text);
    for (i, (name, text)) in r.exceptions.iter().enumerate() {
        let exc = normalized(text);
        let same = if exc == cond {
            Some("the condition".to_string())
        } else {
            r.clauses
                .iter()
                .find(|c| normalized(c) == exc)
                .map(|c| format!("clause `{c}` of the condition"))
        };
        if let Some(what) = same {
            out.push(Finding {
                exception: Some(i),
                needle: None,
                msg: format!("rule can never fire: exception `{name}` is the same as {what}"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_drops_spaces_and_enclosing_parentheses_only() {
        assert_eq!(normalized(" ( a && (b) ) "), "a&&(b)");
        assert_eq!(normalized("(a) && (b)"), "(a)&&(b)");
    }
}
