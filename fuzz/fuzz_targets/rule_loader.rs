//! Rule loader: any text as a rule file -> RuleSet (YAML, items, lists,
//! macros, conditions, templates, limits). Must return Ok or Err, never
//! panic, hang or run out of memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = vigil_engine::RuleSet::from_sources(&[("fuzz.yaml".to_string(), text.to_string())]);
});
