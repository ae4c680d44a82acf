//! The `spis` binary: everything is in the library, behind `spis::main`.

/// On musl (the static binaries that ship), mimalloc instead of musl's allocator, which takes
/// a lock per call: measured in BENCHMARKS.md.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    spis::main()
}
