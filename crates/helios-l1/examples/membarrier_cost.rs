//! What one `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` costs here, the
//! heavy fence of a grace period (`src/raw/sections.rs`), alone and while
//! another thread of the process spins on the other core (then the kernel
//! interrupts that core). BENCHMARKS.md, "Reclamation":
//!
//! ```sh
//! cargo run --release -p helios-l1 --example membarrier_cost
//! ```

#[cfg(target_os = "linux")]
fn main() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    const CMD_QUERY: libc::c_long = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;
    const CALLS: u32 = 20_000;

    fn call(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: membarrier takes integers and touches no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }
    fn per_call() -> f64 {
        let start = Instant::now();
        for _ in 0..CALLS {
            call(CMD_PRIVATE_EXPEDITED);
        }
        start.elapsed().as_nanos() as f64 / f64::from(CALLS)
    }

    let supported = call(CMD_QUERY);
    if supported < 0
        || supported & CMD_PRIVATE_EXPEDITED == 0
        || call(CMD_REGISTER_PRIVATE_EXPEDITED) != 0
    {
        println!("membarrier(PRIVATE_EXPEDITED) is not available here");
        return;
    }
    println!(
        "alone:                        {:>8.0} ns per call",
        per_call()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(10));
    println!(
        "another thread running:       {:>8.0} ns per call",
        per_call()
    );
    stop.store(true, Ordering::Relaxed);
    spinner.join().ok();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("membarrier is Linux-only; elsewhere the heavy fence is an ordinary fence");
}
