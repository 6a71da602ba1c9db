//! Config loader: any text as vigil's config file. `vigil::config::Config::parse`
//! (the `vigil` library) reads the whole file,
//! including the sinks' `outputs:` section (`vigil_sinks::OutputsConfig`),
//! which is also parsed on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = vigil::config::Config::parse(text, std::path::Path::new("/etc/vigil/vigil.yaml"));
    let _ = serde_yaml_ng::from_str::<vigil_sinks::OutputsConfig>(text);
});
