//! Per-rule evaluation cost on recorded events (`vigil profile`). Each
//! enabled rule is evaluated alone on every event of its types (condition,
//! then exceptions when it matched; no threshold state), rule by rule over a
//! batch of events so one clock reading covers a whole batch and the clock's
//! own cost stays out of the per-event figure. Also counted: the matches,
//! the evaluation errors, and how many of those events the rule's own
//! kernel-filter term would let through (all of them when it forces
//! pass-all).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{make_scope, EventSlot, RhaiCtx, RuleSet};
use crate::event::Event;
use crate::filter::{constraint, FilterSets};

/// One rule's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleProfile {
    pub name: String,
    /// The whole condition and its exceptions run natively (no Rhai leaf).
    pub native: bool,
    /// Events of the rule's types it was evaluated on.
    pub events: u64,
    /// Of those, events its condition matched and no exception excepted.
    pub matches: u64,
    /// Evaluations that failed (Rhai errors, operation limit).
    pub errors: u64,
    /// Time spent evaluating it.
    pub total: Duration,
    /// Events its own kernel-filter term lets through (all its events when it
    /// has no term: it forces pass-all for its types).
    pub kernel_passed: u64,
    /// Whether it has a kernel-filter term (else it forces pass-all).
    pub kernel_term: bool,
}

impl RuleProfile {
    /// Mean evaluation time per event, nanoseconds.
    pub fn ns_per_event(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.total.as_nanos() as f64 / self.events as f64
        }
    }
}

/// Accumulates [`RuleProfile`]s over batches of events.
pub struct Profiler {
    rules: Arc<RuleSet>,
    slot: Arc<EventSlot>,
    scope: rhai::Scope<'static>,
    /// Per rule (all rules, in order): its kernel term, if any.
    terms: Vec<Option<FilterSets>>,
    out: Vec<RuleProfile>,
}

impl Profiler {
    pub fn new(rules: Arc<RuleSet>) -> Profiler {
        let slot = Arc::new(EventSlot::default());
        let scope = make_scope(&rules.lists, &slot);
        let terms = rules.rules.iter().map(|r| constraint(&r.cond)).collect();
        let out = rules
            .rules
            .iter()
            .map(|r| RuleProfile {
                name: r.name.to_string(),
                native: r.cond.is_native() && r.exceptions.iter().all(|(_, n)| n.is_native()),
                events: 0,
                matches: 0,
                errors: 0,
                total: Duration::ZERO,
                kernel_passed: 0,
                kernel_term: false,
            })
            .collect();
        Profiler {
            rules,
            slot,
            scope,
            terms,
            out,
        }
    }

    /// Evaluate every enabled rule, one after the other, on the events of
    /// its types in `batch`.
    pub fn observe(&mut self, batch: &[Event]) {
        let rs = self.rules.clone();
        for (i, r) in rs.rules.iter().enumerate() {
            if !r.enabled {
                continue;
            }
            let p = &mut self.out[i];
            let term = &self.terms[i];
            p.kernel_term = term.is_some();
            let mut ctx = RhaiCtx {
                engine: &rs.engine,
                scope: &mut self.scope,
            };
            let (mut n, mut matches, mut errors) = (0u64, 0u64, 0u64);
            let start = Instant::now();
            for ev in batch.iter().filter(|e| r.events.contains(e.kind)) {
                n += 1;
                self.slot.set(Some(ev));
                match r.cond.eval(ev, &mut ctx) {
                    Ok(true) => {
                        let excepted = r
                            .exceptions
                            .iter()
                            .any(|(_, x)| matches!(x.eval(ev, &mut ctx), Ok(true)));
                        matches += u64::from(!excepted);
                    }
                    Ok(false) => {}
                    Err(_) => errors += 1,
                }
            }
            self.slot.set(None);
            p.total += start.elapsed();
            p.events += n;
            p.matches += matches;
            p.errors += errors;
            p.kernel_passed += match term {
                None => n,
                Some(t) => batch
                    .iter()
                    .filter(|e| r.events.contains(e.kind) && t.matches(e))
                    .count() as u64,
            };
        }
    }

    /// The enabled rules' profiles, slowest (most total time) first.
    pub fn finish(self) -> Vec<RuleProfile> {
        let enabled: Vec<bool> = self.rules.rules.iter().map(|r| r.enabled).collect();
        let mut v: Vec<RuleProfile> = self
            .out
            .into_iter()
            .zip(enabled)
            .filter_map(|(p, on)| on.then_some(p))
            .collect();
        v.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_events_matches_and_kernel_passes_per_rule() {
        let rs = Arc::new(
            RuleSet::from_sources(&[(
                "r.yaml".into(),
                "- rule: Shell\n  events: [exec]\n  condition: proc.name == \"sh\"\n  exceptions:\n    - name: ci\n      condition: proc.pname == \"ci\"\n  output: o\n  priority: info\n- rule: Any open\n  events: [open]\n  condition: file.path.ends_with(\".conf\")\n  output: o\n  priority: info\n- rule: Off\n  events: [exec]\n  condition: proc.name == \"x\"\n  output: o\n  priority: info\n  enabled: false\n".into(),
            )])
            .unwrap(),
        );
        let ev = |v: serde_json::Value| Event::from_flat_json(v.as_object().unwrap()).unwrap();
        let exec = |name: &str, parent: &str| {
            ev(serde_json::json!({"evt.type": "exec", "proc.name": name, "proc.pname": parent}))
        };
        let open = ev(serde_json::json!({"evt.type": "open", "file.path": "/etc/a.conf"}));
        let mut p = Profiler::new(rs);
        p.observe(&[exec("sh", "bash"), exec("sh", "ci"), exec("ls", "bash")]);
        p.observe(&[open]);
        let v = p.finish();
        assert_eq!(v.len(), 2, "disabled rules are left out");
        let shell = v.iter().find(|r| r.name == "Shell").unwrap();
        assert_eq!((shell.events, shell.matches, shell.errors), (3, 1, 0));
        // Its kernel term is proc.name in {sh}: two of the three execs pass.
        assert!(shell.kernel_term && shell.native);
        assert_eq!(shell.kernel_passed, 2);
        let open = v.iter().find(|r| r.name == "Any open").unwrap();
        assert_eq!((open.events, open.matches), (1, 1));
    }
}
