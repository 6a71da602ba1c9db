//! Clock conversion: the kernel stamps records with CLOCK_BOOTTIME; events
//! carry nanoseconds since the epoch.

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Nanoseconds to add to a CLOCK_BOOTTIME stamp to get epoch time.
pub fn boot_to_epoch_offset() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME)
}

/// Current CLOCK_BOOTTIME in nanoseconds.
pub fn boottime_ns() -> i64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

/// Clock ticks per second (`_SC_CLK_TCK`), for /proc/PID/stat start times.
pub fn clock_ticks() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_plausible() {
        let off = boot_to_epoch_offset();
        // epoch now is after 2020 and boot time is positive: offset < now
        let now = clock_ns(libc::CLOCK_REALTIME);
        assert!(off > 1_577_836_800_000_000_000 - boottime_ns() - 1);
        assert!(off < now);
        assert!(clock_ticks() > 0);
    }
}
