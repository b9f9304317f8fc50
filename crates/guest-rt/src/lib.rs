//! The runtime of our `no_std` components, in place of Rust's `std` for wasm32-wasip2.
//!
//! `std` costs each component 30-40 KB (its panic and formatting machinery, wasi-libc's
//! start-up, dlmalloc); a component needs only:
//! - a global allocator ([`heap`]: size classes with free lists over `memory.grow`);
//! - `cabi_realloc`, through which the host hands the guest lists and strings;
//! - a panic handler: a panic traps (the instance is then unusable, as with `panic = "abort"`);
//! - `memcmp` ([`bytes`]: eight bytes at a time), and `memcpy` and friends from wasi-libc;
//! - a place for the instance's state ([`Global`]).
//!
//! On other targets (native `cargo clippy`, unit tests) only the allocator's logic and
//! [`Global`] exist.

#![no_std]

extern crate alloc;

pub mod bytes;
pub mod heap;

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// The one value of type `T` in this instance, made on first use. A component instance runs
/// one call at a time, so this is never contended: a flag makes a second simultaneous use (a
/// re-entrant call, or another thread on a native build) a panic instead of a data race.
pub struct Global<T> {
    value: UnsafeCell<Option<T>>,
    busy: AtomicBool,
    init: fn() -> T,
}

// SAFETY: `get` hands out access to one caller at a time (the `busy` flag), and `T: Send`
// lets that caller be on any thread.
unsafe impl<T: Send> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(init: fn() -> T) -> Self {
        Global {
            value: UnsafeCell::new(None),
            busy: AtomicBool::new(false),
            init,
        }
    }

    /// The value, for the length of one call into the component.
    pub fn get(&self) -> GlobalRef<'_, T> {
        assert!(
            !self.busy.swap(true, Ordering::Acquire),
            "global state used by two calls at once"
        );
        // SAFETY: the flag was clear and is now ours: nobody else holds the value.
        let value = unsafe { &mut *self.value.get() };
        if value.is_none() {
            *value = Some((self.init)());
        }
        GlobalRef { global: self }
    }
}

/// Exclusive access to a [`Global`]'s value; released on drop.
pub struct GlobalRef<'a, T> {
    global: &'a Global<T>,
}

impl<T> Deref for GlobalRef<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `get` set the flag and filled the value; this guard is the only holder.
        match unsafe { &*self.global.value.get() } {
            Some(v) => v,
            None => unreachable!("filled by get"),
        }
    }
}

impl<T> DerefMut for GlobalRef<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow of the guard.
        match unsafe { &mut *self.global.value.get() } {
            Some(v) => v,
            None => unreachable!("filled by get"),
        }
    }
}

impl<T> Drop for GlobalRef<'_, T> {
    fn drop(&mut self) {
        self.global.busy.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Global;

    static COUNT: Global<u32> = Global::new(|| 40);

    #[test]
    fn made_once_and_kept() {
        *COUNT.get() += 1;
        *COUNT.get() += 1;
        assert_eq!(*COUNT.get(), 42);
    }

    #[test]
    #[should_panic(expected = "two calls at once")]
    fn a_second_simultaneous_use_panics() {
        static G: Global<u8> = Global::new(|| 0);
        let _first = G.get();
        let _second = G.get();
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

    /// `memcmp` (and `bcmp`, equality only) eight bytes at a time. wasi-libc's compares one
    /// byte a loop, about 12 instructions a byte once compiled; every `==` of two strings
    /// (the executor's cached action, pool keys, header names) lands here.
    #[unsafe(no_mangle)]
    unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: the caller's contract: `a` and `b` are readable for `n` bytes.
        unsafe { crate::bytes::compare(a, b, n) }
    }

    #[unsafe(no_mangle)]
    unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: as for `memcmp`.
        unsafe { crate::bytes::compare(a, b, n) }
    }

    // memcpy, memmove and memset: core calls them; wasi-libc has them (bulk-memory).
    #[link(name = "c")]
    unsafe extern "C" {}
}
