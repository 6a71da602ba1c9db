//! Rule conditions: lexing, macro inlining, load-time checks (unknown fields,
//! lists and macros, visible type errors), and compilation to a native
//! evaluation tree ([`Node`]) with Rhai for whatever the native tree does not
//! cover.
//!
//! The language is Rhai expressions over the fields (`proc.name`,
//! `file.path`, ...). Lists are usable by name (`proc.name in shell_binaries`,
//! a hash set); macros are inlined by name, parenthesised. Helpers:
//! `regex(s, pattern)` (regex-automata; **search anywhere** in `s` unless the
//! pattern is anchored with `^`/`$`; linear time; literal patterns compiled
//! once at load), `glob(path, pattern)` (globset; `*` does not cross `/`, `**`
//! does), `cidr(addr, "10.0.0.0/8")` (IPv4 and IPv6; IPv4-mapped IPv6 addresses
//! count as IPv4), and Rhai's `starts_with`/`ends_with`/`contains` (as methods
//! or functions).
//!
//! Common shapes (`==`, `!=`, ordering on ints/strings, `in` a list or array
//! literal or string/array field, `starts_with`, `ends_with`, `contains`,
//! `regex`/`glob`/`cidr` with literal patterns, `&&`, `||`, `!`, bool
//! fields) evaluate natively; any other sub-expression becomes a Rhai leaf
//! compiled once. Rhai runs with strict variables, no loops, no `eval`, and
//! limits on operations, expression depth, string and array sizes: a runaway
//! leaf stops with an error that counts as an evaluation error.
//!
//! A field a given event type does not carry reads as its type's empty value
//! (`""`, `0`, `false`, `[]`) in both paths.
//!
//! Layout: the IR ([`ir`]: the native tree) sits in the middle. vigil's own
//! syntax is one front-end ([`lexer`], [`names`], [`parser`], [`lower`]);
//! Falco's filter syntax is the other ([`crate::falco`], which resolves Falco's
//! rules, macros, lists and fields and hands the same lowering a vigil
//! condition). [`eval`] runs the IR, [`rhai_bridge`] hosts the Rhai leaves,
//! [`matchers`] holds the compiled literals (CIDR, regex, glob, open flags),
//! [`hash`] the engine's hasher. The kernel filter ([`crate::filter`]) reads
//! the IR too.

pub(crate) mod eval;
pub mod hash;
pub(crate) mod ir;
pub(crate) mod lexer;
pub(crate) mod lower;
pub mod matchers;
pub(crate) mod names;
pub(crate) mod parser;
pub(crate) mod rhai_bridge;

pub use eval::EvalError;
pub(crate) use eval::{eval_rhai, probe_leaves, RhaiCtx};
pub use hash::{FxBuild, FxHashMap, FxHashSet, FxHasher};
pub use ir::ListSet;
pub(crate) use ir::{CmpOp, Node, Operand, StrOp};
pub(crate) use lexer::{lex, Tok};
pub(crate) use lower::{CompileProblem, Compiler};
pub use matchers::{build_glob, build_regex, flag_present, Cidr, Patterns};
pub(crate) use names::{check_names, expand_macros, expanded_len, macro_refs, Names};
pub(crate) use parser::{parse, PExpr, P};
pub use rhai_bridge::EventSlot;
pub(crate) use rhai_bridge::{make_engine, make_scope};

/// Field namespaces: the Rhai variables conditions read fields through.
pub const NAMESPACES: &[&str] = &[
    "evt",
    "proc",
    "user",
    "container",
    "file",
    "net",
    "tcp",
    "exit",
    // the on-demand syscall kinds
    "fs",
    "ptrace",
    "socket",
    "setid",
    "ns",
    "memfd",
];

/// Helper functions beyond Rhai's own.
pub const HELPERS: &[&str] = &["regex", "glob", "cidr"];

/// Rhai limits for condition evaluation.
pub const MAX_OPERATIONS: u64 = 50_000;
pub const MAX_EXPR_DEPTH: usize = 128;
pub const MAX_STRING_SIZE: usize = 64 * 1024;
pub const MAX_ARRAY_SIZE: usize = 4096;
/// Regex size limits (compiled NFA bytes, nesting depth).
pub const REGEX_NFA_LIMIT: usize = 1 << 20;
pub const REGEX_NEST_LIMIT: u32 = 64;
