//! The `aiwarden` binary: everything lives in the library's `cli` module.

// Records are allocated on the decode thread and freed on the runtime's. glibc malloc spent a
// fifth of the agent's cycles on that traffic and kept freed memory in per-thread arenas;
// jemalloc costs less of both (README "Benchmarks").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its first allocation. Two arenas, not the default four per
/// core: the agent has three busy threads, and every arena keeps its own freed pages. Freed
/// pages go back to the system after 300 ms instead of 10 s: batches are freed at a steady
/// rate, and holding ten seconds of them was ~15 MiB of peak RSS at no measurable CPU gain.
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 46] = b"narenas:2,dirty_decay_ms:300,muzzy_decay_ms:0\0";

fn main() -> std::process::ExitCode {
    aiwarden::cli::main()
}
