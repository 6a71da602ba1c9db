//! The compiled, indexed rule set ([`RuleSet`], immutable, `Send + Sync`) and
//! its evaluation ([`Evaluator`], which owns the per-rule threshold state so
//! the rule set itself never changes after it is built).
//!
//! Compilation is bounded ([`Limits`]): macro expansions are measured
//! (memoised, nothing built) before any is expanded, so a file whose macros
//! double at each level is refused at load in time linear in its text, with
//! the macro chain named; each rule's worst-case cost per event
//! ([`RuleCost`]) and the set's total are capped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use crate::alert::{Alert, Priority};
use crate::condition::{
    check_names, expand_macros, make_scope, Compiler, EventSlot, ListSet, Names, Node, Patterns,
    RhaiCtx, HELPERS, NAMESPACES,
};
use crate::error::{Diag, LoadErrors, LoadWarning, Location};
use crate::event::{Event, EventMask, EventType};
use crate::filter::{constraint, KernelFilter, RuleContribution, TypeFilter};
use crate::index::{Atom, KindIndex, RegexSources};
use crate::rules::{
    self, Defs, FalcoStatus, Frag, ListItem, Source, Threshold, MAX_THRESHOLD_KEYS,
};
use crate::template::{Template, COUNT_FIELD};

/// Public description of one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub name: String,
    pub priority: Priority,
    pub enabled: bool,
    pub events: Vec<EventType>,
    pub tags: Vec<String>,
    pub desc: String,
    /// Rules from Falco files: active or inactive (with the reason).
    pub falco: Option<FalcoStatus>,
}

/// Rule names that differ between two rule sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSetDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Present in both with any difference (condition after macro/list
    /// expansion, exceptions, output, priority, enabled, events, tags, threshold).
    pub changed: Vec<String>,
}

impl RuleSetDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Counters of an [`Evaluator`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvalStats {
    /// Events handed to `evaluate`.
    pub events: u64,
    /// Rule conditions evaluated (after indexing).
    pub rules_evaluated: u64,
    /// Alerts raised per rule name.
    pub matches: BTreeMap<String, u64>,
    /// Evaluation errors per rule name (a failing Rhai condition, an exceeded
    /// operation limit, ...): the rule does not fire for that event.
    pub errors: BTreeMap<String, u64>,
}

/// One compiled rule.
pub(crate) struct Rule {
    pub name: Arc<str>,
    pub desc: String,
    pub priority: Priority,
    pub enabled: bool,
    pub events: EventMask,
    pub tags: Arc<[String]>,
    /// The condition after macro expansion (and appends), as compiled.
    pub cond_text: String,
    /// Texts of the condition's top-level `&&` clauses (matching `cond.conjuncts()`).
    pub clauses: Vec<String>,
    pub cond: Node,
    pub exceptions: Vec<(String, Node)>,
    pub output: Template,
    pub threshold: Option<Threshold>,
    /// The whole condition compiled by Rhai alone (tests compare both paths).
    pub rhai_full: Option<Arc<rhai::AST>>,
    fingerprint: String,
    /// Worst-case evaluation work per event.
    pub cost: RuleCost,
    pub falco: Option<FalcoStatus>,
    /// The literal terms the condition requires (see [`crate::index`]);
    /// `None`: evaluated for every event of its kinds.
    pub key: Option<Vec<Atom>>,
}

/// The compiled rule set. Build with [`RuleSet::load`] or [`RuleSet::from_sources`].
pub struct RuleSet {
    hash: String,
    sources: Vec<PathBuf>,
    n_files: usize,
    warnings: Vec<LoadWarning>,
    rules: Vec<Rule>,
    by_name: HashMap<String, u32>,
    index: [KindIndex; EventType::COUNT],
    /// False: every enabled rule is evaluated for every event of its kinds
    /// (tests compare both).
    indexed: bool,
    engine: rhai::Engine,
    lists: HashMap<String, Arc<ListSet>>,
    n_macros: usize,
    /// Lists of Falco files (inlined into their rules, so not in `lists`).
    n_falco_lists: usize,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("hash", &self.hash)
            .field("rules", &self.rules.len())
            .finish()
    }
}

struct NamesOf<'a>(&'a Defs);

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
fn clause_texts(text: &str) -> Vec<String> {
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

/// The per-event-kind candidate index over the enabled rules.
fn build_index(rules: &[Rule], on: bool) -> [KindIndex; EventType::COUNT] {
    crate::index::build(
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, r.enabled, r.events, r.key.as_deref())),
        on,
    )
}

/// Most bytes one condition (or exception) may have once its macros are
/// expanded: the bound on a rule's compile work and memory.
pub const MAX_CONDITION_BYTES: usize = 128 * 1024;
/// Most bytes of expanded condition text a whole rule set may build.
pub const MAX_SET_BYTES: usize = 16 * 1024 * 1024;
/// Deepest chain of macros using macros.
pub const MAX_MACRO_DEPTH: usize = 64;
/// Most nodes one rule (condition and exceptions) may evaluate per event.
pub const MAX_RULE_NODES: usize = 10_000;
/// Most nodes the enabled rules may evaluate per event in all.
pub const MAX_SET_NODES: usize = 200_000;

/// Compile budgets of one rule set; [`Limits::default`] is what `vigil run`,
/// `validate`, `test` and `replay` use (the `MAX_*` constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one condition (or exception) after macro expansion.
    pub condition_bytes: usize,
    /// Bytes of expanded condition text the whole set may build.
    pub set_bytes: usize,
    /// Deepest chain of macros using macros.
    pub macro_depth: usize,
    /// Nodes one rule may evaluate per event.
    pub rule_nodes: usize,
    /// Nodes the enabled rules may evaluate per event in all.
    pub set_nodes: usize,
    /// Distinct items of one list.
    pub list_items: usize,
    /// List items built in all.
    pub list_work: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            condition_bytes: MAX_CONDITION_BYTES,
            set_bytes: MAX_SET_BYTES,
            macro_depth: MAX_MACRO_DEPTH,
            rule_nodes: MAX_RULE_NODES,
            set_nodes: MAX_SET_NODES,
            list_items: rules::MAX_LIST_ITEMS,
            list_work: rules::MAX_LIST_WORK,
        }
    }
}

/// Worst-case evaluation work of one rule per event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCost {
    /// Nodes of the compiled condition and exceptions, each evaluated at
    /// most once per event (what `vigil validate --costs` reports).
    pub nodes: usize,
    /// Of those, sub-expressions run by Rhai (each stopped after
    /// [`crate::condition::MAX_OPERATIONS`] operations).
    pub rhai_leaves: usize,
    /// Bytes of condition text after macro expansion.
    pub bytes: usize,
}

impl RuleCost {
    fn of(n: &Node, bytes: usize) -> RuleCost {
        let (nodes, rhai_leaves) = n.cost();
        RuleCost {
            nodes,
            rhai_leaves,
            bytes,
        }
    }
    fn plus(self, o: RuleCost) -> RuleCost {
        RuleCost {
            nodes: self.nodes.saturating_add(o.nodes),
            rhai_leaves: self.rhai_leaves.saturating_add(o.rhai_leaves),
            bytes: self.bytes.saturating_add(o.bytes),
        }
    }
}

/// A macro's expanded size, measured without expanding it.
struct MacroSize {
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
/// [`MAX_MACRO_DEPTH`] (the chain is then marked too deep) and at cycles
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

impl RuleSet {
    /// Load rule files and directories (a directory: its `*.yaml`/`*.yml`, name
    /// order, non-recursive, skipping dot files), in the order given. See
    /// [`crate::rules`] for the item semantics.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet, LoadErrors> {
        RuleSet::load_with_limits(paths, Limits::default())
    }

    /// [`RuleSet::load`] with other compile budgets.
    pub fn load_with_limits<P: AsRef<Path>>(
        paths: &[P],
        limits: Limits,
    ) -> Result<RuleSet, LoadErrors> {
        let sources = rules::read_paths(paths)?;
        RuleSet::build(sources, limits)
    }

    /// Load from in-memory `(name, yaml)` sources, in order.
    pub fn from_sources(sources: &[(String, String)]) -> Result<RuleSet, LoadErrors> {
        RuleSet::from_sources_with_limits(sources, Limits::default())
    }

    /// [`RuleSet::from_sources`] with other compile budgets.
    pub fn from_sources_with_limits(
        sources: &[(String, String)],
        limits: Limits,
    ) -> Result<RuleSet, LoadErrors> {
        RuleSet::build(
            sources
                .iter()
                .map(|(n, t)| Source {
                    name: n.clone(),
                    path: None,
                    text: t.clone(),
                })
                .collect(),
            limits,
        )
    }

    fn build(sources: Vec<Source>, limits: Limits) -> Result<RuleSet, LoadErrors> {
        let mut diag = Diag::default();
        let Limits {
            condition_bytes: max_condition_bytes,
            set_bytes: max_set_bytes,
            macro_depth: max_macro_depth,
            rule_nodes: max_rule_nodes,
            set_nodes: max_set_nodes,
            ..
        } = limits;
        let mut defs = Defs {
            limits,
            ..Defs::default()
        };
        let mut hasher = Sha256::new();
        for s in &sources {
            hasher.update((s.name.len() as u64).to_le_bytes());
            hasher.update(s.name.as_bytes());
            hasher.update((s.text.len() as u64).to_le_bytes());
            hasher.update(s.text.as_bytes());
            defs.add_source(s, &mut diag);
        }
        defs.finish_falco(&mut diag);
        let hash: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let files: HashMap<String, usize> = defs
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        let locate = |base: &Location, needle: &str| -> Location {
            match files.get(&base.file) {
                Some(i) => defs.files[*i].find_from(base, needle),
                None => base.clone(),
            }
        };

        // Lists.
        let lists: HashMap<String, Arc<ListSet>> = defs
            .lists
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
            .collect();
        let is_ident = |n: &str| {
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
        };
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

        // Macros: check names, then expand (with cycle detection).
        let names = NamesOf(&defs);
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
                    diag.err(&locate(&f.loc, &p.text), Some(&label), p.msg);
                    ok = false;
                }
            }
            macro_ok.insert(name.clone(), ok);
        }
        // Macro expansion, bounded: first every macro's expanded length
        // (memoised, so shared sub-macros are measured once and nothing is
        // built), then only macros within the limits are expanded, lazily,
        // each once.
        let mut sizes: HashMap<String, MacroSize> = HashMap::new();
        let mut cycles = Vec::new();
        {
            let mut mnames: Vec<&String> = defs.macros.keys().collect();
            mnames.sort();
            for n in mnames {
                macro_size(
                    n,
                    &defs,
                    &mut sizes,
                    &mut Vec::new(),
                    &mut cycles,
                    max_macro_depth,
                );
            }
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
        for (deep, limit) in [(true, max_macro_depth), (false, max_condition_bytes)] {
            let measure = |s: &MacroSize| if deep { s.depth } else { s.len };
            let over: std::collections::BTreeSet<&String> = sizes
                .iter()
                .filter(|(_, s)| measure(s) > limit)
                .map(|(n, _)| n)
                .collect();
            let inside: std::collections::HashSet<&str> = over
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
                    format!("macro {chain} nests macros more than {max_macro_depth} deep")
                } else {
                    format!(
                        "macro {chain} expands beyond {max_condition_bytes} bytes of condition text ({}); a macro used several times in another is copied each time: use a list, or restructure",
                        fmt_size(sizes[*name].len)
                    )
                };
                let m = &defs.macros[*name];
                let at = m.frags.first().map_or(&m.loc, |f| &f.loc);
                diag.err(at, Some(&format!("macro `{name}`")), msg);
            }
        }
        let mut expanded: HashMap<String, Option<String>> = HashMap::new();
        // Condition text materialised so far (macro expansions and rules).
        let mut set_bytes: usize = 0;
        let mut set_cost: usize = 0;

        // Rules.
        let patterns_cell: Arc<OnceLock<Patterns>> = Arc::new(OnceLock::new());
        let engine = crate::condition::make_engine(patterns_cell.clone());
        let scope = make_scope(&lists, &Arc::new(EventSlot::default()));
        let mut patterns = Patterns::default();
        let mut rules = Vec::new();
        let probe_slot = Arc::new(EventSlot::default());
        let mut probe_scope = make_scope(&lists, &probe_slot);
        for r in &defs.rules {
            let label = format!("rule `{}`", r.name);
            let l = Some(label.as_str());
            let mut ok = true;
            let events = EventMask::of(&r.events);
            let mut read = Vec::new();
            for f in r.frags.iter().chain(r.exceptions.iter().map(|e| &e.cond)) {
                for p in check_names(&f.text, &names, &[], &mut read) {
                    diag.err(&locate(&f.loc, &p.text), l, p.msg);
                    ok = false;
                }
            }
            let uses_bad_macro = |text: &str| {
                crate::condition::lex(text).iter().any(|t| {
                    matches!(&t.tok, crate::condition::Tok::Ident(i) if macro_ok.get(i) == Some(&false))
                })
            };
            let bad_macro = r
                .frags
                .iter()
                .chain(r.exceptions.iter().map(|e| &e.cond))
                .any(|f| uses_bad_macro(&f.text));
            if !ok || bad_macro {
                // Still check the output template, so every error is reported.
                if let Some(o) = &r.output {
                    if let Err(es) = Template::parse(&o.text, events, r.threshold.is_some()) {
                        for e in es {
                            diag.err(&o.loc, l, e);
                        }
                    }
                }
                continue;
            }
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
            let mut size_of = |n: &str| sizes.get(n).map(|s| s.len);
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
                    .map(|m| format!(" through macro {}", macro_chain(&m, &sizes, false)))
                    .unwrap_or_default();
                diag.err(
                    loc,
                    l,
                    format!(
                        "condition expands beyond {max_condition_bytes} bytes ({}){via}; a macro used several times is copied each time: use a list, or restructure",
                        fmt_size(n)
                    ),
                );
                continue;
            }
            if set_bytes.saturating_add(rule_bytes) > max_set_bytes {
                diag.err(
                    &cond_loc,
                    l,
                    format!("the rule set's conditions expand beyond {max_set_bytes} bytes in all at this rule; rules after it are not compiled"),
                );
                break;
            }
            let mut exp = |t: &str| {
                expand_macros(t, &mut |n| {
                    materialize(n, &defs, &macro_ok, &mut expanded, &mut set_bytes)
                })
            };
            let cond_text = exp(&raw);
            let exc_texts: Vec<(String, String, Location)> = r
                .exceptions
                .iter()
                .map(|e| (e.name.clone(), exp(&e.cond.text), e.cond.loc.clone()))
                .collect();
            set_bytes = set_bytes.saturating_add(rule_bytes);
            // Fields read after expansion must be carried by the rule's events.
            let mut all_read = Vec::new();
            check_names(&cond_text, &names, &[], &mut all_read);
            for (_, t, _) in &exc_texts {
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
                        .map(|fr| locate(&fr.loc, f.name()))
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
            let base = r
                .frags
                .last()
                .map(|f| f.loc.clone())
                .unwrap_or_else(|| r.loc.clone());
            let mut comp = Compiler {
                engine: &engine,
                scope: &scope,
                lists: &lists,
                patterns: &mut patterns,
                problems: Vec::new(),
            };
            let cond = comp.compile(&cond_text);
            let rhai_full = comp.compile_rhai_quiet(&cond_text);
            let mut problems: Vec<(Location, crate::condition::CompileProblem)> =
                comp.problems.drain(..).map(|p| (base.clone(), p)).collect();
            let mut exceptions = Vec::new();
            for (name, text, loc) in &exc_texts {
                let node = comp.compile(text);
                problems.extend(comp.problems.drain(..).map(|p| (loc.clone(), p)));
                exceptions.push((name.clone(), node));
            }
            // Worst-case work per event: every node of the condition and the
            // exceptions evaluated once.
            let cost = exceptions.iter().zip(&exc_texts).fold(
                RuleCost::of(&cond, cond_text.len()),
                |c, ((_, n), (_, t, _))| c.plus(RuleCost::of(n, t.len())),
            );
            if cost.nodes > max_rule_nodes {
                problems.push((
                    base.clone(),
                    crate::condition::CompileProblem {
                        text: None,
                        msg: format!(
                            "condition costs {} nodes per event in the worst case (limit {max_rule_nodes})",
                            cost.nodes
                        ),
                        warning: false,
                    },
                ));
            }
            let mut seen_warn = std::collections::HashSet::new();
            for (base, p) in problems {
                let at = p.text.as_deref().map(|t| locate(&base, t)).unwrap_or(base);
                if p.warning {
                    if seen_warn.insert(p.msg.clone()) {
                        diag.warn(&at, l, p.msg);
                    }
                } else {
                    diag.err(&at, l, p.msg);
                    ok = false;
                }
            }
            if ok && (!cond.is_native() || exceptions.iter().any(|(_, n)| !n.is_native())) {
                let mut found = Vec::new();
                for t in r.events.iter() {
                    let probe_ev = Event::new(*t);
                    probe_slot.set(Some(&probe_ev));
                    let mut ctx = RhaiCtx {
                        engine: &engine,
                        scope: &mut probe_scope,
                    };
                    crate::condition::probe_leaves(&cond, &mut ctx, &mut found);
                    for (_, n) in &exceptions {
                        crate::condition::probe_leaves(n, &mut ctx, &mut found);
                    }
                    probe_slot.set(None);
                }
                found.sort();
                found.dedup();
                for (text, msg) in found {
                    diag.err(&locate(&base, &text), l, msg);
                    ok = false;
                }
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
                    continue;
                }
            };
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
            if !ok {
                continue;
            }
            if r.enabled {
                set_cost = set_cost.saturating_add(cost.nodes);
                if set_cost > max_set_nodes {
                    diag.err(
                        &base,
                        l,
                        format!("the enabled rules' conditions cost more than {max_set_nodes} nodes per event in all at this rule; rules after it are not compiled"),
                    );
                    break;
                }
            }
            let clauses = clause_texts(&cond_text);
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
            rules.push(Rule {
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
                rhai_full,
                fingerprint,
                cost,
                falco: r.falco.clone(),
                key: None,
            });
        }
        if !diag.errors.is_empty() {
            // Report in source order: file as loaded, then line and column.
            let order: HashMap<&str, usize> = sources
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.as_str(), i))
                .collect();
            let mut errors = diag.errors;
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
            return Err(LoadErrors(errors));
        }
        {
            let regexes = RegexSources::new(patterns.regex.iter());
            for r in &mut rules {
                r.key = crate::index::required(&r.cond, &regexes);
            }
        }
        let _ = patterns_cell.set(patterns);
        let index = build_index(&rules, true);
        let by_name = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.to_string(), i as u32))
            .collect();
        let n_files = defs.files.len();
        tracing::debug!(rules = rules.len(), hash = %hash, "rule set compiled");
        // The daemon's start-up / reload log says which Falco rules cannot run.
        let falco: Vec<&Rule> = rules.iter().filter(|r| r.falco.is_some()).collect();
        if !falco.is_empty() {
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
        Ok(RuleSet {
            hash,
            sources: sources.iter().filter_map(|s| s.path.clone()).collect(),
            n_files,
            warnings: diag.warnings,
            rules,
            by_name,
            index,
            indexed: true,
            engine,
            lists,
            n_macros: defs.macros.len() + defs.falco.counts().0,
            n_falco_lists: defs.falco.counts().1,
        })
    }

    pub fn warnings(&self) -> &[LoadWarning] {
        &self.warnings
    }

    /// Hex SHA-256 of the loaded sources (names and contents, in order).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Every rule (enabled or not), in definition order.
    pub fn rules(&self) -> impl Iterator<Item = RuleInfo> + '_ {
        self.rules.iter().map(|r| RuleInfo {
            name: r.name.to_string(),
            priority: r.priority,
            enabled: r.enabled,
            events: r.events.iter().collect(),
            tags: r.tags.to_vec(),
            desc: r.desc.clone(),
            falco: r.falco.clone(),
        })
    }

    /// Each rule's worst-case evaluation work per event, in definition order.
    pub fn costs(&self) -> impl Iterator<Item = (&str, RuleCost)> + '_ {
        self.rules.iter().map(|r| (&*r.name, r.cost))
    }

    /// Whether a rule of this name exists.
    pub fn has_rule(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Disables every enabled rule for which `off` returns true (the daemon's
    /// rule selection: `--min-priority`, `-T`/`-t` tags, `-D` names) and
    /// rebuilds the candidate index; returns the names disabled. Never
    /// enables a rule, so the set's compile budgets still hold.
    pub fn disable_where(&mut self, mut off: impl FnMut(&RuleInfo) -> bool) -> Vec<String> {
        let infos: Vec<RuleInfo> = self.rules().collect();
        let mut names = Vec::new();
        for (r, info) in self.rules.iter_mut().zip(&infos) {
            if r.enabled && off(info) {
                r.enabled = false;
                names.push(info.name.clone());
            }
        }
        if !names.is_empty() {
            self.index = build_index(&self.rules, self.indexed);
        }
        names
    }

    /// Test support: turn the candidate index off (every enabled rule is
    /// evaluated for every event of its kinds) or back on. Matches never
    /// change; only the work does.
    #[doc(hidden)]
    pub fn set_indexed(&mut self, on: bool) {
        self.indexed = on;
        self.index = build_index(&self.rules, on);
    }

    /// Number of rules, macros, lists and files loaded.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.rules.len(),
            self.n_macros,
            self.lists.len() + self.n_falco_lists,
            self.n_files,
        )
    }

    /// A rule's condition after macro expansion (for `explain` and docs).
    pub fn condition_text(&self, rule: &str) -> Option<&str> {
        self.by_name
            .get(rule)
            .map(|i| self.rules[*i as usize].cond_text.as_str())
    }

    pub fn diff(&self, old: &RuleSet) -> RuleSetDiff {
        let mut d = RuleSetDiff::default();
        for r in &self.rules {
            match old.by_name.get(&*r.name) {
                None => d.added.push(r.name.to_string()),
                Some(i) if old.rules[*i as usize].fingerprint != r.fingerprint => {
                    d.changed.push(r.name.to_string())
                }
                _ => {}
            }
        }
        for r in &old.rules {
            if !self.by_name.contains_key(&*r.name) {
                d.removed.push(r.name.to_string());
            }
        }
        d
    }

    /// The kernel first-stage filter derived from the enabled rules.
    pub fn kernel_filter(&self) -> KernelFilter {
        let mut types: [TypeFilter; EventType::COUNT] = std::array::from_fn(|_| TypeFilter::Drop);
        for r in self.rules.iter().filter(|r| r.enabled) {
            let c = constraint(&r.cond);
            for t in r.events.iter() {
                let slot = &mut types[t.index()];
                match (&c, &mut *slot) {
                    (_, TypeFilter::PassAll) => {}
                    (None, s) => *s = TypeFilter::PassAll,
                    (Some(c), TypeFilter::Match(s)) => s.union_with(c),
                    (Some(c), s) => *s = TypeFilter::Match(c.clone()),
                }
            }
        }
        KernelFilter { types }
    }

    /// What each rule contributed to [`RuleSet::kernel_filter`].
    pub fn filter_contributions(&self) -> Vec<RuleContribution> {
        self.rules
            .iter()
            .map(|r| {
                let term = if !r.enabled {
                    Err("disabled: contributes nothing".into())
                } else {
                    constraint(&r.cond).ok_or_else(|| {
                        if r.cond.is_native() {
                            "no top-level `&&` term on proc.name, proc.pname, proc.pid, proc.cgroup, proc.unit, container.id (== or in), file.path (==, in, starts_with, glob) or file.write: forces pass-all".into()
                        } else {
                            "no native term on proc.name, proc.pname, proc.pid, proc.cgroup, proc.unit, container.id, file.path or file.write (parts of the condition run in Rhai): forces pass-all".into()
                        }
                    })
                };
                // Which top-level clause gave the chosen (smallest) constraint.
                let clause = match &term {
                    Ok(chosen) => {
                        let conj = r.cond.conjuncts();
                        conj.iter()
                            .position(|c| constraint(c).as_ref() == Some(chosen))
                            .filter(|_| r.clauses.len() == conj.len())
                            .map(|k| r.clauses[k].clone())
                    }
                    Err(_) => None,
                };
                RuleContribution {
                    rule: r.name.to_string(),
                    enabled: r.enabled,
                    events: r.events.iter().collect(),
                    term,
                    clause,
                }
            })
            .collect()
    }

    /// Files actually read, in order.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// Test support: evaluate a rule's condition natively (with Rhai leaves)
    /// and with Rhai alone. `None` when the rule does not exist.
    #[doc(hidden)]
    pub fn eval_both(
        &self,
        rule: &str,
        ev: &Event,
    ) -> Option<(Result<bool, String>, Result<bool, String>)> {
        let r = &self.rules[*self.by_name.get(rule)? as usize];
        let slot = Arc::new(EventSlot::default());
        let mut scope = make_scope(&self.lists, &slot);
        slot.set(Some(ev));
        let mut ctx = RhaiCtx {
            engine: &self.engine,
            scope: &mut scope,
        };
        let native = r.cond.eval(ev, &mut ctx).map_err(|e| e.to_string());
        let rhai = match &r.rhai_full {
            Some(ast) => crate::condition::eval_rhai(ast, &mut ctx).map_err(|e| e.to_string()),
            None => Err("not compiled".into()),
        };
        slot.set(None);
        Some((native, rhai))
    }

    /// True when the rule's condition evaluates entirely natively.
    #[doc(hidden)]
    pub fn is_native(&self, rule: &str) -> Option<bool> {
        self.by_name
            .get(rule)
            .map(|i| self.rules[*i as usize].cond.is_native())
    }
}

/// Threshold state of one `by` key.
struct KeyState {
    /// Times of the last `count` matches.
    times: VecDeque<i64>,
    last_alert: Option<i64>,
    since_alert: u64,
    last_seen: i64,
}

/// Evaluates events against a rule set; owns threshold state.
pub struct Evaluator {
    rules: Arc<RuleSet>,
    hostname: Arc<str>,
    slot: Arc<EventSlot>,
    scope: rhai::Scope<'static>,
    cands: Vec<u32>,
    events: u64,
    evaluated: u64,
    matches: Vec<u64>,
    errors: Vec<u64>,
    thresholds: HashMap<u32, HashMap<String, KeyState>>,
}

impl Evaluator {
    pub fn new(rules: Arc<RuleSet>, hostname: &str) -> Evaluator {
        let slot = Arc::new(EventSlot::default());
        let scope = make_scope(&rules.lists, &slot);
        let n = rules.rules.len();
        Evaluator {
            rules,
            hostname: Arc::from(hostname),
            slot,
            scope,
            cands: Vec::with_capacity(64),
            events: 0,
            evaluated: 0,
            matches: vec![0; n],
            errors: vec![0; n],
            thresholds: HashMap::new(),
        }
    }

    /// Hot reload: replaces the rules. A rule whose definition did not change
    /// (same name and fingerprint) keeps its state — threshold windows and
    /// per-rule counters — so a reload that touches other rules, or a SIGHUP,
    /// does not reset it; a changed or added rule starts fresh. The event
    /// counters continue.
    pub fn swap_rules(&mut self, rules: Arc<RuleSet>) {
        let n = rules.rules.len();
        let mut matches = vec![0; n];
        let mut errors = vec![0; n];
        let mut thresholds = HashMap::new();
        for (j, r) in rules.rules.iter().enumerate() {
            let Some(&i) = self.rules.by_name.get(&*r.name) else {
                continue;
            };
            if self.rules.rules[i as usize].fingerprint != r.fingerprint {
                continue;
            }
            matches[j] = self.matches[i as usize];
            errors[j] = self.errors[i as usize];
            if let Some(state) = self.thresholds.remove(&i) {
                thresholds.insert(j as u32, state);
            }
        }
        self.scope = make_scope(&rules.lists, &self.slot);
        self.rules = rules;
        self.matches = matches;
        self.errors = errors;
        self.thresholds = thresholds;
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Appends one [`Alert`] per matching rule to `out` (every matching rule
    /// fires; no first-match).
    pub fn evaluate(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let Evaluator {
            rules,
            hostname,
            slot,
            scope,
            cands,
            events,
            evaluated,
            matches,
            errors,
            thresholds,
        } = self;
        *events += 1;
        let rs: &RuleSet = rules;
        rs.index[ev.kind.index()].candidates(ev, cands);
        if cands.is_empty() {
            return;
        }
        slot.set(Some(ev));
        let mut ctx = RhaiCtx {
            engine: &rs.engine,
            scope,
        };
        for &i in cands.iter() {
            let i = i as usize;
            let r = &rs.rules[i];
            *evaluated += 1;
            let hit = match r.cond.eval(ev, &mut ctx) {
                Ok(true) => {
                    let mut excepted = Ok(false);
                    for (_, e) in &r.exceptions {
                        match e.eval(ev, &mut ctx) {
                            Ok(false) => {}
                            other => {
                                excepted = other;
                                break;
                            }
                        }
                    }
                    excepted.map(|x| !x)
                }
                other => other,
            };
            match hit {
                Ok(false) => {}
                Ok(true) => {
                    let count = match &r.threshold {
                        None => None,
                        Some(t) => match threshold_step(thresholds, i as u32, t, ev) {
                            Some(c) => Some(c),
                            None => continue,
                        },
                    };
                    matches[i] += 1;
                    out.push(make_alert(r, ev, count, hostname));
                }
                Err(e) => {
                    errors[i] += 1;
                    tracing::debug!(rule = %r.name, error = %e, "condition evaluation failed");
                }
            }
        }
        slot.set(None);
    }

    pub fn stats(&self) -> EvalStats {
        let mut s = EvalStats {
            events: self.events,
            rules_evaluated: self.evaluated,
            ..EvalStats::default()
        };
        for (i, r) in self.rules.rules.iter().enumerate() {
            if self.matches[i] > 0 {
                s.matches.insert(r.name.to_string(), self.matches[i]);
            }
            if self.errors[i] > 0 {
                s.errors.insert(r.name.to_string(), self.errors[i]);
            }
        }
        s
    }

    /// Why `rule` did not fire for `ev` (for test reports): the event type,
    /// the first false top-level clause, an exception that matched, an
    /// evaluation error, or a threshold not reached. `None` if it would match.
    pub fn why_not(&mut self, rule: &str, ev: &Event) -> Option<String> {
        let rs = self.rules.clone();
        let Some(&i) = rs.by_name.get(rule) else {
            return Some(format!("no rule named `{rule}`"));
        };
        let r = &rs.rules[i as usize];
        if !r.enabled {
            return Some("the rule is disabled".into());
        }
        if !r.events.contains(ev.kind) {
            return Some(format!(
                "event type `{}` is not one of the rule's events ({})",
                ev.kind,
                r.events
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        self.slot.set(Some(ev));
        let mut ctx = RhaiCtx {
            engine: &rs.engine,
            scope: &mut self.scope,
        };
        let conj = r.cond.conjuncts();
        let mut reason = None;
        for (k, c) in conj.iter().enumerate() {
            match c.eval(ev, &mut ctx) {
                Ok(true) => {}
                Ok(false) => {
                    reason = Some(
                        match r.clauses.get(k).filter(|_| r.clauses.len() == conj.len()) {
                            Some(t) => format!("clause `{t}` was false"),
                            None => "the condition was false".to_string(),
                        },
                    );
                    break;
                }
                Err(e) => {
                    reason = Some(format!("evaluation error: {e}"));
                    break;
                }
            }
        }
        if reason.is_none() {
            for (name, e) in &r.exceptions {
                if let Ok(true) = e.eval(ev, &mut ctx) {
                    reason = Some(format!("exception `{name}` matched"));
                    break;
                }
            }
        }
        self.slot.set(None);
        reason.or_else(|| {
            r.threshold.as_ref().map(|t| {
                format!(
                    "condition matched but the threshold ({} in {} ms) was not reached",
                    t.count,
                    t.window_ns / 1_000_000
                )
            })
        })
    }
}

/// Record a match for a threshold rule; `Some(count)` when it raises an alert.
fn threshold_step(
    states: &mut HashMap<u32, HashMap<String, KeyState>>,
    rule: u32,
    t: &Threshold,
    ev: &Event,
) -> Option<u64> {
    let keys = states.entry(rule).or_default();
    let mut key = String::new();
    for (k, f) in t.by.iter().enumerate() {
        if k > 0 {
            key.push('\u{1f}');
        }
        if let Some(v) = ev.get(*f) {
            key.push_str(&v.render());
        }
    }
    if !keys.contains_key(&key) && keys.len() >= MAX_THRESHOLD_KEYS {
        if let Some(oldest) = keys
            .iter()
            .min_by_key(|(_, s)| s.last_seen)
            .map(|(k, _)| k.clone())
        {
            keys.remove(&oldest);
        }
    }
    let s = keys.entry(key).or_insert_with(|| KeyState {
        times: VecDeque::new(),
        last_alert: None,
        since_alert: 0,
        last_seen: ev.time,
    });
    let now = ev.time;
    s.last_seen = now;
    s.since_alert += 1;
    s.times.push_back(now);
    while s.times.len() as u64 > t.count {
        s.times.pop_front();
    }
    while s
        .times
        .front()
        .is_some_and(|f| now.saturating_sub(*f) >= t.window_ns)
    {
        s.times.pop_front();
    }
    let reached = s.times.len() as u64 >= t.count;
    let quiet = s
        .last_alert
        .is_none_or(|a| now.saturating_sub(a) >= t.window_ns);
    if reached && quiet {
        let c = if s.last_alert.is_none() {
            t.count.max(s.times.len() as u64)
        } else {
            s.since_alert
        };
        s.last_alert = Some(now);
        s.since_alert = 0;
        Some(c)
    } else {
        None
    }
}

fn make_alert(r: &Rule, ev: &Event, count: Option<u64>, hostname: &Arc<str>) -> Alert {
    let mut fields = ev.to_flat_json();
    if let Some(c) = count {
        fields.insert(COUNT_FIELD.to_string(), serde_json::Value::from(c));
    }
    Alert {
        time: ev.time,
        rule: r.name.clone(),
        priority: r.priority,
        output: r.output.render(ev, count),
        output_fields: fields,
        tags: r.tags.clone(),
        source: "syscall",
        hostname: hostname.clone(),
    }
}

/// The machine's hostname (`/proc/sys/kernel/hostname`), or "localhost".
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
