//! Replay reader: one JSONL line as `vigil replay` (src/commands/replay.rs,
//! in the binary crate) reads it: serde_json to a value, then the engine's
//! `Event::from_flat_json`, the library function that command calls; an
//! event that parses is also rendered back (`to_flat_json`) and evaluated.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use vigil_engine::{Evaluator, Event, RuleSet};

fn rules() -> &'static Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules");
        Arc::new(RuleSet::load(&[dir]).expect("shipped rules load"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return;
    };
    let Some(obj) = v.as_object() else { return };
    let Ok(ev) = Event::from_flat_json(obj) else {
        return;
    };
    let _ = ev.to_flat_json();
    let mut e = Evaluator::new(rules().clone(), "fuzz");
    let mut out = Vec::new();
    e.evaluate(&ev, &mut out);
    for a in &out {
        let _ = a.to_json_line();
    }
});
