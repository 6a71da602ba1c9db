//! Falco rule files: dialect detection, Falco's items and keys, Falco's
//! condition grammar, and its lowering onto vigil's condition IR.
//!
//! A file is read as Falco when its items say so without any edit: an item
//! `required_engine_version` / `required_plugin_versions`, a Falco-only key
//! (`override`, `source`, `warn_evttypes`, `skip-if-unknown-filter`), or rules
//! with no `events:` whose conditions use Falco's words (`and`, `or`, `not`,
//! `=`, `startswith`, ...), or when its rules path declares it
//! (`falco:PATH`, see [`split_dialect`]). A directory may mix both dialects.
//!
//! Falco items are collected per rule set ([`FalcoDefs`]: lists, macros and
//! rules share one namespace across Falco files, apart from vigil's own) and
//! turned into ordinary rule definitions once every file is read
//! ([`FalcoDefs::finish`]): each condition is parsed, its macros expanded as
//! trees and its lists inlined, then lowered to the text form of vigil's
//! condition IR (`proc.name in ["sh", "bash"] && ...`), which the compiler
//! turns into the native evaluation tree and the kernel filter like any other
//! rule. Event kinds are inferred from `evt.type` as Falco does; Falco field
//! names are mapped onto vigil's catalogue with Falco's meaning.
//!
//! A rule that needs a syscall vigil does not observe or a field vigil cannot
//! produce loads **inactive** (disabled, never evaluated) with the exact
//! reason; a real mistake (syntax, unknown macro, a field Falco does not
//! know either) is a load error at the item.
//!
//! Layout: [`lexer`] and [`parser`] read Falco's filter syntax, [`lower`]
//! (with [`special`] for the fields that are not one vigil field)
//! lowers it to vigil's condition text with [`fields`] (the field catalogue)
//! and [`evtypes`] (event-type inference); [`items`] holds the rule-file
//! side; [`output`] the `%field` templates.

mod evtypes;
mod fields;
mod items;
mod lexer;
mod lower;
mod output;
mod parser;
mod special;

pub(crate) use items::FalcoDefs;
pub use output::FalcoOutput;
// Where the dialect of a rules path is read (kept reachable here for callers).
pub use crate::dialect::{split_dialect, Dialect};

use serde_yaml_ng::{Mapping, Value};

use crate::error::{Diag, Location};
use crate::rules::{OtherDialect, RuleDef, SrcLines};

use lexer::{lex, T};

/// Keys only Falco files use.
const FALCO_ONLY_KEYS: &[&str] = &[
    "required_engine_version",
    "required_plugin_versions",
    "override",
    "source",
    "warn_evttypes",
    "skip-if-unknown-filter",
];
pub(super) const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "enabled",
    "tags",
    "exceptions",
    "append",
    "override",
    "source",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "required_engine_version",
];
pub(super) const MACRO_KEYS: &[&str] = &[
    "macro",
    "condition",
    "append",
    "override",
    "required_engine_version",
];
pub(super) const LIST_KEYS: &[&str] = &["list", "items", "append", "override"];

/// True when the file's items are Falco's dialect (see the module doc).
pub(crate) fn is_falco_file(items: &[Value]) -> bool {
    let maps = || items.iter().filter_map(Value::as_mapping);
    if maps().any(|m| FALCO_ONLY_KEYS.iter().any(|k| m.contains_key(*k))) {
        return true;
    }
    let rules: Vec<&Mapping> = maps().filter(|m| m.contains_key("rule")).collect();
    if rules.iter().any(|m| m.contains_key("events")) {
        return false;
    }
    maps()
        .filter_map(|m| m.get("condition").and_then(Value::as_str))
        .any(|c| {
            lex(c).is_ok_and(|toks| {
                toks.iter().any(|t| {
                    matches!(&t.tok, T::Word(w) if matches!(w.as_str(),
                        "and" | "or" | "not" | "startswith" | "endswith" | "icontains" | "pmatch" | "exists"))
                        || matches!(&t.tok, T::Op(o) if *o == "=")
                })
            })
        })
}

/// How the vigil loader (`rules`) hands Falco files over, without importing
/// this module: the rule set's build plugs a [`FalcoDefs`] in.
impl OtherDialect for FalcoDefs {
    fn claims(&self, items: &[Value]) -> bool {
        is_falco_file(items)
    }
    fn has_rule(&self, name: &str) -> bool {
        FalcoDefs::has_rule(self, name)
    }
    fn counts(&self) -> (usize, usize) {
        FalcoDefs::counts(self)
    }
    fn add_item(
        &mut self,
        m: &Mapping,
        item_loc: &Location,
        kloc: &dyn Fn(&str) -> Location,
        lines: &SrcLines,
        diag: &mut Diag,
    ) {
        FalcoDefs::add_item(self, m, item_loc, kloc, lines, diag);
    }
    fn finish(&self, files: &[SrcLines], diag: &mut Diag) -> Vec<RuleDef> {
        FalcoDefs::finish(self, files, diag)
    }
}
