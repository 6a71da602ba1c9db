//! Reading one source's YAML items into the definitions ([`Defs`]): each
//! `list`, `macro` and `rule` item with its keys checked, redefinitions and
//! `append` applied, thresholds parsed; Falco files go to the dialect plugged
//! into [`Defs::falco`].

use serde_yaml_ng::{Mapping, Value};

use super::{
    abbreviate_chain, parse_duration, scalar_string, string_list, suggest_key, Defs, Frag, ListDef,
    ListItem, MacroDef, RuleDef, Source, SrcLines, Threshold, MAX_THRESHOLD_COUNT,
};
use crate::alert::Priority;
use crate::dialect::Dialect;
use crate::error::{Diag, Location};
use crate::event::EventType;
use crate::fields;
use crate::limits::Limits;

const LIST_KEYS: &[&str] = &["list", "items", "append"];
const MACRO_KEYS: &[&str] = &["macro", "condition", "append"];
const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "enabled",
    "tags",
    "exceptions",
    "events",
    "threshold",
    "append",
];
const OVERRIDE_KEYS: &[&str] = &["rule", "enabled", "priority", "output", "desc", "tags"];
const THRESHOLD_KEYS: &[&str] = &["count", "window", "by"];

impl Defs {
    /// Parse one source's items into the definitions (errors into `diag`).
    pub fn add_source(&mut self, src: &Source, diag: &mut Diag) {
        let lines = SrcLines::new(&src.name, &src.text);
        let value: Value = match serde_yaml_ng::from_str(&src.text) {
            Ok(v) => v,
            Err(e) => {
                let (l, c) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                // serde_yaml_ng places a duplicate key at its mapping; point
                // at the repeated key itself.
                let dup = e
                    .to_string()
                    .split_once("duplicate entry with key \"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(k, _)| k.to_string());
                match dup.and_then(|k| Some((lines.duplicate_key(l, c, &k)?, k))) {
                    Some(((second, first_line), k)) => diag.err(
                        &second,
                        None,
                        format!("duplicate key `{k}` (first given at line {first_line})"),
                    ),
                    None => diag.err(&lines.loc(l, c), None, format!("YAML syntax error: {e}")),
                }
                self.files.push(lines);
                return;
            }
        };
        let items = match value {
            Value::Sequence(s) => s,
            Value::Null => Vec::new(),
            _ => {
                diag.err(
                    &lines.loc(1, 1),
                    None,
                    "a rule file must be a YAML list of items (`- rule: ...`, `- macro: ...`, `- list: ...`)",
                );
                self.files.push(lines);
                return;
            }
        };
        let falco = match src.dialect {
            Some(d) => d == Dialect::Falco,
            None => self.falco.as_ref().is_some_and(|f| f.claims(&items)),
        };
        let mut starts = lines.item_lines();
        let mut aligned = starts.len() == items.len();
        if !aligned {
            // Unusual layout (flow style, odd indentation): find each item by
            // its `rule: NAME` / `macro: NAME` / `list: NAME` text instead.
            let mut found = Vec::new();
            let mut after = 1;
            for item in &items {
                let key = item.as_mapping().and_then(|m| {
                    ["rule", "macro", "list"]
                        .into_iter()
                        .find_map(|k| m.get(k).and_then(scalar_string).map(|n| (k, n)))
                });
                let line = key.and_then(|(k, n)| {
                    (after..=lines.lines.len()).find(|&ln| {
                        let l = &lines.lines[ln - 1];
                        l.find(&format!("{k}:"))
                            .is_some_and(|p| l[p..].contains(n.as_str()))
                    })
                });
                match line {
                    Some(ln) => {
                        found.push(ln);
                        after = ln + 1;
                    }
                    None => break,
                }
            }
            if found.len() == items.len() {
                starts = found;
                aligned = true;
            }
        }
        for (i, item) in items.iter().enumerate() {
            let (from, to) = if aligned {
                (starts[i], starts.get(i + 1).copied().unwrap_or(usize::MAX))
            } else {
                (0, 0)
            };
            let item_loc = if aligned {
                let l = &lines.lines[from - 1];
                let col = l.len() - l.trim_start().len() + 1;
                lines.loc(from, col)
            } else {
                lines.loc(0, 0)
            };
            let kloc = |key: &str| {
                if aligned {
                    lines
                        .key_loc(from, to, key)
                        .unwrap_or_else(|| item_loc.clone())
                } else {
                    item_loc.clone()
                }
            };
            let Value::Mapping(m) = item else {
                diag.err(
                    &item_loc,
                    None,
                    "each item must be a mapping with `rule`, `macro` or `list`",
                );
                continue;
            };
            if let Some(f) = self.falco.as_mut().filter(|_| falco) {
                f.add_item(m, &item_loc, &kloc, &lines, diag);
            } else {
                self.add_item(m, &item_loc, &kloc, &lines, diag);
            }
        }
        self.files.push(lines);
    }

    fn add_item(
        &mut self,
        m: &Mapping,
        item_loc: &Location,
        kloc: &dyn Fn(&str) -> Location,
        lines: &SrcLines,
        diag: &mut Diag,
    ) {
        let kinds: Vec<&str> = ["rule", "macro", "list"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        let kind = match kinds.as_slice() {
            [k] => *k,
            [] => {
                let first = m.keys().next().and_then(Value::as_str).unwrap_or("?");
                diag.err(
                    item_loc,
                    None,
                    format!("item has none of `rule`, `macro`, `list` (first key `{first}`)"),
                );
                return;
            }
            _ => {
                diag.err(
                    item_loc,
                    None,
                    format!("item has several of {}", kinds.join(", ")),
                );
                return;
            }
        };
        let name = match m.get(kind).and_then(scalar_string) {
            Some(n) if !n.trim().is_empty() => n,
            _ => {
                diag.err(&kloc(kind), None, format!("`{kind}` needs a name"));
                return;
            }
        };
        let label = format!("{kind} `{name}`");
        let allowed = match kind {
            "rule" => RULE_KEYS,
            "macro" => MACRO_KEYS,
            _ => LIST_KEYS,
        };
        let bad = false;
        for k in m.keys() {
            let ks = k.as_str().unwrap_or("");
            if !allowed.contains(&ks) {
                diag.err(
                    &kloc(ks),
                    Some(&label),
                    format!(
                        "unknown key `{}`{}",
                        scalar_string(k).unwrap_or_default(),
                        suggest_key(ks, allowed)
                    ),
                );
                // Keep going: the item's other errors are reported too.
            }
        }
        let append = match m.get("append") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                diag.err(
                    &kloc("append"),
                    Some(&label),
                    "`append` must be true or false",
                );
                return;
            }
        };
        let cond_frag = |diag: &mut Diag| -> Option<Option<Frag>> {
            match m.get("condition") {
                None => Some(None),
                Some(v) => match scalar_string(v) {
                    Some(t) if !t.trim().is_empty() => Some(Some(Frag {
                        text: t,
                        loc: kloc("condition"),
                    })),
                    _ => {
                        diag.err(
                            &kloc("condition"),
                            Some(&label),
                            "`condition` must be a non-empty string",
                        );
                        None
                    }
                },
            }
        };
        match kind {
            "list" => {
                let items = match m.get("items") {
                    Some(Value::Sequence(s)) => s,
                    Some(Value::Null) | None if append => &Vec::new(),
                    _ => {
                        diag.err(&kloc("items"), Some(&label), "`items` must be a list");
                        return;
                    }
                };
                if self.list_work > self.limits.list_work {
                    return; // already reported; build nothing more
                }
                let base: &[ListItem] = if append {
                    match self.lists.get(&name) {
                        Some(l) => &l.items,
                        None => {
                            diag.err(
                                item_loc,
                                Some(&label),
                                "`append: true` to a list not defined earlier",
                            );
                            return;
                        }
                    }
                } else {
                    &[]
                };
                // Included lists are merged without repeats, so nesting a list
                // twice (`[l1, l1]`) costs nothing.
                let mut seen: std::collections::HashSet<&ListItem> = base.iter().collect();
                let mut added: Vec<ListItem> = Vec::new();
                let mut via: Option<(&str, usize)> = None;
                let mut new_items: Vec<&ListItem> = Vec::new();
                let mut literals = Vec::new();
                for it in items {
                    match it {
                        Value::String(s) => match self.lists.get(s) {
                            Some(other) if s != &name => {
                                if via.is_none_or(|(_, n)| other.items.len() > n) {
                                    via = Some((s.as_str(), other.items.len()));
                                }
                                new_items.extend(other.items.iter());
                            }
                            _ => literals.push(ListItem::Str(s.clone())),
                        },
                        Value::Number(n) if n.is_i64() => {
                            literals.push(ListItem::Int(n.as_i64().unwrap_or_default()))
                        }
                        Value::Bool(b) => literals.push(ListItem::Str(b.to_string())),
                        _ => {
                            diag.err(
                                &kloc("items"),
                                Some(&label),
                                "list items must be strings or integers",
                            );
                            return;
                        }
                    }
                }
                new_items.extend(literals.iter());
                for it in new_items {
                    if seen.insert(it) {
                        added.push(it.clone());
                        if base.len() + added.len() > self.limits.list_items {
                            break;
                        }
                    }
                }
                let total = base.len() + added.len();
                let via = via.map(|(n, _)| n.to_string());
                let chain = |via: &Option<String>| {
                    let mut c = vec![name.clone()];
                    let mut cur = via.clone();
                    while let Some(n) = cur {
                        if c.contains(&n) || c.len() > self.lists.len() {
                            break;
                        }
                        cur = self.lists.get(&n).and_then(|l| l.via.clone());
                        c.push(n);
                    }
                    abbreviate_chain(&c)
                };
                let Limits {
                    list_items: max_items,
                    list_work: max_work,
                    ..
                } = self.limits;
                if total > max_items {
                    diag.err(
                        &kloc("items"),
                        Some(&label),
                        format!(
                            "list {} holds more than {max_items} distinct items",
                            chain(&via)
                        ),
                    );
                    return;
                }
                self.list_work = self.list_work.saturating_add(total);
                if self.list_work > max_work {
                    diag.err(
                        &kloc("items"),
                        Some(&label),
                        format!(
                            "lists expand to more than {max_work} items in all at list {} (each list that includes others holds a copy of their items); lists after it are not built",
                            chain(&via)
                        ),
                    );
                    return;
                }
                if bad {
                    return;
                }
                match self.lists.get_mut(&name) {
                    Some(l) if append => {
                        l.items.extend(added);
                        if via.is_some() {
                            l.via = via;
                        }
                    }
                    _ => {
                        self.lists.insert(
                            name,
                            ListDef {
                                loc: item_loc.clone(),
                                items: added,
                                via,
                            },
                        );
                    }
                }
            }
            "macro" => {
                let Some(frag) = cond_frag(diag) else { return };
                let Some(frag) = frag else {
                    diag.err(item_loc, Some(&label), "macro needs a `condition`");
                    return;
                };
                if bad {
                    return;
                }
                if append {
                    match self.macros.get_mut(&name) {
                        Some(mdef) => mdef.frags.push(frag),
                        None => diag.err(
                            item_loc,
                            Some(&label),
                            "`append: true` to a macro not defined earlier",
                        ),
                    }
                } else {
                    self.macros.insert(
                        name,
                        MacroDef {
                            loc: item_loc.clone(),
                            frags: vec![frag],
                        },
                    );
                }
            }
            _ => self.add_rule(
                m,
                name,
                label.clone(),
                append,
                bad,
                item_loc,
                kloc,
                lines,
                diag,
                cond_frag,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_rule(
        &mut self,
        m: &Mapping,
        name: String,
        label: String,
        append: bool,
        mut bad: bool,
        item_loc: &Location,
        kloc: &dyn Fn(&str) -> Location,
        lines: &SrcLines,
        diag: &mut Diag,
        cond_frag: impl Fn(&mut Diag) -> Option<Option<Frag>>,
    ) {
        let l = Some(label.as_str());
        let frag = match cond_frag(diag) {
            Some(f) => f,
            None => {
                bad = true;
                None
            }
        };
        let desc = match m.get("desc") {
            None => None,
            Some(v) => match scalar_string(v) {
                Some(s) => Some(s),
                None => {
                    diag.err(&kloc("desc"), l, "`desc` must be a string");
                    bad = true;
                    None
                }
            },
        };
        let output = match m.get("output") {
            None => None,
            Some(v) => match scalar_string(v) {
                Some(s) => Some(Frag {
                    text: s.trim_end().to_string(),
                    loc: kloc("output"),
                }),
                None => {
                    diag.err(&kloc("output"), l, "`output` must be a string");
                    bad = true;
                    None
                }
            },
        };
        let priority = match m.get("priority") {
            None => None,
            Some(v) => match scalar_string(v).map(|s| s.parse::<Priority>()) {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    diag.err(
                        &lines.find_from(&kloc("priority"), &scalar_string(v).unwrap_or_default()),
                        l,
                        e.to_string(),
                    );
                    bad = true;
                    None
                }
                None => {
                    diag.err(&kloc("priority"), l, "`priority` must be a string");
                    bad = true;
                    None
                }
            },
        };
        let enabled = match m.get("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                diag.err(&kloc("enabled"), l, "`enabled` must be true or false");
                bad = true;
                None
            }
        };
        let tags = match m.get("tags") {
            None => None,
            Some(v) => match string_list(v) {
                Some(t) => Some(t),
                None => {
                    diag.err(&kloc("tags"), l, "`tags` must be a list of strings");
                    bad = true;
                    None
                }
            },
        };
        let events_loc = kloc("events");
        let events = match m.get("events") {
            None => None,
            Some(Value::String(s)) => {
                diag.err(
                    &events_loc,
                    l,
                    format!("`events` must be a list of event types (write `events: [{s}]`)"),
                );
                bad = true;
                None
            }
            Some(v) => match string_list(v) {
                Some(names) => {
                    let mut out = Vec::new();
                    for n in names {
                        match n.parse::<EventType>() {
                            Ok(t) => {
                                if !out.contains(&t) {
                                    out.push(t)
                                }
                            }
                            Err(e) => {
                                diag.err(&lines.find_from(&events_loc, &n), l, e.to_string());
                                bad = true;
                            }
                        }
                    }
                    if out.is_empty() && !bad {
                        diag.err(&events_loc, l, "`events` must name at least one event type");
                        bad = true;
                    }
                    Some(out)
                }
                None => {
                    diag.err(&events_loc, l, "`events` must be a list of event types");
                    bad = true;
                    None
                }
            },
        };
        let exceptions = match m.get("exceptions") {
            None => None,
            Some(v) => match self.parse_exceptions(v, &kloc("exceptions"), &label, lines, diag) {
                Some(e) => Some(e),
                None => {
                    bad = true;
                    None
                }
            },
        };
        let threshold = match m.get("threshold") {
            None => None,
            Some(v) => match parse_threshold(v, &kloc("threshold"), &label, diag) {
                Some(t) => Some(t),
                None => {
                    bad = true;
                    None
                }
            },
        };
        let existing = self.rule_idx.get(&name).copied();
        // A new definition with bad values is still compiled (so its other
        // errors are reported too); appends and overrides are not applied.
        if bad && (append || frag.is_none() || existing.is_some()) {
            return;
        }
        if append {
            let Some(i) = existing else {
                diag.err(item_loc, l, "`append: true` to a rule not defined earlier");
                return;
            };
            let r = &mut self.rules[i];
            r.frags.extend(frag);
            r.exceptions.extend(exceptions.unwrap_or_default());
            r.tags.extend(tags.unwrap_or_default());
            r.replace_scalars(priority, output, desc, enabled);
            if let Some(ev) = events {
                r.events = ev;
                r.events_loc = events_loc;
            }
            if threshold.is_some() {
                r.threshold = threshold;
            }
            return;
        }
        let Some(frag) = frag else {
            // An override of an existing rule.
            let extra: Vec<&str> = m
                .keys()
                .filter_map(Value::as_str)
                .filter(|k| !OVERRIDE_KEYS.contains(k))
                .collect();
            if !extra.is_empty() {
                diag.err(
                    item_loc,
                    l,
                    format!(
                        "a rule without `condition` overrides an existing rule and may only set enabled, priority, output, desc, tags (found {}); use `append: true` to extend it",
                        extra.join(", ")
                    ),
                );
                return;
            }
            let Some(i) = existing else {
                if let Some(f) = self.falco.as_mut().filter(|f| f.has_rule(&name)) {
                    // An override (`enabled: false`, ...) of a Falco rule.
                    f.add_item(m, item_loc, kloc, lines, diag);
                    return;
                }
                diag.err(
                    item_loc,
                    l,
                    "rule has no `condition` and no earlier definition to override (define it with a condition, or load the file defining it first)",
                );
                return;
            };
            let r = &mut self.rules[i];
            r.replace_scalars(priority, output, desc, enabled);
            if let Some(t) = tags {
                r.tags = t;
            }
            return;
        };
        if let Some(i) = existing {
            let first = &self.rules[i].loc;
            diag.err(
                item_loc,
                l,
                format!("duplicate rule (first defined at {first}); use `append: true` to extend it or an override without `condition` to change it"),
            );
            return;
        }
        let missing: Vec<&str> = ["events", "output", "priority"]
            .into_iter()
            .filter(|k| !m.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            // Reported, and the rule is still compiled so the errors of its
            // condition, exceptions and output are reported too.
            diag.err(
                item_loc,
                l,
                format!(
                    "rule needs {}",
                    missing
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        self.rule_idx.insert(name.clone(), self.rules.len());
        self.rules.push(RuleDef {
            name,
            loc: item_loc.clone(),
            desc: desc.unwrap_or_default(),
            frags: vec![frag],
            output,
            priority,
            enabled: enabled.unwrap_or(true),
            tags: tags.unwrap_or_default(),
            exceptions: exceptions.unwrap_or_default(),
            events: events.unwrap_or_default(),
            events_loc,
            threshold,
            falco: None,
        });
    }

    /// After every source: add the Falco files' rules (a name defined in both
    /// dialects is a duplicate).
    pub fn finish_falco(&mut self, diag: &mut Diag) {
        let file_idx = |loc: &Location| self.files.iter().position(|f| f.name == loc.file);
        let Some(falco) = &self.falco else { return };
        for r in falco.finish(&self.files, diag) {
            if let Some(&i) = self.rule_idx.get(&r.name) {
                // As in Falco, the later definition (in load order) wins.
                let other = self.rules[i].loc.clone();
                let label = format!("rule `{}`", r.name);
                if file_idx(&r.loc) > file_idx(&other) {
                    diag.warn(
                        &r.loc,
                        Some(&label),
                        format!("replaces the rule of the same name at {other}"),
                    );
                    self.rules[i] = r;
                } else {
                    diag.warn(
                        &r.loc,
                        Some(&label),
                        format!("replaced by the rule of the same name at {other}, loaded later"),
                    );
                }
                continue;
            }
            self.rule_idx.insert(r.name.clone(), self.rules.len());
            self.rules.push(r);
        }
    }
}

fn parse_threshold(v: &Value, loc: &Location, label: &str, diag: &mut Diag) -> Option<Threshold> {
    let l = Some(label);
    let Value::Mapping(m) = v else {
        diag.err(loc, l, "`threshold` must be a mapping {count, window, by}");
        return None;
    };
    let mut ok = true;
    for k in m.keys() {
        let ks = k.as_str().unwrap_or("");
        if !THRESHOLD_KEYS.contains(&ks) {
            diag.err(
                loc,
                l,
                format!(
                    "threshold: unknown key `{ks}`{}",
                    suggest_key(ks, THRESHOLD_KEYS)
                ),
            );
            ok = false;
        }
    }
    let count = match m.get("count").and_then(Value::as_u64) {
        Some(c) if (1..=MAX_THRESHOLD_COUNT).contains(&c) => c,
        _ => {
            diag.err(
                loc,
                l,
                format!("threshold: `count` must be an integer 1..={MAX_THRESHOLD_COUNT}"),
            );
            ok = false;
            1
        }
    };
    let window_ns = match m.get("window").and_then(parse_duration) {
        Some(w) => w,
        None => {
            diag.err(
                loc,
                l,
                "threshold: `window` must be a duration such as `10s`, `500ms`, `5m`",
            );
            ok = false;
            0
        }
    };
    let mut by = Vec::new();
    match m.get("by").map(string_list) {
        None => {}
        Some(Some(names)) => {
            for n in names {
                match fields::lookup(&n) {
                    Some(f) => by.push(f),
                    None => {
                        diag.err(
                            loc,
                            l,
                            format!(
                                "threshold: unknown field `{n}` in `by`{}",
                                fields::suggest(&n)
                                    .map(|s| format!(" (did you mean `{s}`?)"))
                                    .unwrap_or_default()
                            ),
                        );
                        ok = false;
                    }
                }
            }
        }
        Some(None) => {
            diag.err(loc, l, "threshold: `by` must be a list of fields");
            ok = false;
        }
    }
    ok.then_some(Threshold {
        count,
        window_ns,
        by,
    })
}
