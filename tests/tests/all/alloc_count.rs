//! The binary's allocator, counting the large allocations a thread makes while it asks to
//! (other threads and other times pay one thread-local read).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations of at least this many bytes are counted on this thread (0: none).
    static AT_LEAST: Cell<usize> = const { Cell::new(0) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = AT_LEAST.try_with(|min| {
        if min.get() != 0 && size >= min.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// How many allocations of at least `size` bytes this thread made while `f` ran.
pub fn large_allocations<R>(size: usize, f: impl FnOnce() -> R) -> (usize, R) {
    COUNT.with(|c| c.set(0));
    AT_LEAST.with(|m| m.set(size.max(1)));
    let r = f();
    AT_LEAST.with(|m| m.set(0));
    (COUNT.with(|c| c.get()), r)
}
