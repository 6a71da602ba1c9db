//! A broken BPF object makes a live test fail, not skip, even outside CI
//! (issue 16): the verifier's rejection is a defect of the programs, not a
//! kernel without BPF. Compiles two tiny tracepoint programs with clang, one
//! the verifier accepts and one it rejects (a read far past the tracepoint's
//! context, past PERF_MAX_TRACE_SIZE), loads each through [`vigil_bpf::sensors::check_object`] and
//! checks the classification and the verdict of the shared helper.

use std::path::Path;
use std::process::Command;

use vigil_bpf::SensorError;
use vigil_testkit::{load_failure_verdict, sensor_load_failed, Verdict};

const PROLOGUE: &str = r#"
#define SEC(n) __attribute__((section(n), used))
char LICENSE[] SEC("license") = "GPL";
"#;

/// The object clang makes of `body` (a program on sys_enter_getpid).
fn compile(dir: &Path, clang: &Path, name: &str, body: &str) -> Vec<u8> {
    let src = dir.join(format!("{name}.bpf.c"));
    let obj = dir.join(format!("{name}.bpf.o"));
    let text = format!(
        "{PROLOGUE}\nSEC(\"tracepoint/syscalls/sys_enter_getpid\")\nint {name}(void *ctx) {{ {body} }}\n"
    );
    std::fs::write(&src, text).unwrap();
    let st = Command::new(clang)
        .args(["-O2", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("run clang");
    assert!(st.success(), "clang failed on {}", src.display());
    std::fs::read(&obj).unwrap()
}

#[test]
fn a_verifier_rejection_fails_a_live_test_outside_ci() {
    if vigil_testkit::live_capable().is_none() {
        return;
    }
    let Some(clang) = vigil_testkit::tool("clang", "clang") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let good = compile(dir.path(), &clang, "vigil_ok", "return 0;");
    if let Err(e) = vigil_bpf::sensors::check_object(&good) {
        // The control: a kernel that loads nothing gives no verdict on objects.
        sensor_load_failed(&e, e.kernel_lacks_capability());
        return;
    }
    let bad = compile(
        dir.path(),
        &clang,
        "vigil_bad",
        "return *(volatile int *)((char *)ctx + 100000);",
    );
    let e = vigil_bpf::sensors::check_object(&bad).expect_err("the verifier rejects it");
    eprintln!("rejected: {e}");
    assert!(matches!(e, SensorError::Load(_)), "{e:?}");
    assert!(!e.kernel_lacks_capability(), "{e}");
    assert_eq!(
        load_failure_verdict(e.kernel_lacks_capability(), false),
        Verdict::Fail,
        "a broken object must fail even without VIGIL_REQUIRE_LIVE"
    );
    let outcome = std::panic::catch_unwind(|| sensor_load_failed(&e, e.kernel_lacks_capability()));
    assert!(
        outcome.is_err(),
        "the shared helper skipped a broken object"
    );
}
