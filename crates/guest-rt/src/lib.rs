//! The runtime of our `no_std` components, in place of Rust's `std` for wasm32-wasip2.
//!
//! `std` costs each component 30-40 KB (its panic and formatting machinery, wasi-libc's
//! start-up, dlmalloc); a component needs only:
//! - a global allocator ([`heap`]: size classes with free lists over `memory.grow`);
//! - `cabi_realloc`, through which the host hands the guest lists and strings;
//! - a panic handler: a panic traps (the instance is then unusable, as with `panic = "abort"`);
//! - `memcpy` and friends, taken from wasi-libc;
//! - a place for the instance's state ([`Global`]).
//!
//! On other targets (native `cargo clippy`, unit tests) only the allocator's logic and
//! [`Global`] exist.

#![no_std]

extern crate alloc;

pub mod heap;

use core::cell::{RefCell, RefMut};

/// The one value of type `T` in this instance, made on first use. A component instance runs
/// one call at a time on one thread, so a `RefCell` is all the locking needed.
pub struct Global<T> {
    cell: RefCell<Option<T>>,
    init: fn() -> T,
}

// SAFETY: components are single-threaded (wasm32-wasip2 without the threads proposal), so the
// value is never reached from two threads. Natively it is only used from one test thread.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(init: fn() -> T) -> Self {
        Global {
            cell: RefCell::new(None),
            init,
        }
    }

    /// The value, borrowed mutably for the length of one call into the component.
    pub fn get(&self) -> RefMut<'_, T> {
        RefMut::map(self.cell.borrow_mut(), |v| v.get_or_insert_with(self.init))
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use core::alloc::{GlobalAlloc, Layout};

    use crate::heap::{Heap, WasmMemory};

    #[global_allocator]
    static HEAP: Heap<WasmMemory> = Heap::new(WasmMemory);

    /// The canonical ABI's allocator export: the host calls it to place arguments (strings,
    /// lists) in our memory.
    #[unsafe(no_mangle)]
    unsafe extern "C" fn cabi_realloc(
        old: *mut u8,
        old_len: usize,
        align: usize,
        new_len: usize,
    ) -> *mut u8 {
        // SAFETY: the canonical ABI passes a power-of-two alignment, and `old` was returned
        // by this allocator with (`old_len`, `align`).
        unsafe {
            let ptr = if old_len == 0 {
                if new_len == 0 {
                    return align as *mut u8;
                }
                HEAP.alloc(Layout::from_size_align_unchecked(new_len, align))
            } else {
                HEAP.realloc(
                    old,
                    Layout::from_size_align_unchecked(old_len, align),
                    new_len,
                )
            };
            if ptr.is_null() {
                core::arch::wasm32::unreachable();
            }
            ptr
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        core::arch::wasm32::unreachable()
    }

    // memcpy, memmove, memset and memcmp: core calls them; wasi-libc has them (bulk-memory).
    #[link(name = "c")]
    unsafe extern "C" {}
}
