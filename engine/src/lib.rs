//! vigil's engine: the event model and field catalogue, the rule language
//! (YAML rule files with Rhai conditions), its compiler and evaluator, and
//! the derivation of the kernel's first-stage filter. Pure Rust: no kernel,
//! no I/O beyond reading rule files, so everything here runs unprivileged
//! and offline.

pub mod alert;
pub mod condition;
pub mod dialect;
pub mod duration;
pub mod error;
pub mod event;
pub mod falco;
pub mod fields;
pub mod filter;
mod index;
mod limits;
pub mod rules;
pub mod ruleset;
pub mod template;
pub mod testcase;

pub use alert::{Alert, Priority};
pub use error::{LoadError, LoadErrors, LoadWarning, Location};
pub use event::{Detail, Event, EventMask, EventType, FileInfo, NetInfo, OpInfo, Process};
pub use fields::{Field, FieldDef, FieldType, FieldValue, FIELDS};
pub use filter::{FilterSets, KernelFilter, TypeFilter};
pub use rules::FalcoStatus;
pub use ruleset::{
    EvalStats, Evaluator, Limits, LoadReport, RuleCost, RuleInfo, RuleSet, RuleSetDiff,
};
pub use testcase::{
    coverage, load_cases, parse_cases, run_cases, CaseFile, CaseResult, ClauseCoverage,
    InvalidCase, RuleCoverage, TestCase,
};
