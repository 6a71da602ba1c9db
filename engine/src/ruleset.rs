//! The compiled, indexed rule set ([`RuleSet`], immutable, `Send + Sync`) and
//! its evaluation ([`Evaluator`], which owns the per-rule threshold state so
//! the rule set itself never changes after it is built).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::alert::{Alert, Priority};
use crate::error::{LoadErrors, LoadWarning, Location};
use crate::event::{Event, EventType};
use crate::filter::{KernelFilter, RuleContribution};

/// Public description of one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub name: String,
    pub priority: Priority,
    pub enabled: bool,
    pub events: Vec<EventType>,
    pub tags: Vec<String>,
    pub desc: String,
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

/// The compiled rule set. Build with [`RuleSet::load`] or [`RuleSet::from_sources`].
#[derive(Debug)]
pub struct RuleSet {
    hash: String,
    sources: Vec<PathBuf>,
    warnings: Vec<LoadWarning>,
}

impl RuleSet {
    /// Load rule files and directories (a directory: its `*.yaml`/`*.yml`, name
    /// order, non-recursive, skipping dot files), in the order given.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet, LoadErrors> {
        let _ = paths;
        Err(LoadErrors::single(
            Location::default(),
            None,
            "rule loading is not implemented yet",
        ))
    }

    /// Load from in-memory `(name, yaml)` sources, in order.
    pub fn from_sources(sources: &[(String, String)]) -> Result<RuleSet, LoadErrors> {
        let _ = sources;
        Err(LoadErrors::single(
            Location::default(),
            None,
            "rule loading is not implemented yet",
        ))
    }

    pub fn warnings(&self) -> &[LoadWarning] {
        &self.warnings
    }

    /// Hex SHA-256 of the loaded sources (names and contents, in order).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn rules(&self) -> impl Iterator<Item = RuleInfo> + '_ {
        std::iter::empty()
    }

    pub fn diff(&self, old: &RuleSet) -> RuleSetDiff {
        let _ = old;
        RuleSetDiff::default()
    }

    pub fn kernel_filter(&self) -> KernelFilter {
        KernelFilter::pass_all()
    }

    /// What each rule contributed to [`RuleSet::kernel_filter`].
    pub fn filter_contributions(&self) -> Vec<RuleContribution> {
        Vec::new()
    }

    /// Files actually read, in order.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }
}

/// Evaluates events against a rule set; owns threshold state.
pub struct Evaluator {
    rules: Arc<RuleSet>,
    hostname: Arc<str>,
    stats: EvalStats,
}

impl Evaluator {
    pub fn new(rules: Arc<RuleSet>, hostname: &str) -> Evaluator {
        Evaluator {
            rules,
            hostname: Arc::from(hostname),
            stats: EvalStats::default(),
        }
    }

    /// Hot reload: replaces the rules and drops all per-rule state.
    pub fn swap_rules(&mut self, rules: Arc<RuleSet>) {
        self.rules = rules;
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Appends one [`Alert`] per matching rule to `out`.
    pub fn evaluate(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let _ = (ev, out, &self.hostname);
        self.stats.events += 1;
    }

    pub fn stats(&self) -> EvalStats {
        self.stats.clone()
    }
}
