//! The offline command-line tests' way to run the built binary: `vigil ARGS`
//! with warnings-only logging and no stdin, and the engine fixtures.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A file under tests/fixtures/engine.
pub fn fixture(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/engine")
        .join(p)
}

/// Run `vigil ARGS` to completion.
pub fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env("VIGIL_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run vigil")
}

/// Output bytes as text.
pub fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}
