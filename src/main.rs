//! The `aiwarden` binary: everything lives in the library's `cli` module.

// Records are allocated on the decode thread and freed on the runtime's. glibc malloc spent a
// fifth of the agent's cycles on that traffic and kept freed memory in per-thread arenas;
// jemalloc costs less of both (README "Benchmarks").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its first allocation. Two arenas, not the default four per
/// core: the agent has three busy threads, and every arena keeps its own freed pages.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 10] = b"narenas:2\0";

fn main() -> std::process::ExitCode {
    aiwarden::cli::main()
}
