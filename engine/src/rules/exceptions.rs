//! A rule's `exceptions`: the `{name, condition}` form and Falco's tuple
//! form (`fields`, `comps`, `values`), each turned into condition text.

use serde_yaml_ng::{Mapping, Value};

use super::{rhai_literal, scalar_string, string_list, suggest_key, Defs, ExcDef, Frag, SrcLines};
use crate::error::{Diag, Location};

const EXC_KEYS: &[&str] = &["name", "condition", "fields", "values", "comps"];

impl Defs {
    pub(super) fn parse_exceptions(
        &self,
        v: &Value,
        loc: &Location,
        label: &str,
        lines: &SrcLines,
        diag: &mut Diag,
    ) -> Option<Vec<ExcDef>> {
        let l = Some(label);
        let Value::Sequence(seq) = v else {
            diag.err(loc, l, "`exceptions` must be a list of {name, condition}");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for e in seq {
            let Value::Mapping(m) = e else {
                diag.err(loc, l, "each exception must be a mapping {name, condition}");
                ok = false;
                continue;
            };
            let name = m.get("name").and_then(scalar_string).unwrap_or_default();
            let eloc = if name.is_empty() {
                loc.clone()
            } else {
                lines.find_from(loc, &name)
            };
            if name.is_empty() {
                diag.err(loc, l, "exception needs a `name`");
                ok = false;
                continue;
            }
            for k in m.keys() {
                let ks = k.as_str().unwrap_or("");
                if !EXC_KEYS.contains(&ks) {
                    diag.err(
                        &eloc,
                        l,
                        format!(
                            "exception `{name}`: unknown key `{ks}`{}",
                            suggest_key(ks, EXC_KEYS)
                        ),
                    );
                    ok = false;
                }
            }
            let cond = if let Some(c) = m.get("condition") {
                match scalar_string(c) {
                    Some(t) if !t.trim().is_empty() => {
                        if m.contains_key("fields") || m.contains_key("values") {
                            diag.err(&eloc, l, format!("exception `{name}`: give either `condition` or `fields`/`values`, not both"));
                            ok = false;
                            continue;
                        }
                        t
                    }
                    _ => {
                        diag.err(
                            &eloc,
                            l,
                            format!("exception `{name}`: `condition` must be a non-empty string"),
                        );
                        ok = false;
                        continue;
                    }
                }
            } else {
                match tuple_condition(m) {
                    Ok(t) => t,
                    Err(msg) => {
                        diag.err(&eloc, l, format!("exception `{name}`: {msg}"));
                        ok = false;
                        continue;
                    }
                }
            };
            if out.iter().any(|x: &ExcDef| x.name == name) {
                diag.err(&eloc, l, format!("duplicate exception name `{name}`"));
                ok = false;
                continue;
            }
            out.push(ExcDef {
                name,
                cond: Frag {
                    text: cond,
                    loc: eloc,
                },
            });
        }
        ok.then_some(out)
    }
}

/// Falco's tuple-form exception to a condition text.
fn tuple_condition(m: &Mapping) -> Result<String, String> {
    let fields = match m.get("fields") {
        Some(v) => string_list(v).ok_or("`fields` must be a list of field names")?,
        None => return Err("needs `condition`, or `fields` and `values`".into()),
    };
    if fields.is_empty() {
        return Err("`fields` is empty".into());
    }
    let comps = match m.get("comps") {
        None => vec![None; fields.len()],
        Some(v) => {
            let c = string_list(v).ok_or("`comps` must be a list")?;
            if c.len() != fields.len() {
                return Err(format!(
                    "`comps` has {} entries but `fields` has {}",
                    c.len(),
                    fields.len()
                ));
            }
            c.into_iter().map(Some).collect()
        }
    };
    let rows = match m.get("values") {
        Some(Value::Sequence(s)) => s.clone(),
        None | Some(Value::Null) => Vec::new(),
        _ => return Err("`values` must be a list of rows".into()),
    };
    if rows.is_empty() {
        // Falco: an exception with no values never matches.
        return Ok("false".into());
    }
    let mut alts = Vec::new();
    for row in rows {
        let cells: Vec<Value> = match row {
            Value::Sequence(s)
                if fields.len() > 1 || matches!(s.first(), Some(Value::Sequence(_))) =>
            {
                s
            }
            Value::Sequence(s) => vec![Value::Sequence(s)],
            other => vec![other],
        };
        let cells = if fields.len() == 1 && cells.len() == 1 {
            match &cells[0] {
                Value::Sequence(inner) if comps[0].as_deref() != Some("in") && inner.len() == 1 => {
                    inner.clone()
                }
                _ => cells,
            }
        } else {
            cells
        };
        if cells.len() != fields.len() {
            return Err(format!(
                "a values row has {} entries but `fields` has {}",
                cells.len(),
                fields.len()
            ));
        }
        let mut terms = Vec::new();
        for ((f, comp), cell) in fields.iter().zip(&comps).zip(&cells) {
            let comp = comp.clone().unwrap_or_else(|| {
                if matches!(cell, Value::Sequence(_)) {
                    "in".into()
                } else {
                    "==".into()
                }
            });
            let lit = match cell {
                Value::Sequence(s) => {
                    let items: Option<Vec<String>> = s.iter().map(rhai_literal).collect();
                    format!(
                        "[{}]",
                        items
                            .ok_or("values must be strings, integers or lists of them")?
                            .join(", ")
                    )
                }
                // `in` a list name
                Value::String(s) if comp == "in" && !s.contains(' ') && !s.starts_with('"') => {
                    s.clone()
                }
                other => rhai_literal(other)
                    .ok_or("values must be strings, integers or lists of them")?,
            };
            let t = match comp.as_str() {
                "=" | "==" => format!("{f} == {lit}"),
                "!=" | "<" | "<=" | ">" | ">=" | "in" => format!("{f} {comp} {lit}"),
                "startswith" | "starts_with" => format!("{f}.starts_with({lit})"),
                "endswith" | "ends_with" => format!("{f}.ends_with({lit})"),
                "contains" => format!("{f}.contains({lit})"),
                "glob" => format!("glob({f}, {lit})"),
                "regex" => format!("regex({f}, {lit})"),
                other => return Err(format!("unsupported comp `{other}`")),
            };
            terms.push(t);
        }
        alts.push(format!("({})", terms.join(" && ")));
    }
    Ok(alts.join(" || "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_exceptions() {
        let m: Mapping = serde_yaml_ng::from_str(
            "{name: e, fields: [proc.name, file.path], comps: [==, startswith], values: [[sh, /tmp], [bash, \"/v\\\"\"]]}",
        )
        .unwrap();
        assert_eq!(
            tuple_condition(&m).unwrap(),
            r#"(proc.name == "sh" && file.path.starts_with("/tmp")) || (proc.name == "bash" && file.path.starts_with("/v\""))"#
        );
        let m: Mapping =
            serde_yaml_ng::from_str("{name: e, fields: [proc.name], values: [[[a, b]]]}").unwrap();
        assert_eq!(tuple_condition(&m).unwrap(), r#"(proc.name in ["a", "b"])"#);
    }
}
