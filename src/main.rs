//! The `spis` binary: everything is in the library, behind `spis::main`.

/// On musl (the static binaries that ship), mimalloc instead of musl's allocator, which takes
/// a lock per call, with large blocks mapped directly: measured in BENCHMARKS.md.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: spis::memory::Allocator<mimalloc::MiMalloc> = spis::memory::Allocator(mimalloc::MiMalloc);

/// On x86_64 musl, a `memcpy` for short copies instead of musl's `rep movsq` (see `memcopy`).
///
/// # Safety
/// As `memcpy`.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's promise, as for memcpy.
    unsafe { spis::memcopy::copy(dst, src, n) };
    dst
}

/// musl's `memmove` jumps into its own `memcpy`, so it is replaced with it.
///
/// # Safety
/// As `memmove`.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's promise, as for memmove.
    unsafe { spis::memcopy::copy_overlapping(dst, src, n) };
    dst
}

fn main() -> std::process::ExitCode {
    spis::main()
}
