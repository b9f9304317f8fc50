//! Comparing memory a word at a time, for the guests' `memcmp`.

/// `memcmp`'s answer for `n` bytes at `a` and `b`: 0 when equal, else the difference of the
/// first differing bytes (negative when `a`'s is lower).
///
/// # Safety
/// `a` and `b` must be readable for `n` bytes.
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`: inside both blocks; unaligned reads need no alignment.
        let (x, y) = unsafe {
            (
                (a.add(i) as *const u64).read_unaligned(),
                (b.add(i) as *const u64).read_unaligned(),
            )
        };
        if x != y {
            // The byte loop below finds which of these eight differs first.
            break;
        }
        i += 8;
    }
    while i < n {
        // SAFETY: `i < n`.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::compare;
    use alloc::vec::Vec;

    fn sign(v: i32) -> i32 {
        v.signum()
    }

    /// Every length to 40 and every position of a difference, against the slices' own order.
    #[test]
    fn agrees_with_slice_order_at_every_length_and_position() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            // SAFETY: both are `n` bytes long.
            assert_eq!(unsafe { compare(a.as_ptr(), a.clone().as_ptr(), n) }, 0);
            for at in 0..n {
                for delta in [1u8, 0x80, 0xff] {
                    let mut b = a.clone();
                    b[at] = b[at].wrapping_add(delta);
                    // SAFETY: both are `n` bytes long.
                    let got = unsafe { compare(a.as_ptr(), b.as_ptr(), n) };
                    let want = a.cmp(&b) as i32;
                    assert_eq!(sign(got), want, "n {n} at {at} delta {delta}");
                    assert_eq!(got, i32::from(a[at]) - i32::from(b[at]));
                }
            }
        }
    }

    /// Unaligned starts: the word reads may begin anywhere.
    #[test]
    fn unaligned_blocks_compare_alike() {
        let base: Vec<u8> = (0..64u8).collect();
        let mut other = base.clone();
        other[40] = 0;
        for off in 0..8 {
            let n = 64 - off;
            // SAFETY: both are at least `off + n` bytes long.
            let got = unsafe { compare(base.as_ptr().add(off), other.as_ptr().add(off), n) };
            assert_eq!(got, 40);
        }
    }
}
