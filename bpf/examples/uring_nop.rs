//! io_uring NOP loop for the benchmark of what vigil's io_uring hook costs
//! io_uring users: every completion runs it. Prints ns per submitted and
//! completed NOP (batches of 32), best of `REPS` runs.
//!
//!     cargo run --release -p vigil-bpf --example uring_nop -- [N] [REPS]

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let reps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut ring = match io_uring::IoUring::new(64) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("uring_nop: io_uring unavailable: {e}");
            std::process::exit(1);
        }
    };
    let nop = io_uring::opcode::Nop::new().build();
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = std::time::Instant::now();
        let mut done = 0;
        while done < n {
            for _ in 0..32 {
                // SAFETY: a NOP references no memory.
                if unsafe { ring.submission().push(&nop) }.is_err() {
                    break;
                }
            }
            if let Err(e) = ring.submit_and_wait(32) {
                eprintln!("uring_nop: submit: {e}");
                std::process::exit(1);
            }
            done += ring.completion().count();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / done as f64);
    }
    println!("{best:.1}");
}
