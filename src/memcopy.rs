//! The `memcpy` of the static x86_64 binary (exported from `main.rs` for musl only).
//!
//! musl's x86_64 `memcpy` is `rep movsq` for every length, after a byte loop that aligns the
//! destination: a start-up cost of tens of cycles on each of the many short copies that
//! serializing a JSON page makes (one per string, number and key). Profiled on uncached list
//! pages, `memcpy` was 25 % of the static binary's CPU and the pages came out at 0.64-0.8x the
//! glibc build's rate; glibc picks vector moves by length. Here copies up to 128 bytes are a few
//! unaligned loads and stores that overlap in the middle, and longer ones `rep movsb`, which
//! x86_64 CPUs since 2013 (ERMS) run at full speed. No loops, so the compiler cannot turn this
//! function back into a call to `memcpy`. `memmove` comes with it: musl's jumps into its own
//! `memcpy`, and the two cannot both be linked.

/// Copies `n` bytes from `src` to `dst`, like `memcpy`.
///
/// # Safety
/// As `memcpy`: `src` valid for reading and `dst` for writing `n` bytes; the two do not overlap.
#[inline(always)]
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: every access below is within the first `n` bytes of `src` or `dst`, which the caller
    // vouches for; unaligned reads and writes are allowed for any address.
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                let (a, b, c) = (*src, *src.add(n / 2), *src.add(n - 1));
                *dst = a;
                *dst.add(n / 2) = b;
                *dst.add(n - 1) = c;
            }
            4..=7 => both_ends::<u32>(dst, src, n),
            8..=16 => both_ends::<u64>(dst, src, n),
            17..=32 => both_ends::<u128>(dst, src, n),
            33..=64 => {
                let head = [load(src), load(src.add(16))];
                let tail = [load(src.add(n - 32)), load(src.add(n - 16))];
                store(dst, head[0]);
                store(dst.add(16), head[1]);
                store(dst.add(n - 32), tail[0]);
                store(dst.add(n - 16), tail[1]);
            }
            65..=128 => {
                let head = [load(src), load(src.add(16)), load(src.add(32)), load(src.add(48))];
                let tail = [
                    load(src.add(n - 64)),
                    load(src.add(n - 48)),
                    load(src.add(n - 32)),
                    load(src.add(n - 16)),
                ];
                for (i, v) in head.into_iter().enumerate() {
                    store(dst.add(16 * i), v);
                }
                for (i, v) in tail.into_iter().enumerate() {
                    store(dst.add(n - 64 + 16 * i), v);
                }
            }
            _ => long(dst, src, n),
        }
    }
}

/// Copies `n` bytes from `src` to `dst`, which may overlap, like `memmove`.
///
/// # Safety
/// As `memmove`: `src` valid for reading and `dst` for writing `n` bytes.
#[inline(always)]
pub unsafe fn copy_overlapping(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's promise. Up to 128 bytes, `copy` loads every byte before it stores
    // one, so an overlap cannot change what it reads. Longer: forwards unless `dst` starts inside
    // the source, where a forward copy would overwrite bytes before reading them.
    unsafe {
        if n <= 128 {
            copy(dst, src, n);
        } else if (dst as usize).wrapping_sub(src as usize) >= n {
            long(dst, src, n);
        } else {
            long_backwards(dst, src, n);
        }
    }
}

/// The first and the last `size_of::<T>()` bytes, which together cover `n` (`T` <= n <= 2 T).
#[inline(always)]
unsafe fn both_ends<T: Copy>(dst: *mut u8, src: *const u8, n: usize) {
    let w = size_of::<T>();
    // SAFETY: w <= n, so both words are within the `n` bytes the caller vouches for.
    unsafe {
        let (a, b) = (src.cast::<T>().read_unaligned(), src.add(n - w).cast::<T>().read_unaligned());
        dst.cast::<T>().write_unaligned(a);
        dst.add(n - w).cast::<T>().write_unaligned(b);
    }
}

#[inline(always)]
unsafe fn load(p: *const u8) -> u128 {
    // SAFETY: the caller's 16 bytes.
    unsafe { p.cast::<u128>().read_unaligned() }
}

#[inline(always)]
unsafe fn store(p: *mut u8, v: u128) {
    // SAFETY: the caller's 16 bytes.
    unsafe { p.cast::<u128>().write_unaligned(v) }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn long(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: rep movsb copies rcx bytes from rsi to rdi, forwards (the ABI keeps DF clear).
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn long_backwards(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: with DF set, rep movsb copies from the last byte down; DF is cleared again, as the
    // ABI requires. n > 0 here.
    unsafe {
        core::arch::asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dst.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack)
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn long_backwards(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: as `copy_overlapping`.
    unsafe { core::ptr::copy(src, dst, n) }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn long(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: as `copy`. (Only x86_64 exports `copy` as `memcpy`; elsewhere this is for the tests.)
    unsafe { core::ptr::copy_nonoverlapping(src, dst, n) }
}

#[cfg(test)]
mod tests {
    use super::{copy, copy_overlapping};

    #[test]
    fn every_length_and_alignment_copies_exactly_its_bytes() {
        let src: Vec<u8> = (0..1200u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in (0..=300).chain([511, 512, 513, 1000]) {
            for src_off in 0..17 {
                for dst_off in 0..17 {
                    let mut dst = vec![0xAAu8; n + 64];
                    // SAFETY: both ranges are in bounds and in different allocations.
                    unsafe { copy(dst.as_mut_ptr().add(dst_off), src.as_ptr().add(src_off), n) };
                    assert_eq!(
                        &dst[dst_off..dst_off + n],
                        &src[src_off..src_off + n],
                        "n={n} {src_off}/{dst_off}"
                    );
                    assert!(dst[..dst_off].iter().all(|&b| b == 0xAA), "wrote before, n={n}");
                    assert!(dst[dst_off + n..].iter().all(|&b| b == 0xAA), "wrote past, n={n}");
                }
            }
        }
    }

    #[test]
    fn overlapping_copies_in_either_direction_match_a_reference() {
        let base: Vec<u8> = (0..2000u32).map(|i| (i * 13 + 1) as u8).collect();
        for n in (0..=300).chain([700, 1000]) {
            for shift in [-130isize, -65, -17, -16, -1, 0, 1, 3, 16, 17, 64, 129, 300] {
                let (src_at, dst_at) = (400usize, (400 + shift) as usize);
                let mut got = base.clone();
                let mut want = base.clone();
                want.copy_within(src_at..src_at + n, dst_at);
                // SAFETY: both ranges lie inside `got`.
                unsafe { copy_overlapping(got.as_mut_ptr().add(dst_at), got.as_ptr().add(src_at), n) };
                assert!(got == want, "n={n} shift={shift}");
            }
        }
    }
}
