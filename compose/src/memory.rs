//! How a run's linear memories are made, in its two modes, for the scheduler host and the
//! benchmarks alike.
//!
//! - **arena** (what runs use): linear memories from one arena, a single anonymous read-write
//!   mapping cut into equal slots, so that a user's memories add no memory mapping of their
//!   own: a process may hold `vm.max_map_count` mappings (65,530), and with the arena a user
//!   holds about two (its fiber stack and the stack's guard page).
//! - **pool** (`SCHEDULER_MEMORY=pool`): wasmtime's pooling allocator; each memory in a slot of
//!   its own (the accessible part and the rest: two mappings a memory, six a user).
//!
//! Either way memories are filled from their data segments (no copy-on-write image: that is
//! one more mapping a memory, or two).
//!
//! The arena's safety rests on wasmtime's explicit bounds checks: the engine that uses it
//! reserves nothing and has no guard region (`memory_reservation(0)`, `memory_guard_size(0)`),
//! so compiled code checks every access against the memory's current size. A slot is never
//! shared while its memory lives, and it is zeroed (its pages given back) when the memory is
//! dropped, before another memory takes it.

use std::sync::{Arc, Mutex};

use wasmtime::{Config, InstanceAllocationStrategy, LinearMemory, MemoryCreator, MemoryType};

/// Address space the memories may take (half of a 47-bit process).
const ADDRESS_BUDGET: u64 = 64 << 40;
/// A memory's largest size (`pooling_config`'s `max_memory_size`).
const MAX_MEMORY: u64 = 512 << 20;

/// Where a run's memories come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryMode {
    Pool,
    Arena,
}

impl MemoryMode {
    /// `SCHEDULER_MEMORY=pool` (or `arena`), else the arena, for every run. Measured
    /// (2026-12-04, bench row 6, fresh slots as a run's users take them): the arena makes a
    /// user's instance in 47 us, 24 KiB and two mappings, the pool in 70 us, 36 KiB and eight
    /// (each fresh slot is made accessible with an `mprotect`), and a load of 64 users runs as
    /// fast on either (the arena's bounds checks in the code cost nothing measurable there).
    /// The pool is also bounded in users: each memory's slot reserves 4 GiB and a 2 GiB guard,
    /// 24 GiB a user, so past about 2,700 users it no longer fits the address budget (asked
    /// for anyway, the engine says so).
    pub fn for_run() -> Result<MemoryMode, String> {
        match std::env::var("SCHEDULER_MEMORY") {
            Ok(v) if !v.is_empty() => MemoryMode::parse(&v),
            _ => Ok(MemoryMode::Arena),
        }
    }

    fn parse(v: &str) -> Result<MemoryMode, String> {
        match v {
            "arena" => Ok(MemoryMode::Arena),
            "pool" => Ok(MemoryMode::Pool),
            _ => Err(format!("SCHEDULER_MEMORY={v:?}: expected arena or pool")),
        }
    }
}

/// Set up `config` for `slots` users' instances alive at once, their memories made as `mode`
/// says; memories always start from their data segments copied in.
pub fn configure(config: &mut Config, slots: u32, mode: MemoryMode) -> Result<(), String> {
    config.memory_init_cow(false);
    match mode {
        MemoryMode::Pool => {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(crate::pooling_config(
                slots,
            )));
        }
        MemoryMode::Arena => {
            // Four memories a user (three components' and room), each at most 512 MiB, within
            // the address budget.
            let memories = u64::from(slots) * 4 + 16;
            let slot = MAX_MEMORY.min(ADDRESS_BUDGET / memories);
            let arena = Arena::new(memories as usize, slot as usize)?;
            config
                .memory_reservation(0)
                .memory_guard_size(0)
                .memory_reservation_for_growth(0)
                .with_host_memory(Arc::new(ArenaCreator(arena)));
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
        }
    }
    Ok(())
}

pub struct Arena {
    base: usize,
    slot: usize,
    slots: usize,
    /// Slots given back, and the next never used.
    free: Mutex<(Vec<usize>, usize)>,
}

// The arena's addresses are only handed out one slot to one memory at a time.
unsafe impl Send for Arena {}
unsafe impl Sync for Arena {}

impl Arena {
    /// `slots` memories of at most `slot` bytes each (rounded up to pages).
    pub fn new(slots: usize, slot: usize) -> Result<Arc<Arena>, String> {
        let page = 4096;
        let slot = slot.div_ceil(page) * page;
        let len = slots.checked_mul(slot).ok_or("memory arena: too large")?;
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it. NORESERVE: the
        // pages cost nothing until touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "memory arena of {len} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Arc::new(Arena {
            base: base as usize,
            slot,
            slots,
            free: Mutex::new((Vec::new(), 0)),
        }))
    }

    fn take(&self) -> Option<usize> {
        let mut f = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = f.0.pop() {
            return Some(i);
        }
        (f.1 < self.slots).then(|| {
            f.1 += 1;
            f.1 - 1
        })
    }

    fn give_back(&self, index: usize, used: usize) {
        let start = self.base + index * self.slot;
        // SAFETY: the range is this slot's, whose memory is gone; DONTNEED makes its pages
        // read as zero again and frees them.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                used.min(self.slot),
                libc::MADV_DONTNEED,
            );
        }
        let mut f = self.free.lock().unwrap_or_else(|e| e.into_inner());
        f.0.push(index);
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the whole mapping made in `new`; every memory (each holds an Arc) is gone.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.slots * self.slot);
        }
    }
}

struct ArenaMemory {
    arena: Arc<Arena>,
    index: usize,
    size: usize,
    /// The most this memory has been: what to zero when it goes.
    high: usize,
    capacity: usize,
}

// SAFETY: the slot is this memory's alone while it lives, zeroed before (a fresh mapping or
// DONTNEED), page aligned, and never moves; growth within the capacity needs no remapping.
unsafe impl LinearMemory for ArenaMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.capacity
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.capacity {
            wasmtime::bail!(
                "memory limit: {new_size} bytes asked, {} at most",
                self.capacity
            );
        }
        self.size = new_size;
        self.high = self.high.max(new_size);
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        (self.arena.base + self.index * self.arena.slot) as *mut u8
    }
}

impl Drop for ArenaMemory {
    fn drop(&mut self) {
        self.arena.give_back(self.index, self.high);
    }
}

pub struct ArenaCreator(pub Arc<Arena>);

// SAFETY: see `ArenaMemory`; the engine using this creator checks every access (no
// reservation, no guard).
unsafe impl MemoryCreator for ArenaCreator {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        _reserved_size_in_bytes: Option<usize>,
        _guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let capacity = maximum.unwrap_or(usize::MAX).min(self.0.slot);
        if minimum > capacity {
            return Err(format!(
                "a memory of {minimum} bytes is over the arena's {capacity}-byte slots"
            ));
        }
        let index = self
            .0
            .take()
            .ok_or_else(|| format!("all {} memory slots are in use", self.0.slots))?;
        Ok(Box::new(ArenaMemory {
            arena: self.0.clone(),
            index,
            size: minimum,
            high: minimum,
            capacity,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_named_or_refused() {
        assert_eq!(MemoryMode::parse("arena"), Ok(MemoryMode::Arena));
        assert_eq!(MemoryMode::parse("pool"), Ok(MemoryMode::Pool));
        let e = MemoryMode::parse("Pool").unwrap_err();
        assert!(e.contains("expected arena or pool"), "{e}");
    }

    #[test]
    fn slots_are_separate_zeroed_and_reused() {
        let arena = Arena::new(2, 64 << 10).unwrap();
        let c = ArenaCreator(arena.clone());
        let ty = MemoryType::new(1, None);
        let mut a = c.new_memory(ty.clone(), 65536, None, None, 0).unwrap();
        let b = c.new_memory(ty.clone(), 65536, None, None, 0).unwrap();
        assert_ne!(a.as_ptr(), b.as_ptr());
        assert!(
            c.new_memory(ty.clone(), 65536, None, None, 0).is_err(),
            "full"
        );
        assert!(a.grow_to(65537).is_err(), "capacity is the slot");
        // SAFETY: within a's slot.
        unsafe { *a.as_ptr().add(100) = 7 };
        let p = a.as_ptr();
        drop(a);
        let again = c.new_memory(ty, 65536, None, None, 0).unwrap();
        assert_eq!(again.as_ptr(), p, "the slot is reused");
        // SAFETY: within again's slot.
        assert_eq!(unsafe { *again.as_ptr().add(100) }, 0, "and zeroed");
    }
}
