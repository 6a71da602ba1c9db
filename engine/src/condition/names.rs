//! Load-time name checks of a vigil condition's text (unknown fields,
//! lists, macros, with suggestions) and textual macro expansion.

use super::lexer::{lex, Tok, Token};
use super::NAMESPACES;
use crate::fields::{self, Field};

/// A name problem found in a condition's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameProblem {
    /// The offending text (for locating it in the file).
    pub text: String,
    pub msg: String,
}

/// What a bare identifier may be.
pub(crate) trait Names {
    fn is_list(&self, name: &str) -> bool;
    fn is_macro(&self, name: &str) -> bool;
    fn all_names(&self) -> Vec<String>;
}

fn closest<'a>(name: &str, cands: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    cands
        .map(|c| (fields::edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 3) && *d < c.len().max(name.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Check the fields, lists and macros a condition names; also collect the
/// fields it reads (`fields_out`).
pub(crate) fn check_names(
    text: &str,
    names: &dyn Names,
    extra_vars: &[&str],
    fields_out: &mut Vec<Field>,
) -> Vec<NameProblem> {
    let toks = lex(text);
    let mut problems = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let after_dot = i > 0 && toks[i - 1].tok == Tok::Dot;
        let Tok::Ident(id) = &toks[i].tok else {
            i += 1;
            continue;
        };
        if after_dot {
            i += 1;
            continue;
        }
        let next = toks.get(i + 1).map(|t| &t.tok);
        if next == Some(&Tok::LParen) {
            // A function call: Rhai resolves functions when it runs them.
            i += 1;
            continue;
        }
        if NAMESPACES.contains(&id.as_str()) {
            if next == Some(&Tok::Dot) {
                if let Some(Tok::Ident(prop)) = toks.get(i + 2).map(|t| &t.tok) {
                    let full = format!("{id}.{prop}");
                    match fields::lookup(&full) {
                        Some(f) => fields_out.push(f),
                        None => {
                            let hint = fields::suggest(&full)
                                .map(|s| format!(" (did you mean `{s}`?)"))
                                .unwrap_or_default();
                            problems.push(NameProblem {
                                text: full.clone(),
                                msg: format!("unknown field `{full}`{hint}"),
                            });
                        }
                    }
                    i += 3;
                    continue;
                }
            }
            problems.push(NameProblem {
                text: id.clone(),
                msg: format!(
                    "`{id}` is a field namespace, not a value (write e.g. `{id}.<field>`)"
                ),
            });
            i += 1;
            continue;
        }
        let known = matches!(
            id.as_str(),
            "true" | "false" | "in" | "if" | "else" | "switch"
        ) || names.is_list(id)
            || names.is_macro(id)
            || extra_vars.contains(&id.as_str());
        if !known {
            if let Some(h) = falco_hint(id) {
                problems.push(NameProblem {
                    text: id.clone(),
                    msg: format!(
                        "`{id}` is Falco filter syntax; vigil conditions are Rhai expressions: {h}"
                    ),
                });
                i += 1;
                continue;
            }
            let all = names.all_names();
            let hint = closest(id, all.iter().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            let field_hint = if hint.is_empty() {
                fields::suggest(id)
                    .map(|s| format!(" (did you mean the field `{s}`?)"))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let prev = i.checked_sub(1).map(|k| &toks[k].tok);
            let value_position = matches!(
                prev,
                Some(Tok::Op("==" | "!=") | Tok::LParen | Tok::LBracket | Tok::Comma)
            ) || matches!(prev, Some(Tok::Ident(w)) if w == "in");
            let quote_hint = if hint.is_empty() && field_hint.is_empty() && value_position {
                format!(" (a string value must be quoted: \"{id}\")")
            } else {
                String::new()
            };
            problems.push(NameProblem {
                text: id.clone(),
                msg: format!("unknown list or macro `{id}`{hint}{field_hint}{quote_hint}"),
            });
        }
        i += 1;
    }
    problems
}

/// A hint for Falco filter words used as if they were operators.
fn falco_hint(id: &str) -> Option<&'static str> {
    Some(match id {
        "and" => "write `&&`",
        "or" => "write `||`",
        "not" => "write `!`",
        "startswith" => "write `x.starts_with(\"...\")`",
        "endswith" => "write `x.ends_with(\"...\")`",
        "contains" | "icontains" | "bcontains" => "write `x.contains(\"...\")` or `\"...\" in x`",
        "pmatch" => "write `x.starts_with(\"...\")` for each prefix, or a list of prefixes",
        "exists" => "fields always exist; compare with \"\" or 0",
        "intersects" => "test each value with `in`",
        _ => return None,
    })
}

/// The identifiers of `toks` that may name a macro (not a property after a
/// dot, not a function name before `(`), as token indices.
fn macro_candidates(toks: &[Token]) -> impl Iterator<Item = (usize, &str)> + '_ {
    toks.iter().enumerate().filter_map(|(i, t)| {
        let Tok::Ident(id) = &t.tok else { return None };
        if i > 0 && toks[i - 1].tok == Tok::Dot {
            return None;
        }
        if toks.get(i + 1).map(|t| &t.tok) == Some(&Tok::LParen) {
            return None;
        }
        Some((i, id.as_str()))
    })
}

/// The names in `text` that could be macro references, in order (with repeats).
pub(crate) fn macro_refs(text: &str) -> Vec<String> {
    let toks = lex(text);
    macro_candidates(&toks)
        .map(|(_, id)| id.to_string())
        .collect()
}

/// Length in bytes of `text` once every macro name in it is replaced by
/// `(its expansion)`, computed without building it: `size` gives a macro's
/// expanded length (None when `name` is not a macro). Saturates at `usize::MAX`.
pub(crate) fn expanded_len(text: &str, size: &mut dyn FnMut(&str) -> Option<usize>) -> usize {
    let mut n = text.len();
    for name in macro_refs(text) {
        if let Some(s) = size(&name) {
            n = n
                .saturating_sub(name.len())
                .saturating_add(s.saturating_add(2));
        }
    }
    n
}

/// Replace every macro name in `text` by `(its expansion)`. `lookup` gives
/// a macro's fully expanded text (or None when `name` is not a macro).
/// Callers bound the result with [`expanded_len`] first.
pub(crate) fn expand_macros(text: &str, lookup: &mut dyn FnMut(&str) -> Option<String>) -> String {
    let toks = lex(text);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, id) in macro_candidates(&toks) {
        if let Some(exp) = lookup(id) {
            let t = &toks[i];
            out.push_str(&text[last..t.start]);
            out.push('(');
            out.push_str(&exp);
            out.push(')');
            last = t.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoNames;
    impl Names for NoNames {
        fn is_list(&self, n: &str) -> bool {
            n == "shells"
        }
        fn is_macro(&self, n: &str) -> bool {
            n == "web"
        }
        fn all_names(&self) -> Vec<String> {
            vec!["shells".into(), "web".into()]
        }
    }

    #[test]
    fn names_are_checked() {
        let mut f = Vec::new();
        let p = check_names("proc.nmae == \"x\" && shels", &NoNames, &[], &mut f);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].msg.contains("did you mean `proc.name`"),
            "{}",
            p[0].msg
        );
        assert!(p[1].msg.contains("did you mean `shells`"), "{}", p[1].msg);
        let p = check_names(
            "proc.cmdline.starts_with(\"x\") && web && proc.name in shells",
            &NoNames,
            &[],
            &mut f,
        );
        assert!(p.is_empty(), "{p:?}");
        assert!(f.contains(&Field::ProcCmdline) && f.contains(&Field::ProcName));
    }

    #[test]
    fn macro_expansion() {
        let out = expand_macros("a && proc.a && a(1) && b", &mut |n| {
            (n == "a").then(|| "x == 1".to_string())
        });
        assert_eq!(out, "(x == 1) && proc.a && a(1) && b");
        // The measured length is the built one, without building it.
        let text = "a && proc.a && a(1) && b || a";
        let built = expand_macros(text, &mut |n| (n == "a").then(|| "x == 1".to_string()));
        let measured = expanded_len(text, &mut |n| (n == "a").then_some(6));
        assert_eq!(measured, built.len());
        assert_eq!(
            expanded_len("a || a", &mut |_| Some(usize::MAX)),
            usize::MAX
        );
    }
}
