//! Handing memory that was freed back to the system, and the allocator of the musl builds.

use std::alloc::{GlobalAlloc, Layout};

/// Returns the free memory the allocator holds to the kernel. Both allocators keep what was
/// freed for the next allocation, per thread: after the first index, the tree the index threads
/// built (see `Index::compact`); after a render, its smaller blocks (a progressive JPEG's
/// coefficients go to the decoder in rows of tens of kilobytes: 60 MiB of them stayed after
/// one wallpaper). On musl the large blocks are not among them (see [`Allocator`]), so a call
/// after a render takes 0.1-0.5 ms for a camera photo, 1.5-3 ms for a 16 MP progressive one.
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

/// The allocator of the musl builds, over mimalloc: blocks of [`DIRECT`] bytes or more are
/// mapped from the kernel and unmapped when freed, as glibc's malloc does above its mmap
/// threshold; the rest are `A`'s. mimalloc keeps freed memory in the heap of the thread that
/// allocated it, so a render's buffers (a camera photo's file, decode planes and picture: tens
/// of megabytes) stayed mapped after it, in each thread that had touched them. Collecting the
/// heaps after each large render gave that back, but one call took 2-11 ms, and the pages were
/// faulted in again by the next render. A mapped block costs its page faults only and goes back
/// to the kernel the moment it is freed, on whatever thread (BENCHMARKS.md, issue 17).
#[derive(Debug)]
pub struct Allocator<A>(pub A);

/// Blocks this large or larger are mapped directly (see [`Allocator`]).
const DIRECT: usize = 1 << 20;

const PAGE: usize = 4096;

fn direct(layout: Layout) -> bool {
    layout.size() >= DIRECT && layout.align() <= PAGE
}

fn mapped_len(size: usize) -> usize {
    size.next_multiple_of(PAGE)
}

fn map(len: usize) -> *mut u8 {
    // SAFETY: a new private anonymous mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            mapped_len(len),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED { std::ptr::null_mut() } else { p.cast() }
}

// SAFETY: a block is either A's (small, or aligned beyond a page) or a private anonymous mapping
// of at least its size, page aligned. Rust passes a block's layout unchanged to dealloc and
// realloc, so `direct` sends a block to the same side each time.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Allocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if direct(layout) {
            map(layout.size())
        } else {
            // SAFETY: the caller's promise, as for alloc.
            unsafe { self.0.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if direct(layout) {
            // An anonymous mapping reads as zeros.
            map(layout.size())
        } else {
            // SAFETY: the caller's promise, as for alloc_zeroed.
            unsafe { self.0.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if direct(layout) {
            // SAFETY: ptr is a mapping of this length, made by alloc or realloc.
            unsafe { libc::munmap(ptr.cast(), mapped_len(layout.size())) };
        } else {
            // SAFETY: the caller's promise, as for dealloc.
            unsafe { self.0.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's promise: the new size with the old alignment is a valid layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (direct(layout), direct(new)) {
            // SAFETY: the caller's promise, as for realloc.
            (false, false) => unsafe { self.0.realloc(ptr, layout, new_size) },
            (true, true) => {
                // SAFETY: ptr is a mapping of the old length; the kernel moves it if it must.
                let p = unsafe {
                    libc::mremap(
                        ptr.cast(),
                        mapped_len(layout.size()),
                        mapped_len(new_size),
                        libc::MREMAP_MAYMOVE,
                    )
                };
                if p == libc::MAP_FAILED { std::ptr::null_mut() } else { p.cast() }
            }
            _ => {
                // Across the line: a new block, the bytes both hold copied, the old one freed.
                // SAFETY: `new` is valid; both blocks hold at least the bytes copied.
                unsafe {
                    let p = self.alloc(new);
                    if !p.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    p
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills a block with a pattern that differs at every offset of a page.
    fn fill(p: *mut u8, len: usize) {
        for i in (0..len).step_by(997) {
            // SAFETY: i < len, inside the block.
            unsafe { p.add(i).write((i % 251) as u8) };
        }
    }

    fn holds_pattern(p: *const u8, len: usize) -> bool {
        // SAFETY: i < len, inside the block.
        (0..len).step_by(997).all(|i| unsafe { p.add(i).read() } == (i % 251) as u8)
    }

    #[test]
    fn blocks_keep_their_bytes_across_the_mapping_line_both_ways() {
        let a = Allocator(std::alloc::System);
        let small = Layout::from_size_align(DIRECT / 2, 8).unwrap();
        // SAFETY: valid layouts; each block is used within its size and freed with its layout.
        unsafe {
            let p = a.alloc(small);
            assert!(!p.is_null());
            fill(p, small.size());
            // Small -> mapped: copied, page aligned.
            let p = a.realloc(p, small, 3 * DIRECT);
            assert!(!p.is_null() && (p as usize).is_multiple_of(PAGE));
            assert!(holds_pattern(p, small.size()));
            fill(p, 3 * DIRECT);
            // Mapped -> larger mapped (mremap), then -> small again.
            let big = Layout::from_size_align(3 * DIRECT, 8).unwrap();
            let p = a.realloc(p, big, 7 * DIRECT + 5);
            assert!(holds_pattern(p, 3 * DIRECT));
            let bigger = Layout::from_size_align(7 * DIRECT + 5, 8).unwrap();
            let p = a.realloc(p, bigger, 1000);
            assert!(holds_pattern(p, 1000));
            a.dealloc(p, Layout::from_size_align(1000, 8).unwrap());
        }
    }

    #[test]
    fn a_mapped_block_reads_as_zeros_and_goes_back_when_freed() {
        let a = Allocator(std::alloc::System);
        let layout = Layout::from_size_align(64 * DIRECT, 16).unwrap();
        let resident = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().to_owned();
            line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
        };
        // SAFETY: a valid layout; the block is written within its size and freed with it.
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert!((0..layout.size()).step_by(4096).all(|i| p.add(i).read() == 0));
            std::ptr::write_bytes(p, 1, layout.size());
            let touched = resident();
            a.dealloc(p, layout);
            // 64 MiB written, then unmapped: the process holds at least most of it less.
            assert!(resident() + 48 * DIRECT as u64 <= touched, "not given back");
        }
    }
}
