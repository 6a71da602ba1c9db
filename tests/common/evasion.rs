//! Ways around a sensor, for the live tests that check vigil sees them
//! anyway: around syscall tracepoints, 32-bit `int 0x80` syscalls (ia32
//! `open`, `openat` and the `socketcall` multiplexer) issued from this
//! 64-bit process and io_uring operations; around path rules, names of a
//! file that are not its path (padding past the sensor's copy, a symlink, a
//! hard link, `/proc/self/root`, a file handle). Each runs on the calling
//! thread and returns the kernel's results. Shared by
//! `bpf/tests/live_sensors.rs` (through `#[path]`) and the `vigil` binary's
//! live tests, as is [`child_result`], which runs such a primitive in a child
//! process (the sensors ignore their own process and the test's is busy).
#![allow(dead_code)]

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

/// Runs this test binary again as a child process, only the `#[ignore]`d
/// entry point `test` (a `*_child` function: not a test, a program the
/// parent test runs), with `envs`; returns what the child printed after
/// `TAG ` (the entry points print their results that way).
pub fn child_result(test: &str, envs: &[(&str, &str)], tag: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let marker = format!("{tag} ");
    stdout
        .lines()
        .find_map(|l| {
            l.split_once(marker.as_str())
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| {
            panic!(
                "{test} printed no {tag} result: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// open(2) read-only and close: the fd or -errno.
pub fn open_read(path: &str) -> i64 {
    let c = CString::new(path).unwrap();
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    close(fd.into());
    fd.into()
}

/// `dir/` + `./` x `pads` + `file`: a path longer than the sensor's copy
/// that names `dir/file` (Linux takes paths up to 4095 bytes).
pub fn padded_path(dir: &str, file: &str, pads: usize) -> String {
    format!("{dir}/{}{file}", "./".repeat(pads))
}

/// A directory for a hard link to `target`: one of a few writable places on
/// the same file system (hard links cannot cross file systems); None if
/// there is none.
pub fn same_fs_dir(target: &str) -> Option<PathBuf> {
    let dev = std::fs::metadata(target).ok()?.dev();
    ["/tmp", "/var/tmp", "/root", "/var/lib"]
        .iter()
        .map(PathBuf::from)
        .find(|d| std::fs::metadata(d).is_ok_and(|m| m.dev() == dev && m.is_dir()))
}

/// name_to_handle_at(`path`) then open_by_handle_at with a mount fd of
/// `mount_dir` (needs CAP_DAC_READ_SEARCH): the fd (closed again) or -errno.
pub fn handle_open(mount_dir: &str, path: &str) -> i64 {
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        data: [u8; 128],
    }
    let mut h = Handle {
        bytes: 128,
        kind: 0,
        data: [0; 128],
    };
    let mut mount_id: libc::c_int = 0;
    let c = CString::new(path).unwrap();
    // SAFETY: a NUL-terminated path and a handle buffer of `bytes` bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c.as_ptr(),
            &mut h as *mut Handle,
            &mut mount_id as *mut libc::c_int,
            0,
        )
    };
    if r < 0 {
        return -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    let m = CString::new(mount_dir).unwrap();
    // SAFETY: a directory fd for the handle's mount; closed below.
    let mfd = unsafe { libc::open(m.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    // SAFETY: the handle name_to_handle_at filled.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mfd,
            &mut h as *mut Handle,
            libc::O_RDONLY,
        )
    };
    let res = if fd < 0 {
        -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        fd
    };
    close(res);
    close(mfd.into());
    res
}

/// Renames this process (the thread group leader's comm, which records of
/// io-wq work carry) and the calling thread to `name`.
pub fn name_process(name: &str) {
    let cname = CString::new(name).unwrap();
    // SAFETY: PR_SET_NAME with a NUL-terminated string names this thread.
    unsafe { libc::prctl(libc::PR_SET_NAME, cname.as_ptr()) };
    let _ = std::fs::write("/proc/self/comm", cname.as_bytes());
}

/// A page below 4 GiB (32-bit syscalls take 32-bit pointers), or a panic.
fn low_page() -> *mut u8 {
    // SAFETY: an anonymous private mapping; checked for failure below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED, "mmap MAP_32BIT");
    page as *mut u8
}

fn free_page(page: *mut u8) {
    // SAFETY: unmapping a page `low_page` mapped.
    unsafe { libc::munmap(page as *mut libc::c_void, 4096) };
}

/// `int 0x80` with eax = nr and ebx, ecx, edx; the result sign-extended.
fn int80(nr: u64, b: u64, c: u64, d: u64) -> i64 {
    let ret: u64;
    // SAFETY: a compat syscall with arguments in ebx/ecx/edx; rbx is saved
    // and restored around it (LLVM reserves it).
    unsafe {
        std::arch::asm!(
            "xchg rbx, {b}",
            "int 0x80",
            "xchg rbx, {b}",
            b = inout(reg) b => _,
            inout("rax") nr => ret,
            in("rcx") c,
            in("rdx") d,
        );
    }
    ret as u32 as i32 as i64
}

fn close(fd: i64) {
    if fd >= 0 {
        // SAFETY: closing an fd the caller opened.
        unsafe { libc::close(fd as i32) };
    }
}

/// Opens `path` read-only with ia32 `open` (5), then ia32 `openat` (295)
/// with AT_FDCWD; returns both results (fds or -errno) after closing them.
pub fn int80_opens(path: &str) -> (i64, i64) {
    let page = low_page();
    let c = CString::new(path).unwrap();
    let bytes = c.as_bytes_with_nul();
    assert!(bytes.len() <= 4096);
    // SAFETY: the page is 4096 writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), page, bytes.len()) };
    let p = page as u64;
    let fd_open = int80(5, p, 0, 0);
    let fd_openat = int80(295, (-100i32) as u32 as u64, p, 0);
    close(fd_open);
    close(fd_openat);
    free_page(page);
    (fd_open, fd_openat)
}

/// ia32 `execve` (11) of `path` with no argv and no environment; returns
/// -errno. Only for a path that cannot be executed: a successful exec would
/// replace the calling process.
pub fn int80_execve(path: &str) -> i64 {
    let page = low_page();
    let c = CString::new(path).unwrap();
    let bytes = c.as_bytes_with_nul();
    assert!(bytes.len() <= 4096);
    // SAFETY: the page is 4096 writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), page, bytes.len()) };
    let r = int80(11, page as u64, 0, 0);
    free_page(page);
    r
}

/// ia32 `unshare` (310) with no flags, then ia32 `symlink` (83) of `link`
/// pointing at `target`; returns both results (symlink's first, 0 or -errno).
pub fn int80_symlink(target: &str, link: &str) -> (i64, i64) {
    let page = low_page();
    let (t, l) = (CString::new(target).unwrap(), CString::new(link).unwrap());
    let (tb, lb) = (t.as_bytes_with_nul(), l.as_bytes_with_nul());
    assert!(tb.len() + lb.len() <= 4096);
    // SAFETY: the page is 4096 writable bytes; both strings fit (checked).
    unsafe {
        std::ptr::copy_nonoverlapping(tb.as_ptr(), page, tb.len());
        std::ptr::copy_nonoverlapping(lb.as_ptr(), page.add(tb.len()), lb.len());
    }
    let p = page as u64;
    let u = int80(310, 0, 0, 0);
    let r = int80(83, p, p + tb.len() as u64, 0);
    free_page(page);
    (r, u)
}

/// ia32 `dup2` (63) of `old` onto `new`; the result (fd or -errno).
pub fn int80_dup2(old: i32, new: i32) -> i64 {
    int80(63, old as u32 as u64, new as u32 as u64, 0)
}

/// socketcall(SYS_SOCKET, [AF_INET, SOCK_STREAM, 0]) then
/// socketcall(SYS_CONNECT, [fd, &sockaddr_in{127.0.0.1:port}, 16]); returns
/// (fd, connect result) after closing the socket.
pub fn int80_connect(port: u16) -> (i64, i64) {
    const SOCKETCALL: u64 = 102;
    let page = low_page();
    let words = |at: usize, w: [u32; 3]| {
        for (i, v) in w.iter().enumerate() {
            // SAFETY: inside the 4096-byte page.
            unsafe { (page.add(at + 4 * i) as *mut u32).write_unaligned(*v) };
        }
        page as u64 + at as u64
    };
    let fd = int80(SOCKETCALL, 1, words(0, [2, 1, 0]), 0);
    // struct sockaddr_in at offset 64: family, port (network order), address
    let mut sin = [0u8; 16];
    sin[..2].copy_from_slice(&2u16.to_ne_bytes());
    sin[2..4].copy_from_slice(&port.to_be_bytes());
    sin[4..8].copy_from_slice(&[127, 0, 0, 1]);
    // SAFETY: inside the page.
    unsafe { std::ptr::copy_nonoverlapping(sin.as_ptr(), page.add(64), 16) };
    let args = words(16, [fd as u32, page as u32 + 64, 16]);
    let ret = int80(SOCKETCALL, 3, args, 0);
    close(fd);
    free_page(page);
    (fd, ret)
}

/// Submits `op` on a fresh ring and waits for its completion; None when
/// io_uring is unavailable (e.g. kernel.io_uring_disabled).
fn uring_one(op: io_uring::squeue::Entry) -> Option<i32> {
    let mut ring = io_uring::IoUring::new(8).ok()?;
    // SAFETY: the callers keep the memory `op` points to alive until this
    // returns, and it returns only after the completion.
    unsafe { ring.submission().push(&op).ok()? };
    ring.submit_and_wait(1).ok()?;
    let res = ring.completion().next()?.result();
    Some(res)
}

/// Opens `path` read-only with IORING_OP_OPENAT; the result (fd, closed
/// again, or -errno), None without io_uring.
pub fn uring_open(path: &str) -> Option<i32> {
    let c = CString::new(path).unwrap();
    let op = io_uring::opcode::OpenAt::new(io_uring::types::Fd(libc::AT_FDCWD), c.as_ptr())
        .flags(libc::O_RDONLY)
        .build();
    let res = uring_one(op)?;
    close(res.into());
    Some(res)
}

/// Connects a TCP socket to 127.0.0.1:`port` with IORING_OP_CONNECT; the
/// result (0 or -errno), None without io_uring.
pub fn uring_connect(port: u16) -> Option<i32> {
    // SAFETY: a plain TCP socket; checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0, "socket");
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    let op = io_uring::opcode::Connect::new(
        io_uring::types::Fd(fd),
        &sin as *const libc::sockaddr_in as *const libc::sockaddr,
        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
    )
    .build();
    let res = uring_one(op);
    close(fd.into());
    res
}

/// In directory `dir`, through io_uring only: MKDIRAT `ud`, SYMLINKAT `us`
/// -> /etc/shadow, LINKAT `f` -> `ul` (`f` must exist), RENAMEAT `ul` ->
/// `ur`, UNLINKAT `ur`, UNLINKAT(AT_REMOVEDIR) `ud`, then SOCKET(AF_PACKET,
/// SOCK_RAW); the results in that order, None without io_uring.
pub fn uring_path_ops(dir: &str) -> Option<Vec<i32>> {
    use io_uring::{opcode, types::Fd};
    let c = |name: &str| CString::new(format!("{dir}/{name}")).unwrap();
    let (ud, us, f, ul, ur) = (c("ud"), c("us"), c("f"), c("ul"), c("ur"));
    let shadow = CString::new("/etc/shadow").unwrap();
    let cwd = Fd(libc::AT_FDCWD);
    let ops = [
        opcode::MkDirAt::new(cwd, ud.as_ptr()).mode(0o755).build(),
        opcode::SymlinkAt::new(cwd, shadow.as_ptr(), us.as_ptr()).build(),
        opcode::LinkAt::new(cwd, f.as_ptr(), cwd, ul.as_ptr()).build(),
        opcode::RenameAt::new(cwd, ul.as_ptr(), cwd, ur.as_ptr()).build(),
        opcode::UnlinkAt::new(cwd, ur.as_ptr()).build(),
        opcode::UnlinkAt::new(cwd, ud.as_ptr())
            .flags(libc::AT_REMOVEDIR)
            .build(),
        opcode::Socket::new(libc::AF_PACKET, libc::SOCK_RAW, 0).build(),
    ];
    let mut out = Vec::new();
    for op in ops {
        let res = uring_one(op)?;
        if res >= 0 && out.len() == 6 {
            close(res.into());
        }
        out.push(res);
    }
    Some(out)
}
