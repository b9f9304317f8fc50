//! A small, fast allocator for single-threaded WebAssembly instances.
//!
//! Blocks come in power-of-two size classes from 16 bytes to 2 GiB. A freed block goes on its
//! class's free list and is handed out again for the next request of that class, so the common
//! case (the short strings and vectors of one interface call) is a few instructions either way.
//! New blocks are carved from the top of the heap, which grows with `memory.grow`; the block at
//! the top grows in place (unless a freed block of the class it grows into is waiting), so a
//! vector that doubles while it is being filled (an HTTP body) is not copied, and a block freed
//! at the top goes back to it. Blocks are never split or merged: a class holds no more blocks
//! than it had in use at once, each at most twice what it was asked for, and a wasm memory
//! cannot shrink anyway. It is about 1 KB of code, against 12 KB for dlmalloc.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

const PAGE: usize = 64 * 1024;
const MIN_SHIFT: u32 = 4;
/// Classes 16 B (2^4) .. 2 GiB (2^31).
const CLASSES: usize = 28;

/// Where new pages come from.
pub trait Memory {
    /// Add `pages` 64 KiB pages; the address of the first new byte, or `None` if the memory
    /// cannot grow.
    fn grow(&self, pages: usize) -> Option<usize>;
}

/// The instance's linear memory.
#[cfg(target_arch = "wasm32")]
pub struct WasmMemory;

#[cfg(target_arch = "wasm32")]
impl Memory for WasmMemory {
    fn grow(&self, pages: usize) -> Option<usize> {
        match core::arch::wasm32::memory_grow(0, pages) {
            usize::MAX => None,
            old => Some(old * PAGE),
        }
    }
}

struct State {
    /// Head of each class's free list (0: empty); a free block holds the next one's address.
    free: [usize; CLASSES],
    /// The next byte to carve, and the end of the memory obtained so far.
    top: usize,
    end: usize,
}

pub struct Heap<M> {
    state: UnsafeCell<State>,
    memory: M,
}

// SAFETY: a component instance has one thread; `Heap` is never shared between threads.
unsafe impl<M> Sync for Heap<M> {}

/// The class of a block of `size` bytes (`size` >= 1), if any.
#[inline]
fn class(size: usize) -> Option<usize> {
    let c = if size <= 1 << MIN_SHIFT {
        0
    } else {
        (usize::BITS - (size - 1).leading_zeros() - MIN_SHIFT) as usize
    };
    (c < CLASSES).then_some(c)
}

#[inline]
fn block(c: usize) -> usize {
    1 << (c as u32 + MIN_SHIFT)
}

/// The bytes a layout occupies: at least its alignment, so a large alignment gets a large
/// enough class.
#[inline]
fn span(size: usize, align: usize) -> usize {
    size.max(align)
}

impl<M: Memory> Heap<M> {
    pub const fn new(memory: M) -> Self {
        Heap {
            state: UnsafeCell::new(State {
                free: [0; CLASSES],
                top: 0,
                end: 0,
            }),
            memory,
        }
    }

    /// Make `[top, upto)` available, growing the memory. False if it cannot grow, or if the
    /// new pages do not follow the old end (then the heap moves on to the new pages).
    fn reserve(&self, st: &mut State, upto: usize) -> bool {
        if upto <= st.end {
            return true;
        }
        let pages = (upto - st.end).div_ceil(PAGE);
        let Some(base) = self.memory.grow(pages) else {
            return false;
        };
        let contiguous = base == st.end;
        if !contiguous {
            st.top = base;
        }
        st.end = base + pages * PAGE;
        contiguous
    }

    /// A new block of `bytes` aligned to `align` from the top of the heap (the slow path: out
    /// of line, so the free-list paths inline small).
    #[inline(never)]
    fn carve(&self, st: &mut State, bytes: usize, align: usize) -> *mut u8 {
        let align = align.max(1 << MIN_SHIFT);
        // Three rounds at most: a move to pages that do not follow the old end, then a
        // growth in place there.
        for _ in 0..3 {
            let start = st.top.next_multiple_of(align);
            let Some(upto) = start.checked_add(bytes) else {
                break;
            };
            if upto <= st.end {
                st.top = upto;
                return start as *mut u8;
            }
            let end = st.end;
            if !self.reserve(st, upto) && st.end == end {
                break;
            }
        }
        core::ptr::null_mut()
    }
}

// SAFETY: every block handed out is `block(class)` bytes, aligned as asked, inside memory
// obtained from `Memory::grow`, and owned by nobody else until it is freed.
unsafe impl<M: Memory> GlobalAlloc for Heap<M> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(span(layout.size(), layout.align())) else {
            return core::ptr::null_mut();
        };
        // SAFETY: single-threaded, and no reference to the state outlives this call.
        let st = unsafe { &mut *self.state.get() };
        let head = st.free[c];
        // A listed block is 16-aligned; a larger alignment takes a fresh block.
        if head != 0 && layout.align() <= 1 << MIN_SHIFT {
            // SAFETY: a free block's first word is the address of the next free block.
            st.free[c] = unsafe { (head as *const usize).read() };
            return head as *mut u8;
        }
        self.carve(st, block(c), layout.align())
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(c) = class(span(layout.size(), layout.align())) else {
            return;
        };
        // SAFETY: as in `alloc`; the block is ours again and at least a word long.
        let st = unsafe { &mut *self.state.get() };
        // The block at the top goes back to the top: whatever comes next is carved there.
        if ptr as usize + block(c) == st.top {
            st.top = ptr as usize;
            return;
        }
        unsafe { (ptr as *mut usize).write(st.free[c]) };
        st.free[c] = ptr as usize;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        let (Some(old), Some(new)) = (
            class(span(layout.size(), align)),
            class(span(new_size, align)),
        ) else {
            return core::ptr::null_mut();
        };
        if new == old {
            return ptr;
        }
        // SAFETY: as in `alloc`.
        let st = unsafe { &mut *self.state.get() };
        let at = ptr as usize;
        // The top block grows in place unless a freed block of the new class is waiting:
        // that one is taken (a copy), or each growth would leave it behind for good.
        if new > old && at + block(old) == st.top && st.free[new] == 0 {
            // The top block grows in place.
            let upto = at + block(new);
            if self.reserve(st, upto) {
                st.top = upto;
                return ptr;
            }
        }
        // SAFETY: `new_size` is non-zero and fits a class, so the layout is valid.
        let fresh = unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, align)) };
        if !fresh.is_null() {
            // SAFETY: both blocks hold at least the bytes copied, and they are distinct.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use core::cell::Cell;
    use std::vec::Vec;

    /// Pages from a buffer of our own; can be told to leave a gap (as if someone else had
    /// grown the memory) or to refuse.
    struct Buffer {
        base: usize,
        len: usize,
        used: Cell<usize>,
        gap_next: Cell<bool>,
        _keep: Vec<u128>,
    }

    impl Buffer {
        fn new(pages: usize) -> Self {
            let keep = std::vec![0u128; pages * PAGE / 16 + PAGE / 16];
            let base = (keep.as_ptr() as usize).next_multiple_of(PAGE);
            Buffer {
                base,
                len: pages * PAGE,
                used: Cell::new(0),
                gap_next: Cell::new(false),
                _keep: keep,
            }
        }
    }

    impl Memory for &Buffer {
        fn grow(&self, pages: usize) -> Option<usize> {
            if self.gap_next.replace(false) {
                self.used.set(self.used.get() + PAGE);
            }
            let at = self.used.get();
            if at + pages * PAGE > self.len {
                return None;
            }
            self.used.set(at + pages * PAGE);
            Some(self.base + at)
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes() {
        assert_eq!(class(1), Some(0));
        assert_eq!(class(16), Some(0));
        assert_eq!(class(17), Some(1));
        assert_eq!(class(32), Some(1));
        assert_eq!(class(33), Some(2));
        assert_eq!(class(1 << 31), Some(27));
        assert_eq!(class((1 << 31) + 1), None);
    }

    #[test]
    fn reuses_freed_blocks_and_grows_the_top_block_in_place() {
        let buf = Buffer::new(64);
        let heap = Heap::new(&buf);
        unsafe {
            let a = heap.alloc(layout(24, 8));
            let b = heap.alloc(layout(24, 8));
            assert_ne!(a, b);
            heap.dealloc(a, layout(24, 8));
            assert_eq!(
                heap.alloc(layout(30, 4)),
                a,
                "same class, freed block first"
            );
            // `b` is the top block: it grows without moving, its bytes kept.
            b.write_bytes(7, 24);
            let grown = heap.realloc(b, layout(24, 8), 300_000);
            assert_eq!(grown, b);
            assert_eq!(*grown.add(23), 7);
            // A block below the top moves, and its bytes go with it.
            a.write_bytes(9, 30);
            let moved = heap.realloc(a, layout(30, 4), 100);
            assert_ne!(moved, a);
            assert_eq!(core::slice::from_raw_parts(moved, 30), &[9u8; 30][..]);
        }
    }

    #[test]
    fn large_alignment_and_exhaustion() {
        let buf = Buffer::new(4);
        let heap = Heap::new(&buf);
        unsafe {
            let p = heap.alloc(layout(10, 4096));
            assert_eq!(p as usize % 4096, 0);
            heap.dealloc(p, layout(10, 4096));
            let q = heap.alloc(layout(100, 4096));
            assert_eq!(q as usize % 4096, 0);
            assert!(
                heap.alloc(layout(5 * PAGE, 16)).is_null(),
                "more than the memory"
            );
            assert!(!heap.alloc(layout(16, 16)).is_null(), "still usable after");
        }
    }

    /// A vector filled again and again (doubling from 16 bytes to 1 MiB at the top, a small
    /// block carved above it before it is freed, or not) takes no more memory after the first
    /// round: the freed blocks are used again, the top block given back.
    #[test]
    fn a_vector_filled_again_and_again_reuses_its_memory() {
        let buf = Buffer::new(256);
        let heap = Heap::new(&buf);
        let mut after_first = 0;
        for round in 0..40 {
            unsafe {
                let mut size = 16;
                let mut v = heap.alloc(layout(size, 1));
                v.write_bytes(round as u8, size);
                while size < 1 << 20 {
                    v = heap.realloc(v, layout(size, 1), size * 2);
                    assert!(!v.is_null(), "round {round}: out of memory at {size}");
                    assert!(
                        core::slice::from_raw_parts(v, size)
                            .iter()
                            .all(|&b| b == round as u8)
                    );
                    size *= 2;
                    v.write_bytes(round as u8, size);
                }
                let above = (round % 3 != 0).then(|| heap.alloc(layout(100, 8)));
                heap.dealloc(v, layout(size, 1));
                if let Some(p) = above {
                    heap.dealloc(p, layout(100, 8));
                }
            }
            if round == 0 {
                after_first = buf.used.get();
            }
        }
        assert!(
            buf.used.get() <= 2 * after_first,
            "{} bytes after 40 rounds, {after_first} after one",
            buf.used.get()
        );
    }

    #[test]
    fn a_block_freed_at_the_top_is_carved_again() {
        let buf = Buffer::new(4);
        let heap = Heap::new(&buf);
        unsafe {
            let a = heap.alloc(layout(100, 8));
            let b = heap.alloc(layout(5000, 8));
            heap.dealloc(b, layout(5000, 8));
            assert_eq!(
                heap.alloc(layout(20, 8)),
                b,
                "another class, the same place"
            );
            assert!(!a.is_null());
        }
    }

    #[test]
    fn moves_on_when_the_memory_grows_elsewhere() {
        let buf = Buffer::new(16);
        let heap = Heap::new(&buf);
        unsafe {
            let a = heap.alloc(layout(PAGE / 2, 16));
            buf.gap_next.set(true);
            let b = heap.alloc(layout(PAGE, 16));
            assert!(!b.is_null());
            assert!(b as usize >= a as usize + PAGE + PAGE / 2, "past the gap");
            b.write_bytes(1, PAGE);
        }
    }

    /// Random allocations, frees and reallocations, each block filled with its own byte and
    /// checked before it goes: no two live blocks overlap and no bytes are lost.
    #[test]
    fn random_operations_keep_every_block_intact() {
        let buf = Buffer::new(1024);
        let heap = Heap::new(&buf);
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..20_000u32 {
            let r = next();
            let tag = (step % 251) as u8 + 1;
            match r % 4 {
                0 => {
                    let size = match r >> 8 & 7 {
                        0 => (r >> 16) as usize % 100_000 + 1,
                        _ => (r >> 16) as usize % 300 + 1,
                    };
                    let align = 1 << (r >> 40 & 3);
                    let l = layout(size, align);
                    let p = unsafe { heap.alloc(l) };
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0);
                    unsafe { p.write_bytes(tag, size) };
                    live.push((p, l, tag));
                }
                1 | 2 if !live.is_empty() => {
                    let (p, l, t) = live.swap_remove((r >> 8) as usize % live.len());
                    let bytes = unsafe { core::slice::from_raw_parts(p, l.size()) };
                    assert!(bytes.iter().all(|&b| b == t), "block overwritten");
                    unsafe { heap.dealloc(p, l) };
                }
                3 if !live.is_empty() => {
                    let i = (r >> 8) as usize % live.len();
                    let (p, l, t) = live[i];
                    let new_size = match r >> 40 & 7 {
                        0 => (r >> 16) as usize % 200_000 + 1,
                        _ => (r >> 16) as usize % 1_000 + 1,
                    };
                    let q = unsafe { heap.realloc(p, l, new_size) };
                    assert!(!q.is_null());
                    let kept = unsafe { core::slice::from_raw_parts(q, l.size().min(new_size)) };
                    assert!(kept.iter().all(|&b| b == t), "bytes lost in realloc");
                    unsafe { q.write_bytes(tag, new_size) };
                    live[i] = (q, layout(new_size, l.align()), tag);
                }
                _ => {}
            }
        }
        for (p, l, t) in live {
            let bytes = unsafe { core::slice::from_raw_parts(p, l.size()) };
            assert!(bytes.iter().all(|&b| b == t));
        }
    }
}
