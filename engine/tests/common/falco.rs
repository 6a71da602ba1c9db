//! Where Falco's upstream rule files are: outside the project, beside the
//! checkout (never copied in). Shared by the engine's and the command-line
//! tests (`#[path]`-included).

use std::path::PathBuf;

/// `$VIGIL_FALCO_RULES/NAME`, else `<repo>/../shared/falco/NAME` (a
/// checkout at /work/X; `<repo>/../../shared` for a worktree at /work/wt/X),
/// or None (skip) when absent outside CI.
pub fn falco_file(name: &str) -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The engine crate's tests run from engine/, the binary's from the repo.
    let repo = if manifest.ends_with("engine") {
        manifest.join("..")
    } else {
        manifest
    };
    let dirs = std::env::var_os("VIGIL_FALCO_RULES")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            repo.join("../shared/falco"),
            repo.join("../../shared/falco"),
        ]);
    let p = repo.join("../shared/falco").join(name);
    if let Some(found) = dirs.map(|d| d.join(name)).find(|p| p.exists()) {
        return Some(found);
    }
    // CI=true without VIGIL_REQUIRE_LIVE (a plain `make test` in CI) requires it too.
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing (required under CI)",
        p.display()
    );
    vigil_testkit::cannot_run(format_args!("{} not found", p.display()));
    None
}
