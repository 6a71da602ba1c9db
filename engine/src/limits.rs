//! The compile budgets of a rule set ([`Limits`]) and their defaults: the
//! bounds on macro expansion, list building and per-event evaluation work.
//! Below both the rule-file reader (`rules`, which checks list sizes) and
//! the compiler (`ruleset`, which re-exports them).

/// Most distinct items one list may hold after including other lists.
pub const MAX_LIST_ITEMS: usize = 100_000;
/// Most list items a rule set may build in all (every list definition and
/// append counts the size of the list it produces).
pub const MAX_LIST_WORK: usize = 2_000_000;
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
            list_items: MAX_LIST_ITEMS,
            list_work: MAX_LIST_WORK,
        }
    }
}
