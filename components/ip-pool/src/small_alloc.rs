//! A small-object allocator in front of the system allocator (dlmalloc). Every call through
//! the interface makes and drops a few short strings (the arguments, the returned address);
//! a free list per size class turns each of those into a handful of instructions. Freed
//! blocks stay on their list for reuse, so the memory held is the peak of small blocks in use.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

const CLASSES: [usize; 5] = [16, 32, 64, 128, 256];
const ALIGN: usize = 16;

pub struct SmallAlloc {
    free: UnsafeCell<[*mut u8; CLASSES.len()]>,
}

impl SmallAlloc {
    pub const fn new() -> Self {
        SmallAlloc {
            free: UnsafeCell::new([std::ptr::null_mut(); CLASSES.len()]),
        }
    }
}

// SAFETY: a wasm32-wasip2 component has one thread; nothing here is ever shared across threads.
unsafe impl Sync for SmallAlloc {}

fn class(l: &Layout) -> Option<usize> {
    if l.align() > ALIGN {
        return None;
    }
    CLASSES.iter().position(|&c| l.size() <= c)
}

unsafe impl GlobalAlloc for SmallAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let Some(c) = class(&l) else {
            return unsafe { System.alloc(l) };
        };
        // SAFETY: single-threaded (see `Sync`), and no reference to the array outlives this call.
        let free = unsafe { &mut *self.free.get() };
        let p = free[c];
        if p.is_null() {
            // SAFETY: the size is non-zero and the alignment a power of two.
            return unsafe { System.alloc(Layout::from_size_align_unchecked(CLASSES[c], ALIGN)) };
        }
        // SAFETY: a block on the list holds the next block's address in its first bytes.
        free[c] = unsafe { p.cast::<*mut u8>().read() };
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let Some(c) = class(&l) else {
            return unsafe { System.dealloc(p, l) };
        };
        // SAFETY: as in `alloc`; the block is at least 16 bytes, 16-aligned, and ours again.
        let free = unsafe { &mut *self.free.get() };
        unsafe { p.cast::<*mut u8>().write(free[c]) };
        free[c] = p;
    }
}
