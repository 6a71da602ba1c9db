//! Falco's items (rules, macros, lists, exceptions, `append` and
//! `override`, plugin and engine versions, `source`) collected per rule set
//! in one namespace, then turned into vigil rule definitions.

use std::collections::HashMap;

use serde_yaml_ng::{Mapping, Value};

use super::evtypes::syscall_kinds;
use super::lower::{LowerError, Lowerer, Out};
use super::output::output_template;
use super::parser::{parse, Cmp, Expr, Val};
use super::{LIST_KEYS, MACRO_KEYS, RULE_KEYS};
use crate::alert::Priority;
use crate::error::{Diag, Location};
use crate::event::EventType;
use crate::rules::{ExcDef, Frag, RuleDef, SrcLines};

#[derive(Debug)]
pub(crate) struct MacroEntry {
    pub(super) loc: Location,
    pub(super) text: String,
    pub(super) ast: Result<Expr, (usize, String)>,
}

#[derive(Clone, Debug)]
pub(super) struct FExc {
    pub(super) name: String,
    pub(super) fields: Vec<String>,
    pub(super) comps: Vec<String>,
    pub(super) values: Vec<Value>,
    pub(super) loc: Location,
}

#[derive(Clone, Debug)]
pub(super) struct FRule {
    pub(super) name: String,
    pub(super) loc: Location,
    pub(super) cond: String,
    pub(super) cond_loc: Location,
    pub(super) output: String,
    pub(super) output_loc: Location,
    pub(super) priority: Option<Priority>,
    pub(super) enabled: bool,
    pub(super) tags: Vec<String>,
    pub(super) desc: String,
    pub(super) exceptions: Vec<FExc>,
    /// A reason the rule cannot run whatever its condition (plugin source).
    pub(super) skip: Option<String>,
}

/// The Falco items of a rule set, in one namespace (see the module doc).
#[derive(Default, Debug)]
pub(crate) struct FalcoDefs {
    pub(super) lists: HashMap<String, Vec<String>>,
    pub(super) macros: HashMap<String, MacroEntry>,
    pub(super) rules: Vec<FRule>,
    pub(super) rule_idx: HashMap<String, usize>,
}

/// A scalar as text (the vigil loader's reading: strings, numbers, bools).
use crate::rules::scalar_string as sval;

/// A sequence of scalars (null: empty). Unlike vigil's `string_list`, a lone
/// scalar is not a one-item list: Falco's loader refuses it.
pub(super) fn slist(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Sequence(s) => s.iter().map(sval).collect(),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

/// What `override:` says for each key (`append` / `replace`).
pub(super) fn overrides(m: &Mapping) -> Result<HashMap<String, String>, String> {
    match m.get("override") {
        None => Ok(HashMap::new()),
        Some(Value::Mapping(o)) => o
            .iter()
            .map(|(k, v)| match (sval(k), sval(v)) {
                (Some(k), Some(v)) if v == "append" || v == "replace" => Ok((k, v)),
                (k, _) => Err(format!(
                    "`override: {{{}: ...}}` must be `append` or `replace`",
                    k.unwrap_or_default()
                )),
            })
            .collect(),
        Some(_) => Err("`override` must be a mapping of key: append|replace".into()),
    }
}

impl FalcoDefs {
    /// Whether a Falco file defined this rule.
    pub(crate) fn has_rule(&self, name: &str) -> bool {
        self.rule_idx.contains_key(name)
    }

    /// (macros, lists) defined by Falco files.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.macros.len(), self.lists.len())
    }

    /// One item of a Falco file.
    pub(crate) fn add_item(
        &mut self,
        m: &Mapping,
        item_loc: &Location,
        kloc: &dyn Fn(&str) -> Location,
        lines: &SrcLines,
        diag: &mut Diag,
    ) {
        if m.contains_key("required_engine_version") && !m.contains_key("rule") {
            return; // accepted: vigil runs every engine version's syntax it knows
        }
        if let Some(p) = m.get("required_plugin_versions") {
            let names: Vec<String> = p
                .as_sequence()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x.get("name").and_then(sval))
                        .collect()
                })
                .unwrap_or_default();
            for n in names.iter().filter(|n| n.as_str() != "container") {
                diag.warn(
                    item_loc,
                    None,
                    format!("plugin `{n}`: vigil has no plugins; rules that need its fields or source are inactive"),
                );
            }
            return;
        }
        let kind = ["rule", "macro", "list"]
            .into_iter()
            .find(|k| m.contains_key(*k));
        let Some(kind) = kind else {
            let first = m.keys().next().and_then(sval).unwrap_or_default();
            diag.err(
                item_loc,
                None,
                format!("item has none of `rule`, `macro`, `list` (first key `{first}`)"),
            );
            return;
        };
        let Some(name) = m.get(kind).and_then(sval).filter(|n| !n.trim().is_empty()) else {
            diag.err(&kloc(kind), None, format!("`{kind}` needs a name"));
            return;
        };
        let label = format!("{kind} `{name}`");
        let l = Some(label.as_str());
        let allowed = match kind {
            "rule" => RULE_KEYS,
            "macro" => MACRO_KEYS,
            _ => LIST_KEYS,
        };
        for k in m.keys() {
            let ks = sval(k).unwrap_or_default();
            if !allowed.contains(&ks.as_str()) {
                diag.err(
                    &kloc(&ks),
                    l,
                    format!(
                        "unknown key `{ks}` for a Falco {kind} (expected one of: {})",
                        allowed.join(", ")
                    ),
                );
                return;
            }
        }
        let ov = match overrides(m) {
            Ok(o) => o,
            Err(e) => {
                diag.err(&kloc("override"), l, e);
                return;
            }
        };
        let append_all = matches!(m.get("append"), Some(Value::Bool(true)));
        let mode = |key: &str| -> Option<String> {
            if append_all {
                Some("append".into())
            } else {
                ov.get(key).cloned()
            }
        };
        match kind {
            "list" => {
                let Some(items) = m.get("items").and_then(slist) else {
                    diag.err(&kloc("items"), l, "`items` must be a list of strings");
                    return;
                };
                let mut out = Vec::new();
                for it in items {
                    // Falco splices items into conditions as text, so a
                    // quoted item (`'"(systemd)"'`) is the string inside.
                    let it = match it.as_bytes() {
                        [q @ (b'"' | b'\''), .., e] if q == e && it.len() >= 2 => {
                            it[1..it.len() - 1].to_string()
                        }
                        _ => it,
                    };
                    match self.lists.get(&it) {
                        Some(other) if it != name => out.extend(other.iter().cloned()),
                        _ => out.push(it),
                    }
                }
                match (mode("items").as_deref(), self.lists.get_mut(&name)) {
                    (Some("append"), Some(old)) => old.extend(out),
                    (Some("append"), None) => {
                        diag.err(item_loc, l, "`append` to a list not defined earlier")
                    }
                    _ => {
                        self.lists.insert(name, out);
                    }
                }
            }
            "macro" => {
                let Some(text) = m.get("condition").and_then(sval) else {
                    diag.err(item_loc, l, "macro needs a `condition`");
                    return;
                };
                let cloc = kloc("condition");
                match (mode("condition").as_deref(), self.macros.get_mut(&name)) {
                    (Some("append"), Some(old)) => {
                        old.text = format!("{} {text}", old.text);
                        old.ast = parse(&old.text);
                        if let Err((_, msg)) = &old.ast {
                            diag.err(&cloc, l, format!("after append: {msg}"));
                        }
                    }
                    (Some("append"), None) => {
                        diag.err(item_loc, l, "`append` to a macro not defined earlier")
                    }
                    _ => {
                        let ast = parse(&text);
                        if let Err((pos, msg)) = &ast {
                            diag.err(&locate(Some(lines), &cloc, &text, *pos), l, msg.clone());
                        }
                        self.macros.insert(
                            name,
                            MacroEntry {
                                loc: cloc,
                                text,
                                ast,
                            },
                        );
                    }
                }
            }
            _ => self.add_rule(m, name, &label, item_loc, kloc, &mode, diag),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_rule(
        &mut self,
        m: &Mapping,
        name: String,
        label: &str,
        item_loc: &Location,
        kloc: &dyn Fn(&str) -> Location,
        mode: &dyn Fn(&str) -> Option<String>,
        diag: &mut Diag,
    ) {
        let l = Some(label);
        let str_key = |k: &str, diag: &mut Diag| -> Option<String> {
            let v = m.get(k)?;
            let s = sval(v);
            if s.is_none() {
                diag.err(&kloc(k), l, format!("`{k}` must be a string"));
            }
            s
        };
        let cond = str_key("condition", diag);
        let output = str_key("output", diag);
        let desc = str_key("desc", diag);
        let priority = match str_key("priority", diag) {
            None => None,
            Some(p) => match p.parse::<Priority>() {
                Ok(p) => Some(p),
                Err(e) => {
                    diag.err(&kloc("priority"), l, e.to_string());
                    return;
                }
            },
        };
        let enabled = match m.get("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                diag.err(&kloc("enabled"), l, "`enabled` must be true or false");
                return;
            }
        };
        let tags = match m.get("tags").map(slist) {
            None => None,
            Some(Some(t)) => Some(t),
            Some(None) => {
                diag.err(&kloc("tags"), l, "`tags` must be a list of strings");
                return;
            }
        };
        let exceptions = match m.get("exceptions") {
            None => None,
            Some(v) => match parse_exceptions(v, &kloc("exceptions"), label, diag) {
                Some(e) => Some(e),
                None => return,
            },
        };
        let source = m.get("source").and_then(sval);
        if let Some(s) = source.as_deref().filter(|s| *s != "syscall") {
            diag.warn(
                item_loc,
                l,
                format!("source `{s}`: vigil sees syscall events only; the rule is inactive"),
            );
        }
        let skip = source
            .filter(|s| s != "syscall")
            .map(|s| format!("source `{s}` (vigil sees syscall events only)"));
        if let Some(&i) = self.rule_idx.get(&name) {
            let r = &mut self.rules[i];
            if let Some(c) = cond {
                match mode("condition").as_deref() {
                    Some("append") => r.cond = format!("{} {c}", r.cond),
                    Some(_) => r.cond = c,
                    None => {
                        diag.err(
                            item_loc,
                            l,
                            format!("duplicate rule (first defined at {}); use `append: true` or `override:`", r.loc),
                        );
                        return;
                    }
                }
                r.cond_loc = kloc("condition");
            }
            if let Some(o) = output {
                if mode("output").as_deref() == Some("append") {
                    r.output = format!("{} {o}", r.output);
                } else {
                    r.output = o;
                }
                r.output_loc = kloc("output");
            }
            if let Some(d) = desc {
                r.desc = d;
            }
            if let Some(p) = priority {
                r.priority = Some(p);
            }
            if let Some(e) = enabled {
                r.enabled = e;
            }
            if let Some(t) = tags {
                if mode("tags").as_deref() == Some("append") {
                    r.tags.extend(t);
                } else {
                    r.tags = t;
                }
            }
            if let Some(es) = exceptions {
                if mode("exceptions").as_deref() == Some("replace") {
                    r.exceptions = es;
                } else {
                    for e in es {
                        match r.exceptions.iter_mut().find(|x| x.name == e.name) {
                            Some(x) => x.values.extend(e.values),
                            None => r.exceptions.push(e),
                        }
                    }
                }
            }
            if skip.is_some() {
                r.skip = skip;
            }
            return;
        }
        if mode("condition").as_deref() == Some("append") || (cond.is_none() && m.len() > 1) {
            diag.err(item_loc, l, "append/override of a rule not defined earlier");
            return;
        }
        let Some(cond) = cond else {
            diag.err(item_loc, l, "rule needs a `condition`");
            return;
        };
        self.rule_idx.insert(name.clone(), self.rules.len());
        self.rules.push(FRule {
            name,
            loc: item_loc.clone(),
            cond,
            cond_loc: kloc("condition"),
            output: output.unwrap_or_default(),
            output_loc: kloc("output"),
            priority,
            enabled: enabled.unwrap_or(true),
            tags: tags.unwrap_or_default(),
            desc: desc.unwrap_or_default(),
            exceptions: exceptions.unwrap_or_default(),
            skip,
        });
    }

    /// Turn every Falco rule into a vigil rule definition (inactive ones
    /// disabled with their reason). Errors go to `diag`.
    pub(crate) fn finish(&self, files: &[SrcLines], diag: &mut Diag) -> Vec<RuleDef> {
        let file_of = |loc: &Location| files.iter().find(|f| f.name == loc.file);
        let mut out = Vec::new();
        for r in &self.rules {
            let label = format!("rule `{}`", r.name);
            let l = Some(label.as_str());
            let lowerer = |kinds| Lowerer::new(&self.lists, &self.macros, kinds);
            let report = |e: LowerError, base: &Location, text: &str, diag: &mut Diag| {
                if e.pos == usize::MAX {
                    return; // reported at its macro
                }
                match e.in_macro.as_ref().and_then(|m| self.macros.get(m)) {
                    Some(m) => diag.err(
                        &locate(file_of(&m.loc), &m.loc, &m.text, e.pos),
                        l,
                        format!(
                            "in macro `{}`: {}",
                            e.in_macro.as_deref().unwrap_or(""),
                            e.msg
                        ),
                    ),
                    None => diag.err(&locate(file_of(base), base, text, e.pos), l, e.msg),
                }
            };
            let ast = match parse(&r.cond) {
                Ok(a) => a,
                Err((pos, msg)) => {
                    diag.err(
                        &locate(file_of(&r.cond_loc), &r.cond_loc, &r.cond, pos),
                        l,
                        msg,
                    );
                    continue;
                }
            };
            // First the event kinds, as Falco infers them from `evt.type`;
            // then the condition for those kinds (per-kind fields keep only
            // their alternatives).
            let types = match lowerer(None).lower(&ast) {
                Ok((_, types)) => types,
                Err(e) => {
                    report(e, &r.cond_loc, &r.cond, diag);
                    continue;
                }
            };
            let (kinds, missing_sys): (Vec<EventType>, Vec<String>) = if types.neg {
                (EventType::ALL.to_vec(), Vec::new())
            } else {
                let mut k: Vec<EventType> = types
                    .set
                    .iter()
                    .flat_map(|n| syscall_kinds(n).iter().copied())
                    .collect();
                k.sort();
                k.dedup();
                let miss = types
                    .set
                    .iter()
                    .filter(|n| syscall_kinds(n).is_empty())
                    .cloned()
                    .collect();
                (k, miss)
            };
            let mut lw = lowerer(Some(kinds.clone()));
            let mut cond = match lw.lower(&ast) {
                Ok((cond, _)) => cond,
                Err(e) => {
                    report(e, &r.cond_loc, &r.cond, diag);
                    continue;
                }
            };
            // vigil's exec is a successful one: an execve rule that only a
            // failed exec can satisfy (`evt.res != SUCCESS`) is a rule on
            // vigil's exec_failed kind.
            let mut kinds = kinds;
            if kinds == [EventType::Exec] && cond == Out::Const(false) {
                let mut failed = lowerer(Some(vec![EventType::ExecFailed]));
                if let Ok((c, _)) = failed.lower(&ast) {
                    if c != Out::Const(false) {
                        (kinds, lw, cond) = (vec![EventType::ExecFailed], failed, c);
                    }
                }
            }
            let mut exceptions = Vec::new();
            let mut bad = false;
            for e in &r.exceptions {
                let ast = match exception_expr(e, &self.lists) {
                    Ok(a) => a,
                    Err(msg) => {
                        diag.err(&e.loc, l, format!("exception `{}`: {msg}", e.name));
                        bad = true;
                        continue;
                    }
                };
                match lw.lower(&ast) {
                    Ok((Out::Const(false), _)) => {}
                    Ok((o, _)) => exceptions.push(ExcDef {
                        name: e.name.clone(),
                        cond: Frag {
                            text: match o {
                                Out::Text(t) => t,
                                Out::Const(b) => b.to_string(),
                            },
                            loc: e.loc.clone(),
                        },
                    }),
                    Err(err) => {
                        diag.err(&e.loc, l, format!("exception `{}`: {}", e.name, err.msg));
                        bad = true;
                    }
                }
            }
            if bad {
                continue;
            }
            let needs = lw.needs;
            let mut reasons = Vec::new();
            if let Some(s) = &r.skip {
                reasons.push(s.clone());
            }
            if kinds.is_empty() {
                reasons.push(if missing_sys.is_empty() {
                    "its condition matches no event type".to_string()
                } else {
                    format!(
                        "needs syscall(s) {} that vigil does not observe",
                        missing_sys.join(", ")
                    )
                });
            }
            if !needs.fields.is_empty() {
                reasons.push(format!(
                    "needs field(s) {} that vigil does not have",
                    names(&needs.fields)
                ));
            }
            if !needs.other.is_empty() {
                reasons.push(format!("uses {}", names(&needs.other)));
            }
            if reasons.is_empty() && cond == Out::Const(false) {
                reasons.push("its condition is always false on vigil's events".into());
            }
            let mut notes = Vec::new();
            if !missing_sys.is_empty() && !kinds.is_empty() {
                notes.push(format!(
                    "syscall(s) {} not observed",
                    missing_sys.join(", ")
                ));
            }
            if !needs.empty.is_empty() {
                notes.push(format!(
                    "{} read as empty (no container metadata)",
                    names(&needs.empty)
                ));
            }
            let inactive = (!reasons.is_empty()).then(|| reasons.join("; "));
            let active = inactive.is_none();
            let text = match (&inactive, cond) {
                (Some(_), _) => "false".to_string(),
                (None, Out::Text(t)) => t,
                (None, Out::Const(b)) => b.to_string(),
            };
            out.push(RuleDef {
                name: r.name.clone(),
                loc: r.loc.clone(),
                desc: r.desc.clone(),
                frags: vec![Frag {
                    text,
                    loc: r.cond_loc.clone(),
                }],
                output: Some(Frag {
                    text: if inactive.is_some() {
                        String::new()
                    } else {
                        output_template(&r.output, crate::event::EventMask::of(&kinds))
                    },
                    loc: r.output_loc.clone(),
                }),
                priority: r.priority,
                enabled: r.enabled && inactive.is_none(),
                tags: r.tags.clone(),
                exceptions: if inactive.is_some() {
                    Vec::new()
                } else {
                    exceptions
                },
                events: if inactive.is_some() {
                    Vec::new()
                } else {
                    kinds
                },
                events_loc: r.cond_loc.clone(),
                threshold: None,
                falco: Some(crate::rules::FalcoStatus {
                    inactive,
                    notes,
                    enabled: r.enabled,
                    output: active.then(|| r.output.clone()),
                }),
            });
        }
        out
    }
}

/// Names joined for a message (`a, b`).
fn names(s: &std::collections::BTreeSet<String>) -> String {
    s.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// The file position of byte `pos` of a condition whose `condition:` key is at `base`.
pub(super) fn locate(file: Option<&SrcLines>, base: &Location, text: &str, pos: usize) -> Location {
    let Some(f) = file else { return base.clone() };
    // The token at `pos`, found in the file from the key on.
    let tok: String = text
        .get(pos.min(text.len())..)
        .unwrap_or("")
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    f.find_from(base, &tok)
}

pub(super) fn parse_exceptions(
    v: &Value,
    loc: &Location,
    label: &str,
    diag: &mut Diag,
) -> Option<Vec<FExc>> {
    let l = Some(label);
    let Some(seq) = v.as_sequence() else {
        diag.err(loc, l, "`exceptions` must be a list");
        return None;
    };
    let mut out = Vec::new();
    for e in seq {
        let Some(m) = e.as_mapping() else {
            diag.err(
                loc,
                l,
                "each exception must be a mapping {name, fields, comps, values}",
            );
            return None;
        };
        let name = m.get("name").and_then(sval).unwrap_or_default();
        if name.is_empty() {
            diag.err(loc, l, "exception needs a `name`");
            return None;
        }
        let fields = match m.get("fields") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(v) => match slist(v) {
                Some(f) => f,
                None => {
                    diag.err(
                        loc,
                        l,
                        format!("exception `{name}`: `fields` must be a list"),
                    );
                    return None;
                }
            },
            None => Vec::new(),
        };
        let comps = match m.get("comps") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(v) => slist(v).unwrap_or_default(),
            None => Vec::new(),
        };
        let values = match m.get("values") {
            Some(Value::Sequence(s)) => s.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                diag.err(
                    loc,
                    l,
                    format!("exception `{name}`: `values` must be a list"),
                );
                return None;
            }
        };
        out.push(FExc {
            name,
            fields,
            comps,
            values,
            loc: loc.clone(),
        });
    }
    Some(out)
}

/// A Falco exception as a condition tree: any values row whose cells all
/// compare true (`fields[i] comps[i] row[i]`).
pub(super) fn exception_expr(
    e: &FExc,
    lists: &HashMap<String, Vec<String>>,
) -> Result<Expr, String> {
    if e.fields.is_empty() {
        return Err("needs `fields`".into());
    }
    if !e.comps.is_empty() && e.comps.len() != e.fields.len() {
        return Err(format!(
            "`comps` has {} entries but `fields` has {}",
            e.comps.len(),
            e.fields.len()
        ));
    }
    let setop = |c: Option<&String>| {
        c.is_some_and(|c| matches!(c.as_str(), "in" | "intersects" | "pmatch"))
    };
    let mut rows = Vec::new();
    for row in &e.values {
        // One field: a row is its value (a list for `in`), or a one-cell row.
        let cells: Vec<Value> = match row {
            Value::Sequence(s) if e.fields.len() > 1 => s.clone(),
            Value::Sequence(s)
                if s.len() == 1
                    && (!setop(e.comps.first()) || matches!(s[0], Value::Sequence(_))) =>
            {
                s.clone()
            }
            other => vec![other.clone()],
        };
        if cells.len() != e.fields.len() {
            return Err(format!(
                "a values row has {} entries but `fields` has {}",
                cells.len(),
                e.fields.len()
            ));
        }
        let mut terms = Vec::new();
        for (i, (f, cell)) in e.fields.iter().zip(&cells).enumerate() {
            let comp = e.comps.get(i).cloned().unwrap_or_else(|| "=".into());
            let (vals, list) = match cell {
                Value::Sequence(s) => (
                    s.iter()
                        .map(|x| {
                            sval(x)
                                .map(Val::Quoted)
                                .ok_or("values must be strings or numbers")
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    true,
                ),
                other => {
                    let s = sval(other).ok_or("values must be strings, numbers or lists")?;
                    if matches!(comp.as_str(), "in" | "intersects" | "pmatch")
                        && lists.contains_key(&s)
                    {
                        (vec![Val::Bare(s)], true)
                    } else {
                        (
                            vec![Val::Quoted(s)],
                            matches!(comp.as_str(), "in" | "intersects" | "pmatch"),
                        )
                    }
                }
            };
            let (field, arg) = match f.split_once('[') {
                Some((a, b)) => (a.to_string(), Some(b.trim_end_matches(']').to_string())),
                None => (f.clone(), None),
            };
            terms.push(Expr::Cmp(Cmp {
                field,
                arg,
                xf: Vec::new(),
                op: comp,
                vals,
                list,
                pos: 0,
            }));
        }
        rows.push(Expr::And(terms));
    }
    Ok(Expr::Or(rows))
}
