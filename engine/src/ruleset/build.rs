//! The steps of [`RuleSet::build`](super::RuleSet): the sources read into
//! definitions (and the set's hash), lists built, list and macro names
//! checked, macros measured against the [`Limits`] before any is expanded,
//! then each rule compiled by [`RuleCompiler`] (names, bounded expansion,
//! carried fields, compilation and cost, the Rhai probe, output template,
//! threshold). Every step reports into one [`Diag`], so a failed load names
//! every error it found, sorted by [`sorted_errors`].
//!
//! Why one file past ~800 lines: the steps run in this order over one
//! `Defs` and one `Diag`, and about half of it is `RuleCompiler`, whose
//! per-rule steps share its expansion memo and patterns; read top to bottom it
//! is the load pipeline (lint, profile, memo and rendering are modules beside).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Limits, Rule, RuleCost};
use crate::alert::Priority;
use crate::condition::{
    check_names, expand_macros, make_scope, CompileProblem, Compiler, EventSlot, ListSet, Names,
    Node, Patterns, RhaiCtx, HELPERS, NAMESPACES,
};
use crate::error::{Diag, LoadError, LoadErrors, Location};
use crate::event::{Event, EventMask};
use crate::falco::{FalcoDefs, FalcoOutput};
use crate::rules::{self, Defs, Frag, ListItem, RuleDef, Source};
use crate::template::Template;

/// The names a condition may use: the set's lists and macros.
pub(super) struct NamesOf<'a>(pub &'a Defs);

impl Names for NamesOf<'_> {
    fn is_list(&self, name: &str) -> bool {
        self.0.lists.contains_key(name)
    }
    fn is_macro(&self, name: &str) -> bool {
        self.0.macros.contains_key(name)
    }
    fn all_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .lists
            .keys()
            .chain(self.0.macros.keys())
            .cloned()
            .collect();
        v.sort();
        v
    }
}

/// Flatten the top-level `&&` of a parsed condition into clause texts.
pub(super) fn clause_texts(text: &str) -> Vec<String> {
    fn walk(text: &str, p: &crate::condition::P, out: &mut Vec<String>) {
        match &p.e {
            crate::condition::PExpr::Chain("&&", parts) => {
                for x in parts {
                    walk(text, x, out);
                }
            }
            _ => out.push(text[p.start..p.end].to_string()),
        }
    }
    let mut out = Vec::new();
    if let Some(p) = crate::condition::parse(text) {
        walk(text, &p, &mut out);
    }
    out
}

/// The operands of a condition's top-level `&&` and `||`, split on the
/// tokens (no parse, so it works on conditions with unknown names).
fn top_level_operands(text: &str) -> Vec<String> {
    use crate::condition::Tok;
    let mut out = Vec::new();
    let (mut depth, mut from) = (0usize, 0usize);
    for t in crate::condition::lex(text) {
        match t.tok {
            Tok::LParen | Tok::LBracket => depth += 1,
            Tok::RParen | Tok::RBracket => depth = depth.saturating_sub(1),
            Tok::Op("&&" | "||") if depth == 0 => {
                out.push(text[from..t.start].trim().to_string());
                from = t.end;
            }
            _ => {}
        }
    }
    out.push(text[from..].trim().to_string());
    out.retain(|c| !c.is_empty());
    out
}

/// A macro's expanded size, measured without expanding it.
pub(super) struct MacroSize {
    /// Bytes of its expansion (saturating).
    len: usize,
    /// Longest chain of macros below it, itself included.
    depth: usize,
    /// The macros it names (distinct).
    refs: Vec<String>,
}

/// A macro's text: its fragments joined by `||` (appends).
fn macro_raw(m: &rules::MacroDef) -> String {
    if m.frags.len() == 1 {
        m.frags[0].text.clone()
    } else {
        m.frags
            .iter()
            .map(|f| format!("({})", f.text))
            .collect::<Vec<_>>()
            .join(" || ")
    }
}

/// Measure a macro (memoised in `memo`): linear in the macro definitions'
/// text however often macros repeat each other. Recursion stops at
/// `max_depth` (the chain is then marked too deep) and at cycles
/// (recorded in `cycles`).
fn macro_size(
    name: &str,
    defs: &Defs,
    memo: &mut HashMap<String, MacroSize>,
    stack: &mut Vec<String>,
    cycles: &mut Vec<(String, String)>,
    max_depth: usize,
) -> Option<(usize, usize)> {
    if let Some(s) = memo.get(name) {
        return Some((s.len, s.depth));
    }
    let m = defs.macros.get(name)?;
    if stack.iter().any(|s| s == name) {
        cycles.push((name.to_string(), stack.join(" -> ")));
        return Some((5, 0)); // expands to `false`
    }
    if stack.len() >= max_depth {
        return Some((0, max_depth + 1));
    }
    stack.push(name.to_string());
    let raw = macro_raw(m);
    let mut refs: Vec<String> = crate::condition::macro_refs(&raw);
    let mut depth = 1usize;
    let len = crate::condition::expanded_len(&raw, &mut |n| {
        let (len, d) = macro_size(n, defs, memo, stack, cycles, max_depth)?;
        depth = depth.max(d.saturating_add(1));
        Some(len)
    });
    stack.pop();
    refs.retain(|r| defs.macros.contains_key(r));
    refs.sort();
    refs.dedup();
    memo.insert(name.to_string(), MacroSize { len, depth, refs });
    Some((len, depth))
}

/// The expansion of a macro that passed the limits (memoised; `None` for
/// macros that did not, or that are being expanded: a cycle).
fn materialize(
    name: &str,
    defs: &Defs,
    ok: &HashMap<String, bool>,
    memo: &mut HashMap<String, Option<String>>,
    set_bytes: &mut usize,
) -> Option<String> {
    if let Some(e) = memo.get(name) {
        return e.clone();
    }
    let m = defs.macros.get(name)?;
    if ok.get(name) == Some(&false) {
        return None;
    }
    memo.insert(name.to_string(), None);
    let out = expand_macros(&macro_raw(m), &mut |n| {
        materialize(n, defs, ok, memo, set_bytes)
    });
    *set_bytes = set_bytes.saturating_add(out.len());
    memo.insert(name.to_string(), Some(out.clone()));
    Some(out)
}

/// The chain from `name` down through its biggest (or, `by_depth`, its
/// deepest) macro at each step.
fn macro_chain(name: &str, sizes: &HashMap<String, MacroSize>, by_depth: bool) -> String {
    let key = |r: &String| {
        sizes
            .get(r)
            .map_or(0, |s| if by_depth { s.depth } else { s.len })
    };
    let mut chain = vec![name.to_string()];
    let mut cur = name;
    while let Some(next) = sizes
        .get(cur)
        .and_then(|s| s.refs.iter().max_by_key(|r| key(r)))
    {
        if chain.contains(next) || chain.len() > sizes.len() {
            break;
        }
        chain.push(next.clone());
        cur = next;
    }
    rules::abbreviate_chain(&chain)
}

/// "300 KiB", "1.5 GiB", "more than 16 EiB" (saturated).
fn fmt_size(n: usize) -> String {
    if n == usize::MAX {
        return "more than 16 EiB".into();
    }
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Step 1: every source's items into definitions (append/override semantics,
/// Falco files included), and the set's hash over names and texts.
pub(super) fn read_defs(sources: &[Source], limits: Limits, diag: &mut Diag) -> (Defs, String) {
    let mut defs = Defs {
        limits,
        falco: Some(Box::<FalcoDefs>::default()),
        ..Defs::default()
    };
    let mut hasher = Sha256::new();
    for s in sources {
        hasher.update((s.name.len() as u64).to_le_bytes());
        hasher.update(s.name.as_bytes());
        hasher.update((s.text.len() as u64).to_le_bytes());
        hasher.update(s.text.as_bytes());
        defs.add_source(s, diag);
    }
    defs.finish_falco(diag);
    let hash = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (defs, hash)
}

/// Finds a sub-expression's position in the loaded files.
pub(super) struct Locator<'a> {
    defs: &'a Defs,
    files: HashMap<String, usize>,
}

impl<'a> Locator<'a> {
    pub fn new(defs: &'a Defs) -> Locator<'a> {
        let files = defs
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        Locator { defs, files }
    }

    /// `needle` at or after `base` in its file; `base` if not found.
    pub fn at(&self, base: &Location, needle: &str) -> Location {
        match self.files.get(&base.file) {
            Some(i) => self.defs.files[*i].find_from(base, needle),
            None => base.clone(),
        }
    }

    /// `offset` bytes into `needle` found at or after `base`; `base` if
    /// `needle` is not found.
    pub fn at_offset(&self, base: &Location, needle: &str, offset: usize) -> Location {
        let mut at = self.at(base, needle);
        if at != *base {
            at.col += offset;
        }
        at
    }
}

/// Step 2: the lists as the sets conditions test against.
pub(super) fn build_lists(defs: &Defs) -> HashMap<String, Arc<ListSet>> {
    defs.lists
        .iter()
        .map(|(n, l)| {
            let mut set = ListSet::default();
            for it in &l.items {
                match it {
                    ListItem::Str(s) => {
                        set.strs.insert(s.clone());
                    }
                    ListItem::Int(i) => {
                        set.ints.insert(*i);
                        set.strs.insert(i.to_string());
                    }
                }
            }
            (n.clone(), Arc::new(set))
        })
        .collect()
}

/// Whether `n` can be used as a name in a condition.
fn is_ident(n: &str) -> bool {
    n.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            n,
            "true"
                | "false"
                | "in"
                | "if"
                | "else"
                | "switch"
                | "let"
                | "const"
                | "fn"
                | "return"
                | "this"
        )
}

/// Step 3: list and macro names are identifiers, and a list's name is not
/// taken by a namespace, helper or macro.
pub(super) fn check_def_names(defs: &Defs, diag: &mut Diag) {
    for (kind, name, loc) in defs
        .lists
        .iter()
        .map(|(n, l)| ("list", n, &l.loc))
        .chain(defs.macros.iter().map(|(n, m)| ("macro", n, &m.loc)))
    {
        if !is_ident(name) {
            diag.err(
                loc,
                Some(&format!("{kind} `{name}`")),
                "name must be an identifier (letters, digits, `_`; not a keyword) to be usable in conditions",
            );
        }
    }
    for (name, l) in &defs.lists {
        if NAMESPACES.contains(&name.as_str())
            || HELPERS.contains(&name.as_str())
            || defs.macros.contains_key(name)
        {
            diag.err(
                &l.loc,
                Some(&format!("list `{name}`")),
                "this name is already a field namespace, helper or macro",
            );
        }
    }
}

/// Step 4: each macro's name and the names its condition uses. Returns
/// whether each macro is usable so far.
pub(super) fn check_macros(
    defs: &Defs,
    locator: &Locator<'_>,
    diag: &mut Diag,
) -> HashMap<String, bool> {
    let names = NamesOf(defs);
    let mut macro_ok: HashMap<String, bool> = HashMap::new();
    let mut mnames: Vec<&String> = defs.macros.keys().collect();
    mnames.sort();
    for name in mnames {
        let m = &defs.macros[name];
        let label = format!("macro `{name}`");
        let mut ok = true;
        if NAMESPACES.contains(&name.as_str()) || HELPERS.contains(&name.as_str()) {
            diag.err(
                &m.loc,
                Some(&label),
                "this name is already a field namespace or helper",
            );
            ok = false;
        }
        for f in &m.frags {
            for p in check_names(&f.text, &names, &[], &mut Vec::new()) {
                diag.err(&locator.at(&f.loc, &p.text), Some(&label), p.msg);
                ok = false;
            }
        }
        macro_ok.insert(name.clone(), ok);
    }
    macro_ok
}

/// Step 5: every macro's expanded length and depth, measured (memoised, so
/// shared sub-macros are measured once and nothing is built); cycles and
/// macros beyond the limits are reported and marked unusable in `macro_ok`.
pub(super) fn measure_macros(
    defs: &Defs,
    limits: Limits,
    macro_ok: &mut HashMap<String, bool>,
    diag: &mut Diag,
) -> HashMap<String, MacroSize> {
    let mut sizes: HashMap<String, MacroSize> = HashMap::new();
    let mut cycles = Vec::new();
    let mut mnames: Vec<&String> = defs.macros.keys().collect();
    mnames.sort();
    for n in mnames {
        macro_size(
            n,
            defs,
            &mut sizes,
            &mut Vec::new(),
            &mut cycles,
            limits.macro_depth,
        );
    }
    for (name, path) in &cycles {
        if let Some(m) = defs.macros.get(name) {
            diag.err(
                &m.loc,
                Some(&format!("macro `{name}`")),
                format!("macro refers to itself ({path} -> {name})"),
            );
            macro_ok.insert(name.clone(), false);
        }
    }
    // Too deep or too big: reported once, at the outermost such macro
    // (the others are inside it), with the chain that makes it so.
    let (max_depth, max_bytes) = (limits.macro_depth, limits.condition_bytes);
    for (deep, limit) in [(true, max_depth), (false, max_bytes)] {
        let measure = |s: &MacroSize| if deep { s.depth } else { s.len };
        let over: BTreeSet<&String> = sizes
            .iter()
            .filter(|(_, s)| measure(s) > limit)
            .map(|(n, _)| n)
            .collect();
        let inside: HashSet<&str> = over
            .iter()
            .flat_map(|n| sizes[*n].refs.iter().map(String::as_str))
            .collect();
        for name in &over {
            let first = macro_ok.insert((*name).clone(), false) != Some(false);
            if inside.contains(name.as_str()) || !first {
                continue;
            }
            let chain = macro_chain(name, &sizes, deep);
            let msg = if deep {
                format!("macro {chain} nests macros more than {max_depth} deep")
            } else {
                format!(
                    "macro {chain} expands beyond {max_bytes} bytes of condition text ({}); a macro used several times in another is copied each time: use a list, or restructure",
                    fmt_size(sizes[*name].len)
                )
            };
            let m = &defs.macros[*name];
            let at = m.frags.first().map_or(&m.loc, |f| &f.loc);
            diag.err(at, Some(&format!("macro `{name}`")), msg);
        }
    }
    sizes
}

/// Step 5b: each usable macro's condition compiled on its own (the macros
/// it uses as `true`), so its syntax, type and pattern errors are reported at
/// the macro rather than in every rule using it; such a macro is marked
/// unusable.
pub(super) fn check_macro_bodies(
    defs: &Defs,
    locator: &Locator<'_>,
    engine: &rhai::Engine,
    lists: &HashMap<String, Arc<ListSet>>,
    macro_ok: &mut HashMap<String, bool>,
    diag: &mut Diag,
) {
    let scope = make_scope(lists, &Arc::new(EventSlot::default()));
    let mut patterns = Patterns::default();
    let mut mnames: Vec<&String> = defs.macros.keys().collect();
    mnames.sort();
    for name in mnames {
        if macro_ok.get(name) != Some(&true) {
            continue;
        }
        let label = format!("macro `{name}`");
        for f in &defs.macros[name].frags {
            let text = expand_macros(&f.text, &mut |n| {
                defs.macros.contains_key(n).then(|| "true".to_string())
            });
            let mut comp = Compiler {
                engine,
                scope: &scope,
                lists,
                patterns: &mut patterns,
                problems: Vec::new(),
            };
            comp.compile(&text);
            for p in comp.problems.into_iter().filter(|p| !p.warning) {
                let at = p
                    .text
                    .as_deref()
                    .map(|t| locator.at_offset(&f.loc, t, p.offset))
                    .unwrap_or_else(|| f.loc.clone());
                diag.err(&at, Some(&label), p.msg);
                macro_ok.insert(name.clone(), false);
            }
        }
    }
}

/// What compiling one rule gave.
pub(super) enum Step {
    Rule(Box<Rule>),
    /// The rule has errors (reported); the next rule is compiled.
    Skip,
    /// A set-wide budget is exhausted (reported); no further rule is compiled.
    Stop,
}

/// A rule's condition and exceptions after macro expansion.
struct Expanded {
    cond_text: String,
    /// `(name, text, where its condition is)` per exception.
    exceptions: Vec<(String, String, Location)>,
}

/// Step 6: compiles the rules one by one, carrying the set-wide budgets.
pub(super) struct RuleCompiler<'a> {
    defs: &'a Defs,
    locator: &'a Locator<'a>,
    limits: Limits,
    macro_ok: &'a HashMap<String, bool>,
    sizes: &'a HashMap<String, MacroSize>,
    engine: &'a rhai::Engine,
    lists: &'a HashMap<String, Arc<ListSet>>,
    scope: rhai::Scope<'static>,
    patterns: Patterns,
    probe_slot: Arc<EventSlot>,
    probe_scope: rhai::Scope<'static>,
    /// Macro expansions built so far (memoised).
    expanded: HashMap<String, Option<String>>,
    /// Condition text materialised so far (macro expansions and rules).
    set_bytes: usize,
    /// Worst-case nodes per event of the enabled rules so far.
    set_cost: usize,
}

impl<'a> RuleCompiler<'a> {
    pub fn new(
        defs: &'a Defs,
        locator: &'a Locator<'a>,
        limits: Limits,
        macro_ok: &'a HashMap<String, bool>,
        sizes: &'a HashMap<String, MacroSize>,
        engine: &'a rhai::Engine,
        lists: &'a HashMap<String, Arc<ListSet>>,
    ) -> RuleCompiler<'a> {
        let probe_slot = Arc::new(EventSlot::default());
        RuleCompiler {
            defs,
            locator,
            limits,
            macro_ok,
            sizes,
            engine,
            lists,
            scope: make_scope(lists, &Arc::new(EventSlot::default())),
            patterns: Patterns::default(),
            probe_scope: make_scope(lists, &probe_slot),
            probe_slot,
            expanded: HashMap::new(),
            set_bytes: 0,
            set_cost: 0,
        }
    }

    /// The literal patterns the compiled rules use (for the Rhai helpers).
    pub fn into_patterns(self) -> Patterns {
        self.patterns
    }

    /// Compile one rule, reporting its errors and warnings into `diag`.
    pub fn compile(&mut self, r: &RuleDef, diag: &mut Diag) -> Step {
        let label = format!("rule `{}`", r.name);
        let l = Some(label.as_str());
        let events = EventMask::of(&r.events);
        let (names_ok, bad_macro) = self.check_names(r, l, diag);
        if !names_ok {
            // Still check the clauses without unknown names and the output
            // template, so every error is reported.
            self.check_known_clauses(r, l, diag);
            if let Some(o) = &r.output {
                if let Err(es) = Template::parse(&o.text, events, r.threshold.is_some()) {
                    for e in es {
                        diag.err(&o.loc, l, e);
                    }
                }
            }
            return Step::Skip;
        }
        let exp = match self.expand(r, l, diag) {
            Ok(e) => e,
            Err(step) => return step,
        };
        // A rule using a macro with errors (reported at the macro) is
        // compiled with that macro as `false`, for its own errors, and not kept.
        let mut ok = self.check_carried_fields(r, events, &exp, l, diag) && !bad_macro;
        let base = r
            .frags
            .last()
            .map(|f| f.loc.clone())
            .unwrap_or_else(|| r.loc.clone());
        let (cond, exceptions, cost) = self.compile_conditions(&exp, &base, l, &mut ok, diag);
        if ok && (!cond.is_native() || exceptions.iter().any(|(_, n)| !n.is_native())) {
            ok &= self.probe_rhai(r, &cond, &exceptions, &base, l, diag);
        }
        let out_frag = r.output.clone().unwrap_or(Frag {
            text: String::new(),
            loc: r.loc.clone(),
        });
        let output = match Template::parse(&out_frag.text, events, r.threshold.is_some()) {
            Ok(t) => t,
            Err(es) => {
                for e in es {
                    diag.err(&out_frag.loc, l, e);
                }
                return Step::Skip;
            }
        };
        ok &= check_threshold(r, events, l, diag);
        if !ok {
            return Step::Skip;
        }
        if r.enabled {
            self.set_cost = self.set_cost.saturating_add(cost.nodes);
            let max_set_nodes = self.limits.set_nodes;
            if self.set_cost > max_set_nodes {
                diag.err(
                    &base,
                    l,
                    format!("the enabled rules' conditions cost more than {max_set_nodes} nodes per event in all at this rule; rules after it are not compiled"),
                );
                return Step::Stop;
            }
        }
        let Expanded {
            cond_text,
            exceptions: exc_texts,
        } = exp;
        let clauses = clause_texts(&cond_text);
        if r.falco.is_none() {
            self.warn_never_fires(r, &cond, &cond_text, &clauses, &exc_texts, &base, l, diag);
        }
        let fingerprint = format!(
            "{cond_text}\u{1}{:?}\u{1}{}\u{1}{:?}\u{1}{}\u{1}{:?}\u{1}{:?}\u{1}{:?}\u{1}{}",
            exc_texts.iter().map(|(n, t, _)| (n, t)).collect::<Vec<_>>(),
            out_frag.text,
            r.priority,
            r.enabled,
            r.events,
            r.tags,
            r.threshold,
            r.desc
        );
        let fingerprint = format!("{fingerprint}\u{1}{:?}", r.falco);
        Step::Rule(Box::new(Rule {
            name: Arc::from(r.name.as_str()),
            desc: r.desc.clone(),
            priority: r.priority.unwrap_or(Priority::Warning),
            enabled: r.enabled,
            events,
            tags: r.tags.clone().into(),
            cond_text,
            clauses,
            cond,
            exceptions,
            output,
            threshold: r.threshold.clone(),
            fingerprint,
            cost,
            falco: r.falco.clone(),
            falco_output: r
                .falco
                .as_ref()
                .and_then(|f| f.output.as_deref())
                .map(|o| Arc::new(FalcoOutput::parse(o))),
            key: None,
        }))
    }

    /// The names the condition and exceptions use, before expansion:
    /// whether all are known, and whether one is a macro with errors.
    fn check_names(&self, r: &RuleDef, l: Option<&str>, diag: &mut Diag) -> (bool, bool) {
        let names = NamesOf(self.defs);
        let mut ok = true;
        let mut read = Vec::new();
        for f in r.frags.iter().chain(r.exceptions.iter().map(|e| &e.cond)) {
            for p in check_names(&f.text, &names, &[], &mut read) {
                diag.err(&self.locator.at(&f.loc, &p.text), l, p.msg);
                ok = false;
            }
        }
        let bad_macro = r
            .frags
            .iter()
            .chain(r.exceptions.iter().map(|e| &e.cond))
            .any(|f| self.uses_bad_macro(&f.text));
        (ok, bad_macro)
    }

    fn uses_bad_macro(&self, text: &str) -> bool {
        crate::condition::lex(text).iter().any(|t| {
            matches!(&t.tok, crate::condition::Tok::Ident(i) if self.macro_ok.get(i) == Some(&false))
        })
    }

    /// For a rule with unknown names: compile on their own the operands of
    /// the top-level `&&`/`||` (of the condition and each exception) that
    /// name nothing unknown, and report their errors (type errors, bad
    /// patterns, ...).
    fn check_known_clauses(&mut self, r: &RuleDef, l: Option<&str>, diag: &mut Diag) {
        let names = NamesOf(self.defs);
        let max = self.limits.condition_bytes;
        for f in r.frags.iter().chain(r.exceptions.iter().map(|e| &e.cond)) {
            for clause in top_level_operands(&f.text) {
                let unknown = !check_names(&clause, &names, &[], &mut Vec::new()).is_empty();
                let sizes = self.sizes;
                let len =
                    crate::condition::expanded_len(&clause, &mut |n| sizes.get(n).map(|s| s.len));
                if unknown || len > max {
                    continue;
                }
                let text = self.expand_text(&clause);
                let mut comp = Compiler {
                    engine: self.engine,
                    scope: &self.scope,
                    lists: self.lists,
                    patterns: &mut self.patterns,
                    problems: Vec::new(),
                };
                comp.compile(&text);
                for p in comp.problems.into_iter().filter(|p| !p.warning) {
                    let at = p
                        .text
                        .as_deref()
                        .map(|t| self.locator.at_offset(&f.loc, t, p.offset))
                        .unwrap_or_else(|| f.loc.clone());
                    diag.err(&at, l, p.msg);
                }
            }
        }
    }

    /// `text` with its macros expanded (a macro with errors as `false`).
    fn expand_text(&mut self, text: &str) -> String {
        let (defs, macro_ok) = (self.defs, self.macro_ok);
        let (expanded, set_bytes) = (&mut self.expanded, &mut self.set_bytes);
        expand_macros(text, &mut |n| {
            materialize(n, defs, macro_ok, expanded, set_bytes)
                .or_else(|| (macro_ok.get(n) == Some(&false)).then(|| "false".to_string()))
        })
    }

    /// The condition (fragments joined by `&&`) and exceptions with their
    /// macros expanded, after bounding the expansion's size.
    fn expand(&mut self, r: &RuleDef, l: Option<&str>, diag: &mut Diag) -> Result<Expanded, Step> {
        let Limits {
            condition_bytes: max_condition_bytes,
            set_bytes: max_set_bytes,
            ..
        } = self.limits;
        let raw = if r.frags.len() == 1 {
            r.frags[0].text.clone()
        } else {
            r.frags
                .iter()
                .map(|f| format!("({})", f.text))
                .collect::<Vec<_>>()
                .join(" && ")
        };
        // Bound the expansion before building it.
        let cond_loc = r
            .frags
            .last()
            .map(|f| f.loc.clone())
            .unwrap_or_else(|| r.loc.clone());
        let (sizes, macro_ok) = (self.sizes, self.macro_ok);
        // A macro with errors is compiled as `false`.
        let mut size_of = |n: &str| match macro_ok.get(n) {
            Some(false) => Some("false".len()),
            _ => sizes.get(n).map(|s| s.len),
        };
        let mut rule_bytes = 0usize;
        let mut over = None;
        for (text, loc) in std::iter::once((raw.as_str(), &cond_loc)).chain(
            r.exceptions
                .iter()
                .map(|e| (e.cond.text.as_str(), &e.cond.loc)),
        ) {
            let n = crate::condition::expanded_len(text, &mut size_of);
            rule_bytes = rule_bytes.saturating_add(n);
            if n > max_condition_bytes && over.is_none() {
                over = Some((n, text, loc));
            }
        }
        if let Some((n, text, loc)) = over {
            let via = crate::condition::macro_refs(text)
                .into_iter()
                .filter(|m| sizes.contains_key(m))
                .max_by_key(|m| sizes[m].len)
                .map(|m| format!(" through macro {}", macro_chain(&m, sizes, false)))
                .unwrap_or_default();
            diag.err(
                loc,
                l,
                format!(
                    "condition expands beyond {max_condition_bytes} bytes ({}){via}; a macro used several times is copied each time: use a list, or restructure",
                    fmt_size(n)
                ),
            );
            return Err(Step::Skip);
        }
        if self.set_bytes.saturating_add(rule_bytes) > max_set_bytes {
            diag.err(
                &cond_loc,
                l,
                format!("the rule set's conditions expand beyond {max_set_bytes} bytes in all at this rule; rules after it are not compiled"),
            );
            return Err(Step::Stop);
        }
        let cond_text = self.expand_text(&raw);
        let exceptions = r
            .exceptions
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    self.expand_text(&e.cond.text),
                    e.cond.loc.clone(),
                )
            })
            .collect();
        self.set_bytes = self.set_bytes.saturating_add(rule_bytes);
        Ok(Expanded {
            cond_text,
            exceptions,
        })
    }

    /// Fields read after expansion must be carried by the rule's events.
    fn check_carried_fields(
        &self,
        r: &RuleDef,
        events: EventMask,
        exp: &Expanded,
        l: Option<&str>,
        diag: &mut Diag,
    ) -> bool {
        let names = NamesOf(self.defs);
        let mut ok = true;
        let mut all_read = Vec::new();
        check_names(&exp.cond_text, &names, &[], &mut all_read);
        for (_, t, _) in &exp.exceptions {
            check_names(t, &names, &[], &mut all_read);
        }
        all_read.sort();
        all_read.dedup();
        for f in all_read {
            if !events.is_empty() && f.def().events.intersect(events).is_empty() {
                let carried: Vec<&str> = f.def().events.iter().map(|t| t.as_str()).collect();
                let at = r
                    .frags
                    .first()
                    .map(|fr| self.locator.at(&fr.loc, f.name()))
                    .unwrap_or_else(|| r.loc.clone());
                diag.err(
                    &at,
                    l,
                    format!(
                        "field `{}` is not carried by any of this rule's events ({}); it is carried by {}",
                        f.name(),
                        r.events.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
                        carried.join(", ")
                    ),
                );
                ok = false;
            }
        }
        ok
    }

    /// Compile the condition (native where it can, the whole of it in Rhai
    /// too) and the exceptions, measure the cost, report the compile
    /// problems; an error clears `ok`.
    #[allow(clippy::type_complexity)]
    fn compile_conditions(
        &mut self,
        exp: &Expanded,
        base: &Location,
        l: Option<&str>,
        ok: &mut bool,
        diag: &mut Diag,
    ) -> (Node, Vec<(String, Node)>, RuleCost) {
        let max_rule_nodes = self.limits.rule_nodes;
        let mut comp = Compiler {
            engine: self.engine,
            scope: &self.scope,
            lists: self.lists,
            patterns: &mut self.patterns,
            problems: Vec::new(),
        };
        let cond = comp.compile(&exp.cond_text);
        let mut problems: Vec<(Location, CompileProblem)> =
            comp.problems.drain(..).map(|p| (base.clone(), p)).collect();
        let mut exceptions = Vec::new();
        for (name, text, loc) in &exp.exceptions {
            let node = comp.compile(text);
            problems.extend(comp.problems.drain(..).map(|p| (loc.clone(), p)));
            exceptions.push((name.clone(), node));
        }
        // Worst-case work per event: every node of the condition and the
        // exceptions evaluated once.
        let cost = exceptions.iter().zip(&exp.exceptions).fold(
            RuleCost::of(&cond, exp.cond_text.len()),
            |c, ((_, n), (_, t, _))| c.plus(RuleCost::of(n, t.len())),
        );
        if cost.nodes > max_rule_nodes {
            problems.push((
                base.clone(),
                CompileProblem {
                    text: None,
                    offset: 0,
                    msg: format!(
                        "condition costs {} nodes per event in the worst case (limit {max_rule_nodes})",
                        cost.nodes
                    ),
                    warning: false,
                },
            ));
        }
        let mut seen_warn = HashSet::new();
        for (base, p) in problems {
            let at = p
                .text
                .as_deref()
                .map(|t| self.locator.at_offset(&base, t, p.offset))
                .unwrap_or(base);
            if p.warning {
                if seen_warn.insert(p.msg.clone()) {
                    diag.warn(&at, l, p.msg);
                }
            } else {
                diag.err(&at, l, p.msg);
                *ok = false;
            }
        }
        (cond, exceptions, cost)
    }

    /// Warnings for a rule that can never fire ([`super::lint`]).
    #[allow(clippy::too_many_arguments)]
    fn warn_never_fires(
        &mut self,
        r: &RuleDef,
        cond: &Node,
        cond_text: &str,
        clauses: &[String],
        exc_texts: &[(String, String, Location)],
        base: &Location,
        l: Option<&str>,
        diag: &mut Diag,
    ) {
        let view = super::lint::RuleView {
            events: &r.events,
            cond,
            cond_text,
            clauses,
            exceptions: exc_texts
                .iter()
                .map(|(n, t, _)| (n.as_str(), t.as_str()))
                .collect(),
        };
        let lists = &self.defs.lists;
        let empty_list = |n: &str| lists.get(n).is_some_and(|l| l.items.is_empty());
        // (no memo node yet: sharing is done once the set is built)
        let mut memo = crate::condition::Memo::default();
        let mut ctx = RhaiCtx {
            engine: self.engine,
            scope: &mut self.probe_scope,
            memo: &mut memo,
        };
        let found = super::lint::never_fires(&view, &empty_list, &self.probe_slot, &mut ctx);
        for f in found {
            let at_base = match f.exception {
                Some(i) => &exc_texts[i].2,
                None => r.frags.first().map_or(base, |fr| &fr.loc),
            };
            // An exception is pointed at by its condition as written.
            let needle = match f.exception {
                Some(i) => r.exceptions.get(i).map(|e| e.cond.text.clone()),
                None => f.needle,
            };
            let at = match &needle {
                Some(n) => self.locator.at(at_base, n),
                None => at_base.clone(),
            };
            diag.warn(&at, l, f.msg);
        }
    }

    /// Run the Rhai leaves once on an empty event of each of the rule's
    /// types: a leaf that does not give a boolean is a (type) error.
    fn probe_rhai(
        &mut self,
        r: &RuleDef,
        cond: &Node,
        exceptions: &[(String, Node)],
        base: &Location,
        l: Option<&str>,
        diag: &mut Diag,
    ) -> bool {
        let mut found = Vec::new();
        for t in r.events.iter() {
            let probe_ev = Event::new(*t);
            self.probe_slot.set(Some(&probe_ev));
            let mut memo = crate::condition::Memo::default();
            let mut ctx = RhaiCtx {
                engine: self.engine,
                scope: &mut self.probe_scope,
                memo: &mut memo,
            };
            crate::condition::probe_leaves(cond, &mut ctx, &mut found);
            for (_, n) in exceptions {
                crate::condition::probe_leaves(n, &mut ctx, &mut found);
            }
            self.probe_slot.set(None);
        }
        found.sort();
        found.dedup();
        let ok = found.is_empty();
        for (text, msg) in found {
            diag.err(&self.locator.at(base, &text), l, msg);
        }
        ok
    }
}

/// A threshold's `by` fields must be carried by the rule's events.
fn check_threshold(r: &RuleDef, events: EventMask, l: Option<&str>, diag: &mut Diag) -> bool {
    let mut ok = true;
    if let Some(t) = &r.threshold {
        for f in &t.by {
            if f.def().events.intersect(events).is_empty() {
                diag.err(
                    &r.loc,
                    l,
                    format!(
                        "threshold: `by` field `{}` is not carried by this rule's events",
                        f.name()
                    ),
                );
                ok = false;
            }
        }
    }
    ok
}

/// The errors in source order: file as loaded, then line and column.
pub(super) fn sorted_errors(sources: &[Source], mut errors: Vec<LoadError>) -> LoadErrors {
    let order: HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    errors.sort_by_key(|e| {
        (
            order
                .get(e.loc.file.as_str())
                .copied()
                .unwrap_or(usize::MAX),
            e.loc.line,
            e.loc.col,
        )
    });
    LoadErrors(errors)
}

/// The daemon's start-up / reload log says which Falco rules cannot run.
pub(super) fn log_falco_status(rules: &[Rule]) {
    let falco: Vec<&Rule> = rules.iter().filter(|r| r.falco.is_some()).collect();
    if falco.is_empty() {
        return;
    }
    let inactive: Vec<(&str, &str)> = falco
        .iter()
        .filter_map(|r| Some((&*r.name, r.falco.as_ref()?.inactive.as_deref()?)))
        .collect();
    for (name, why) in &inactive {
        tracing::debug!(rule = %name, reason = %why, "Falco rule inactive");
    }
    tracing::info!(
        active = falco.len() - inactive.len(),
        inactive = inactive.len(),
        "Falco rules loaded (`vigil validate` lists why each inactive rule cannot run)"
    );
}
