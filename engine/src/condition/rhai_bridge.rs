//! The Rhai side of conditions: the sandboxed engine (limits, helper
//! functions backed by the load-time [`Patterns`]), the namespace views that
//! read the current event, and the scope holding the lists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, OnceLock};

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Scope};

use super::eval::{default_value, read_field};
use super::ir::ListSet;
use super::matchers::{build_glob, build_regex, Cidr, Patterns};
use super::{MAX_ARRAY_SIZE, MAX_EXPR_DEPTH, MAX_OPERATIONS, MAX_STRING_SIZE};
use crate::event::Event;
use crate::fields::{FieldValue, FIELDS};

/// Where the namespace views find the event being evaluated.
///
/// The evaluator stores a pointer to the current event here for the duration
/// of one `evaluate` call (and null otherwise); the views only read through it
/// while Rhai runs inside that call.
#[derive(Debug, Default)]
pub struct EventSlot(AtomicPtr<Event>);

impl EventSlot {
    pub(crate) fn set(&self, ev: Option<&Event>) {
        let p = ev.map_or(std::ptr::null_mut(), |e| e as *const Event as *mut Event);
        self.0.store(p, Ordering::Release);
    }

    fn with<R>(&self, f: impl FnOnce(Option<&Event>) -> R) -> R {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: the pointer is either null or was set by `Evaluator::evaluate`
        // from a `&Event` that outlives the whole Rhai evaluation running on
        // this thread; it is reset to null before `evaluate` returns.
        let ev = unsafe { p.as_ref() };
        f(ev)
    }
}

macro_rules! namespaces {
    ($($ty:ident => $ns:literal),*) => {
        $(
            /// A Rhai view of one field namespace of the current event.
            #[derive(Clone, Debug)]
            pub struct $ty(pub Arc<EventSlot>);
            impl NsView for $ty {
                fn slot(&self) -> &EventSlot { &self.0 }
            }
        )*
        fn register_namespaces(engine: &mut Engine) {
            $( register_ns::<$ty>(engine, $ns, stringify!($ty)); )*
        }
        fn push_namespaces(scope: &mut Scope<'static>, slot: &Arc<EventSlot>) {
            $( scope.push($ns, $ty(slot.clone())); )*
        }
    };
}

trait NsView: Clone + Send + Sync + 'static {
    fn slot(&self) -> &EventSlot;
}

namespaces!(EvtNs => "evt", ProcNs => "proc", UserNs => "user", ContainerNs => "container",
    FileNs => "file", NetNs => "net", TcpNs => "tcp", ExitNs => "exit",
    FsNs => "fs", PtraceNs => "ptrace", SocketNs => "socket", SetidNs => "setid", NsNs => "ns",
    MemfdNs => "memfd");

fn to_dynamic(v: FieldValue<'_>) -> Dynamic {
    match v {
        FieldValue::Str(s) => Dynamic::from(ImmutableString::from(&*s)),
        FieldValue::Int(i) => Dynamic::from(i),
        FieldValue::Bool(b) => Dynamic::from(b),
        FieldValue::StrList(l) => Dynamic::from_array(
            l.iter()
                .map(|s| Dynamic::from(ImmutableString::from(s.as_str())))
                .collect(),
        ),
    }
}

fn register_ns<T: NsView>(engine: &mut Engine, ns: &str, tyname: &str) {
    engine.register_type_with_name::<T>(tyname);
    let prefix = format!("{ns}.");
    for def in FIELDS {
        let Some(prop) = def.name.strip_prefix(&prefix) else {
            continue;
        };
        let f = def.id;
        engine.register_get(prop, move |v: &mut T| -> Dynamic {
            v.slot().with(|ev| match ev {
                Some(ev) => to_dynamic(read_field(ev, f)),
                None => to_dynamic(default_value(f.def().ty)),
            })
        });
    }
}

/// The Rhai engine for one rule set: limits, namespace views, list sets and
/// the helper functions (whose literal patterns come from `patterns`).
pub(crate) fn make_engine(patterns: Arc<OnceLock<Patterns>>) -> Engine {
    let mut e = Engine::new();
    e.set_strict_variables(true)
        .set_allow_looping(false)
        .set_max_operations(MAX_OPERATIONS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_ARRAY_SIZE)
        .set_max_call_levels(16)
        .set_max_variables(256);
    e.disable_symbol("eval");
    // Conditions must not write to vigil's stdout (alerts go there).
    e.on_print(|_| {});
    e.on_debug(|_, _, _| {});
    register_namespaces(&mut e);
    e.register_type_with_name::<Arc<ListSet>>("List");
    e.register_fn("contains", |l: &mut Arc<ListSet>, s: ImmutableString| {
        l.strs.contains(s.as_str())
    });
    e.register_fn("contains", |l: &mut Arc<ListSet>, i: i64| {
        l.ints.contains(&i)
    });
    let p = patterns.clone();
    e.register_fn(
        "regex",
        move |s: &str, pat: &str| -> Result<bool, Box<EvalAltResult>> {
            if let Some(r) = p.get().and_then(|t| t.regex.get(pat)) {
                return Ok(r.is_match(s));
            }
            build_regex(pat).map(|r| r.is_match(s)).map_err(Into::into)
        },
    );
    let p = patterns.clone();
    e.register_fn(
        "glob",
        move |s: &str, pat: &str| -> Result<bool, Box<EvalAltResult>> {
            if let Some(g) = p.get().and_then(|t| t.glob.get(pat)) {
                return Ok(g.is_match(s));
            }
            build_glob(pat).map(|g| g.is_match(s)).map_err(Into::into)
        },
    );
    let p = patterns;
    e.register_fn(
        "cidr",
        move |s: &str, pat: &str| -> Result<bool, Box<EvalAltResult>> {
            if let Some(c) = p.get().and_then(|t| t.cidr.get(pat)) {
                return Ok(c.contains(s));
            }
            Cidr::parse(pat).map(|c| c.contains(s)).map_err(Into::into)
        },
    );
    e
}

/// A scope with the lists (by name) and the namespace views reading `slot`.
pub(crate) fn make_scope(
    lists: &HashMap<String, Arc<ListSet>>,
    slot: &Arc<EventSlot>,
) -> Scope<'static> {
    let mut s = Scope::new();
    let mut names: Vec<_> = lists.keys().collect();
    names.sort();
    for n in names {
        // `push`, not `push_constant`: constants would be folded by the optimizer.
        s.push(n.clone(), lists[n].clone());
    }
    push_namespaces(&mut s, slot);
    s
}
