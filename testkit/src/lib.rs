//! What every test that needs the machine shares (a dev-dependency of each
//! crate; never in a shipped binary): whether live tests are required, the
//! skip-or-fail decision, required tools, and the verdict on a sensor load
//! error.
//!
//! `VIGIL_REQUIRE_LIVE=1` (CI sets it) means live tests are required: a test
//! that cannot run here fails instead of skipping. Any other value, or none,
//! means not required. [`live_required`] is the only place that reads it.
//!
//! A sensor load error is a skip only when the kernel lacks the capability
//! (not root, no BTF, BPF denied) and live tests are not required; a broken
//! BPF object (the verifier rejecting a program, a missing map, a hook that
//! exists but does not attach) fails everywhere ([`sensor_load_failed`]).

pub mod layering;

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The variable that turns a skip into a failure.
pub const REQUIRE_LIVE_VAR: &str = "VIGIL_REQUIRE_LIVE";

/// True when live tests are required (`VIGIL_REQUIRE_LIVE=1`).
pub fn live_required() -> bool {
    std::env::var(REQUIRE_LIVE_VAR).as_deref() == Ok("1")
}

/// What a test that cannot run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Print why and return (passes).
    Skip,
    /// Panic: the test fails.
    Fail,
}

/// The test cannot run here because of `why`: fails under
/// `VIGIL_REQUIRE_LIVE=1`, else prints `SKIP: why` (the caller then returns).
#[track_caller]
pub fn cannot_run(why: impl Display) {
    if live_required() {
        panic!("test cannot run ({why}) but {REQUIRE_LIVE_VAR}=1");
    }
    eprintln!("SKIP: {why}");
}

/// Some(()) when this process can load BPF (root and kernel BTF); else
/// [`cannot_run`] and None.
#[track_caller]
pub fn live_capable() -> Option<()> {
    // SAFETY: geteuid has no preconditions.
    let why = if unsafe { libc::geteuid() } != 0 {
        "live test needs root"
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        "live test needs kernel BTF (/sys/kernel/btf/vmlinux)"
    } else {
        return Some(());
    };
    cannot_run(why);
    None
}

/// Some(()) when running as root; else [`cannot_run`] and None.
#[track_caller]
pub fn root() -> Option<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Some(());
    }
    cannot_run("needs root");
    None
}

/// The path of `tool` (a name looked up on PATH, or an absolute path); when
/// it is missing, [`cannot_run`] (naming the package that installs it) and
/// None. `scripts/install-deps.sh` installs every tool a test asks for.
#[track_caller]
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    if let Some(p) = find_tool(name) {
        return Some(p);
    }
    cannot_run(format_args!(
        "{name} is not installed (apt-get install {package}; scripts/install-deps.sh)"
    ));
    None
}

/// `name` on PATH (or `name` itself when it is a path to a file).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The verdict on a sensor load error: skip only when the kernel lacks the
/// capability and live tests are not required.
pub fn load_failure_verdict(kernel_lacks_capability: bool, required: bool) -> Verdict {
    if kernel_lacks_capability && !required {
        Verdict::Skip
    } else {
        Verdict::Fail
    }
}

/// A live test whose sensors did not load: skips (printing `err`) when the
/// kernel lacks the capability and live tests are not required; fails
/// otherwise, so a verifier regression fails on a developer's machine too.
#[track_caller]
pub fn sensor_load_failed(err: impl Display, kernel_lacks_capability: bool) {
    match load_failure_verdict(kernel_lacks_capability, live_required()) {
        Verdict::Skip => eprintln!("SKIP: this kernel cannot run the sensors: {err}"),
        Verdict::Fail if kernel_lacks_capability => {
            panic!("the sensors cannot load here ({err}) but {REQUIRE_LIVE_VAR}=1")
        }
        Verdict::Fail => panic!("the sensors failed to load on a capable kernel: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_kernel_without_the_capability_skips_and_only_outside_ci() {
        assert_eq!(load_failure_verdict(true, false), Verdict::Skip);
        assert_eq!(load_failure_verdict(true, true), Verdict::Fail);
        assert_eq!(load_failure_verdict(false, false), Verdict::Fail);
        assert_eq!(load_failure_verdict(false, true), Verdict::Fail);
    }

    #[test]
    fn tools_are_found_on_path_or_by_path() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("/bin/sh").is_some());
        assert!(find_tool("no-such-tool-vigil").is_none());
        assert!(find_tool("/nonexistent/sh").is_none());
    }
}
