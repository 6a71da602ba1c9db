//! The compiled, indexed rule set ([`RuleSet`], immutable, `Send + Sync`) and
//! its evaluation ([`Evaluator`], which owns the per-rule threshold state so
//! the rule set itself never changes after it is built).
//!
//! Compilation is bounded ([`Limits`]): macro expansions are measured
//! (memoised, nothing built) before any is expanded, so a file whose macros
//! double at each level is refused at load in time linear in its text, with
//! the macro chain named; each rule's worst-case cost per event
//! ([`RuleCost`]) and the set's total are capped.
//!
//! Why one file past ~800 lines: [`RuleSet`] and [`Evaluator`] share the
//! private `Rule`, threshold and index state and are read together; building,
//! lint, profiling, shared sub-conditions and alert rendering are already
//! submodules (`build`, `lint`, `profile`, `memo`, `render`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

mod build;
mod lint;
mod memo;
pub mod profile;
mod render;

use crate::alert::{Alert, OutputFields, Priority};
use crate::condition::{make_scope, EventSlot, ListSet, Memo, Node, Patterns, RhaiCtx};
use crate::error::{Diag, LoadErrors, LoadWarning};
use crate::event::{Event, EventMask, EventType};
use crate::falco::FalcoOutput;
use crate::filter::{constraint, KernelFilter, RuleContribution, TypeFilter};
use crate::index::{Atom, KindIndex, RegexSources};
pub use crate::limits::{
    Limits, MAX_CONDITION_BYTES, MAX_MACRO_DEPTH, MAX_RULE_NODES, MAX_SET_BYTES, MAX_SET_NODES,
};
use crate::rules::{self, FalcoStatus, Source, Threshold, MAX_THRESHOLD_KEYS};
use crate::template::Template;

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

/// A load's outcome with its warnings, which come back also when it fails
/// ([`RuleSet::check`]).
#[derive(Debug)]
pub struct LoadReport {
    pub result: Result<RuleSet, LoadErrors>,
    pub warnings: Vec<LoadWarning>,
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
    fingerprint: String,
    /// Worst-case evaluation work per event.
    pub cost: RuleCost,
    pub falco: Option<FalcoStatus>,
    /// A Falco rule's output, parsed once: its alerts render as Falco's do.
    pub falco_output: Option<Arc<FalcoOutput>>,
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
    pub(crate) rules: Vec<Rule>,
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

    /// [`RuleSet::load`] for `vigil validate`: the warnings come back also
    /// when the load fails, plus one per directory without rule files.
    pub fn check<P: AsRef<Path>>(paths: &[P]) -> LoadReport {
        let mut warnings: Vec<LoadWarning> = paths
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| p.is_dir())
            .filter(|p| rules::list_dir_report(p, &mut |_, _| {}).is_ok_and(|f| f.is_empty()))
            .map(|p| LoadWarning {
                loc: crate::error::Location {
                    file: p.display().to_string(),
                    line: 0,
                    col: 0,
                },
                item: None,
                msg: "directory has no rule files (*.yaml, *.yml): nothing is loaded from it"
                    .into(),
            })
            .collect();
        let result = match rules::read_paths(paths) {
            Ok(sources) => {
                let (result, w) = RuleSet::build_report(sources, Limits::default());
                warnings.extend(w);
                result.map(|mut rs| {
                    rs.warnings = warnings.clone();
                    rs
                })
            }
            Err(e) => Err(e),
        };
        LoadReport { result, warnings }
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
                    dialect: None,
                })
                .collect(),
            limits,
        )
    }

    /// Compile the sources into a rule set: every error of every item is
    /// collected (see [`build`] for the steps) and the set is returned only
    /// when there are none.
    fn build(sources: Vec<Source>, limits: Limits) -> Result<RuleSet, LoadErrors> {
        RuleSet::build_report(sources, limits).0
    }

    /// [`RuleSet::build`] with the warnings, also when it fails.
    fn build_report(
        sources: Vec<Source>,
        limits: Limits,
    ) -> (Result<RuleSet, LoadErrors>, Vec<LoadWarning>) {
        let mut diag = Diag::default();
        let (defs, hash) = build::read_defs(&sources, limits, &mut diag);
        let locator = build::Locator::new(&defs);
        let lists = build::build_lists(&defs);
        build::check_def_names(&defs, &mut diag);
        let mut macro_ok = build::check_macros(&defs, &locator, &mut diag);
        let sizes = build::measure_macros(&defs, limits, &mut macro_ok, &mut diag);
        let patterns_cell: Arc<OnceLock<Patterns>> = Arc::new(OnceLock::new());
        let engine = crate::condition::make_engine(patterns_cell.clone());
        build::check_macro_bodies(&defs, &locator, &engine, &lists, &mut macro_ok, &mut diag);

        let mut compiler =
            build::RuleCompiler::new(&defs, &locator, limits, &macro_ok, &sizes, &engine, &lists);
        let mut rules = Vec::new();
        for r in &defs.rules {
            match compiler.compile(r, &mut diag) {
                build::Step::Rule(rule) => rules.push(*rule),
                build::Step::Skip => {}
                build::Step::Stop => break,
            }
        }
        let patterns = compiler.into_patterns();
        if !diag.errors.is_empty() {
            return (
                Err(build::sorted_errors(&sources, diag.errors)),
                diag.warnings,
            );
        }
        {
            let regexes = RegexSources::new(patterns.regex.iter());
            for r in &mut rules {
                r.key = crate::index::required(&r.cond, &regexes);
            }
        }
        memo::share(&mut rules);
        let _ = patterns_cell.set(patterns);
        let index = build_index(&rules, true);
        let by_name = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.to_string(), i as u32))
            .collect();
        let n_files = defs.files.len();
        tracing::debug!(rules = rules.len(), hash = %hash, "rule set compiled");
        build::log_falco_status(&rules);
        let warnings = diag.warnings.clone();
        let falco_counts = defs.falco.as_ref().map_or((0, 0), |f| f.counts());
        let rs = RuleSet {
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
            n_macros: defs.macros.len() + falco_counts.0,
            n_falco_lists: falco_counts.1,
        };
        (Ok(rs), warnings)
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

    /// Test support: turn the candidate index and the shared
    /// sub-conditions off (every enabled rule is evaluated for every event
    /// of its kinds, each on its own tree) or back on. Matches never change;
    /// only the work does.
    #[doc(hidden)]
    pub fn set_indexed(&mut self, on: bool) {
        self.indexed = on;
        if on {
            memo::share(&mut self.rules);
        } else {
            memo::unshare(&mut self.rules);
        }
        self.index = build_index(&self.rules, on);
    }

    /// Enables every disabled rule for which `on` returns true (the daemon's
    /// rule selection turning on a rule its file disables: `-t TAG`) and
    /// rebuilds the candidate index; returns the names enabled. A Falco rule
    /// vigil cannot run (`falco.inactive`) stays off. Refused, with nothing
    /// changed, when the enabled rules would then cost more than
    /// `max_set_nodes` per event in all (the load's set budget,
    /// [`Limits::set_nodes`]).
    pub fn enable_where(
        &mut self,
        mut on: impl FnMut(&RuleInfo) -> bool,
        max_set_nodes: usize,
    ) -> Result<Vec<String>, String> {
        let infos: Vec<RuleInfo> = self.rules().collect();
        let turn_on: Vec<bool> = infos
            .iter()
            .map(|i| !i.enabled && i.falco.as_ref().is_none_or(|f| f.inactive.is_none()) && on(i))
            .collect();
        let total = self
            .rules
            .iter()
            .zip(&turn_on)
            .filter(|(r, on)| r.enabled || **on)
            .fold(0usize, |n, (r, _)| n.saturating_add(r.cost.nodes));
        if total > max_set_nodes {
            return Err(format!(
                "enabling them would make the enabled rules cost {total} nodes per event in all, \
                 more than {max_set_nodes}"
            ));
        }
        let mut names = Vec::new();
        for ((r, info), on) in self.rules.iter_mut().zip(&infos).zip(turn_on) {
            if on {
                r.enabled = true;
                names.push(info.name.clone());
            }
        }
        if !names.is_empty() {
            self.index = build_index(&self.rules, self.indexed);
        }
        Ok(names)
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
                // `enabled` also apart: the selection changes it after the load.
                Some(i)
                    if old.rules[*i as usize].fingerprint != r.fingerprint
                        || old.rules[*i as usize].enabled != r.enabled =>
                {
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
    /// and, when `rhai_too`, with Rhai alone. `None` when the rule does not exist.
    fn eval_paths(
        &self,
        rule: &str,
        ev: &Event,
        rhai_too: bool,
    ) -> Option<(Result<bool, String>, Result<bool, String>)> {
        let r = &self.rules[*self.by_name.get(rule)? as usize];
        let slot = Arc::new(EventSlot::default());
        let mut scope = make_scope(&self.lists, &slot);
        // The whole condition by Rhai alone, compiled here, when a test asks:
        // rule sets loaded by the daemon never pay for this second AST.
        let full = if rhai_too {
            self.engine
                .compile_expression_with_scope(&scope, &r.cond_text)
                .map_err(|e| e.to_string())
        } else {
            Err("not asked for".into())
        };
        slot.set(Some(ev));
        let mut memo = Memo::default();
        let mut ctx = RhaiCtx {
            engine: &self.engine,
            scope: &mut scope,
            memo: &mut memo,
        };
        let native = r.cond.eval(ev, &mut ctx).map_err(|e| e.to_string());
        let rhai = full
            .and_then(|ast| crate::condition::eval_rhai(&ast, &mut ctx).map_err(|e| e.to_string()));
        slot.set(None);
        Some((native, rhai))
    }

    /// Test support: evaluate a rule's condition natively (with Rhai leaves)
    /// and with Rhai alone. `None` when the rule does not exist.
    #[doc(hidden)]
    pub fn eval_both(
        &self,
        rule: &str,
        ev: &Event,
    ) -> Option<(Result<bool, String>, Result<bool, String>)> {
        self.eval_paths(rule, ev, true)
    }

    /// Test support: evaluate a rule's condition natively (with Rhai leaves)
    /// only. `None` when the rule does not exist.
    #[doc(hidden)]
    pub fn eval_native(&self, rule: &str, ev: &Event) -> Option<Result<bool, String>> {
        self.eval_paths(rule, ev, false).map(|(n, _)| n)
    }

    /// The texts of a rule's top-level `&&` clauses, one per clause that
    /// [`Evaluator::clause_values`] reports (`clause N` where the compiled
    /// condition's clauses differ from the written ones).
    pub fn clause_labels(&self, rule: &str) -> Option<Vec<String>> {
        let r = &self.rules[*self.by_name.get(rule)? as usize];
        let n = r.cond.conjuncts().len();
        Some(if r.clauses.len() == n {
            r.clauses.clone()
        } else {
            (1..=n).map(|k| format!("clause {k}")).collect()
        })
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
    /// Shared sub-condition results of the current event.
    memo: Memo,
    events: u64,
    evaluated: u64,
    matches: Vec<u64>,
    errors: Vec<u64>,
    thresholds: HashMap<u32, HashMap<String, KeyState>>,
    /// What alerts' `output_fields` carry.
    output_fields: OutputFields,
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
            memo: Memo::default(),
            events: 0,
            evaluated: 0,
            matches: vec![0; n],
            errors: vec![0; n],
            thresholds: HashMap::new(),
            output_fields: OutputFields::default(),
        }
    }

    /// Chooses what alerts' `output_fields` carry (kept across `swap_rules`).
    pub fn set_output_fields(&mut self, shape: OutputFields) {
        self.output_fields = shape;
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
            memo,
            events,
            evaluated,
            matches,
            errors,
            thresholds,
            output_fields,
        } = self;
        *events += 1;
        let rs: &RuleSet = rules;
        rs.index[ev.kind.index()].candidates(ev, cands);
        if cands.is_empty() {
            return;
        }
        slot.set(Some(ev));
        memo.next_event();
        let mut ctx = RhaiCtx {
            engine: &rs.engine,
            scope,
            memo,
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
                    out.push(make_alert(r, ev, count, hostname, *output_fields));
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

    /// The value of each top-level `&&` clause of `rule` on `ev`, each
    /// evaluated on its own (no short-circuit; `None`: an evaluation error),
    /// in the order of [`RuleSet::clause_labels`]. `None` when the rule does
    /// not take the event (unknown, disabled, another event type).
    pub fn clause_values(&mut self, rule: &str, ev: &Event) -> Option<Vec<Option<bool>>> {
        let rs = self.rules.clone();
        let r = &rs.rules[*rs.by_name.get(rule)? as usize];
        if !r.enabled || !r.events.contains(ev.kind) {
            return None;
        }
        self.slot.set(Some(ev));
        let mut memo = Memo::default();
        let mut ctx = RhaiCtx {
            engine: &rs.engine,
            scope: &mut self.scope,
            memo: &mut memo,
        };
        let out = r
            .cond
            .conjuncts()
            .iter()
            .map(|c| c.eval(ev, &mut ctx).ok())
            .collect();
        self.slot.set(None);
        Some(out)
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
        let mut memo = Memo::default();
        let mut ctx = RhaiCtx {
            engine: &rs.engine,
            scope: &mut self.scope,
            memo: &mut memo,
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

fn make_alert(
    r: &Rule,
    ev: &Event,
    count: Option<u64>,
    hostname: &Arc<str>,
    shape: OutputFields,
) -> Alert {
    let falco = r.falco_output.as_deref();
    let (output, fields) = render::render(&r.output, falco, ev, count, shape);
    Alert {
        time: ev.time,
        rule: r.name.clone(),
        priority: r.priority,
        output,
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
