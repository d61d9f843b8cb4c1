use clap::Parser;
use std::process::ExitCode;
use tiny_diffusion::cli::{Cli, run};

// Training allocates and frees the same large activation buffers every step. glibc's malloc
// hands blocks that big back to the kernel and faults them in again, zeroed, on the next step
// (8% of a training step in `perf`, and batch 64 ran at 55% of batch 8's tokens/s). mimalloc
// with purging off keeps them: +8–12% at batch 8, +60–80% at batch 64 (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v3); -1 turns purging off.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `println!` into a closed pipe (`tiny-diffusion bench | head`)
    // panicked; with the default action the process ends quietly, as other command-line tools do.
    #[cfg(target_os = "linux")]
    // SAFETY: sets a signal's disposition back to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // SAFETY: sets a plain integer option; mimalloc reads it when it next considers purging.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    run(Cli::parse())
}
