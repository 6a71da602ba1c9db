//! Finding (and, when absent, mounting) tracefs, which per-syscall
//! tracepoints need: libbpf reads a tracepoint's id from
//! `<tracefs>/events/<category>/<name>/id`.

use std::path::Path;

/// Where libbpf looks for tracefs, in its order.
const PLACES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// True when tracefs is usable, mounting it on `/sys/kernel/tracing` if it
/// is not mounted yet (needs CAP_SYS_ADMIN; a hardened service without it
/// simply falls back to the raw syscall hooks).
///
/// `VIGIL_RAW_SYSCALL_HOOKS=1` answers false without looking, to exercise
/// the fallback.
pub fn ensure_mounted() -> bool {
    if std::env::var_os("VIGIL_RAW_SYSCALL_HOOKS").is_some_and(|v| v == "1") {
        return false;
    }
    if mounted() {
        return true;
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: plain mount(2) with valid NUL-terminated strings and no data.
    let rc = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "mounting tracefs on /sys/kernel/tracing failed");
        return false;
    }
    tracing::info!("mounted tracefs on /sys/kernel/tracing");
    mounted()
}

fn mounted() -> bool {
    root().is_some()
}

/// The first place of [`PLACES`] where tracefs is mounted.
fn root() -> Option<&'static str> {
    PLACES.iter().copied().find(|p| {
        Path::new(p)
            .join("events/syscalls/sys_enter_openat/id")
            .exists()
    })
}

/// Whether this kernel has the exit tracepoint of syscall `name`
/// (`syscalls:sys_exit_<name>`); `None` when tracefs is not mounted. A
/// kernel built without a syscall (e.g. `init_module` without module
/// support) has no tracepoint for it.
pub fn has_syscall_exit(name: &str) -> Option<bool> {
    let root = root()?;
    Some(
        Path::new(root)
            .join(format!("events/syscalls/sys_exit_{name}/id"))
            .exists(),
    )
}
