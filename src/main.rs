/// mimalloc: planning a large fleet allocates and frees millions of small objects on
/// several threads; glibc's per-thread arenas held on to far more memory (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    flagfleet::cli::main()
}
