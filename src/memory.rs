//! Handing memory that was freed back to the system.

/// Returns the free memory the allocator holds to the kernel. Both allocators keep what was
/// freed for the next allocation, per thread: after a render of a camera photo that is its
/// tens of megabytes (a 16 MP photo at half scale, its resize), and after the first index the
/// tree the index threads built. Between renders of camera photos the process held twice
/// their working set (measured with scripts/bench/memory.sh, BENCHMARKS.md). About 0.1 ms.
pub(crate) fn release_freed() {
    // SAFETY: neither call has preconditions; both only return free memory to the kernel.
    // `mi_collect(true)` also takes over the heaps of threads that have ended.
    #[cfg(target_env = "musl")]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}
