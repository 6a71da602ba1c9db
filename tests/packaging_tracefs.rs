//! The unit's ExecStartPre mounts tracefs when the host has not (so the
//! hardened service takes the per-syscall tracepoints, not the raw sys_exit
//! fallback), and is a no-op when it is mounted. Run in a private mount
//! namespace (`unshare -m`) with tracefs unmounted there; needs root.

use std::process::Command;

fn exec_start_pre() -> String {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/vigil.service"),
    )
    .unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre=+"))
        .expect("the unit has a privileged ExecStartPre");
    // `/bin/sh -c '...'`: the shell script between the single quotes.
    let script = line
        .strip_prefix("/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .expect("ExecStartPre=+/bin/sh -c '...'");
    script.to_string()
}

#[test]
fn exec_start_pre_mounts_tracefs_when_absent_and_is_idempotent() {
    if vigil_testkit::root().is_none() || vigil_testkit::tool("unshare", "util-linux").is_none() {
        return;
    }
    let script = exec_start_pre();
    let check = format!(
        "mount --make-rprivate / && \
         while mountpoint -q /sys/kernel/tracing; do umount -l /sys/kernel/tracing; done && \
         ! test -e /sys/kernel/tracing/events/syscalls && \
         {{ {script}; }} && {{ {script}; }} && \
         test -e /sys/kernel/tracing/events/syscalls/sys_exit_openat/id && \
         findmnt -n -o FSTYPE,OPTIONS /sys/kernel/tracing"
    );
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", &check])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.starts_with("tracefs") && out.contains("nosuid") && out.contains("noexec"),
        "{out}"
    );
}
