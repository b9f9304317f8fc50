//! Bindings in a slab: an address maps to a small id, and the tenant and owner indexes hold
//! ids, so binding and releasing move no records and a tenant's list is a plain vector.
//! A freed entry keeps its data until the id is reused by the next binding, which is what
//! lets a release return the binding by reference.

#[allow(unused_imports)]
use crate::prelude::*;

use core::hash::{BuildHasher, BuildHasherDefault};

use hashbrown::HashTable;

use crate::{FxHasher, Slot};

/// Address -> id, as a table of pairs hashed by address: a binding's address is known unbound
/// when it is inserted, so the insert makes no search for it first (`insert_unique`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots {
    ids: HashTable<(u128, u32)>,
    slab: Vec<Slot>,
    vacant: Vec<u32>,
}

#[inline]
fn hash(k: u128) -> u64 {
    BuildHasherDefault::<FxHasher>::default().hash_one(k)
}

impl Slots {
    /// Bound addresses.
    #[inline]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    #[inline]
    pub fn id(&self, k: u128) -> Option<u32> {
        self.ids.find(hash(k), |e| e.0 == k).map(|e| e.1)
    }

    #[inline]
    pub fn contains(&self, k: u128) -> bool {
        self.id(k).is_some()
    }

    #[inline]
    pub fn get(&self, k: u128) -> Option<&Slot> {
        self.id(k).map(|id| self.at(id))
    }

    #[inline]
    pub fn at(&self, id: u32) -> &Slot {
        &self.slab[id as usize]
    }

    #[inline]
    pub fn at_mut(&mut self, id: u32) -> &mut Slot {
        &mut self.slab[id as usize]
    }

    /// Store a binding of the unbound address `slot.ip`; returns its id.
    #[inline]
    pub fn insert(&mut self, slot: Slot) -> u32 {
        let k = slot.ip;
        let id = match self.vacant.pop() {
            Some(id) => {
                self.slab[id as usize] = slot;
                id
            }
            None => {
                self.slab.push(slot);
                (self.slab.len() - 1) as u32
            }
        };
        debug_assert!(!self.contains(k), "{k} bound twice");
        self.ids.insert_unique(hash(k), (k, id), |e| hash(e.0));
        id
    }

    /// Unbind `k` if `keep` does not object; the entry stays readable by id until the next
    /// `insert`. One hash probe either way.
    #[inline]
    pub fn remove_if<E>(
        &mut self,
        k: u128,
        keep: impl FnOnce(&Slot) -> Option<E>,
    ) -> Option<Result<u32, E>> {
        let Ok(entry) = self.ids.find_entry(hash(k), |e| e.0 == k) else {
            return None;
        };
        let id = entry.get().1;
        if let Some(e) = keep(&self.slab[id as usize]) {
            return Some(Err(e));
        }
        entry.remove();
        self.vacant.push(id);
        Some(Ok(id))
    }

    /// Every binding with an address in `[s, e]`, in no particular order. O(bindings).
    pub fn in_range_mut(&mut self, s: u128, e: u128) -> impl Iterator<Item = &mut Slot> + '_ {
        let ids = &self.ids;
        self.slab
            .iter_mut()
            .enumerate()
            .filter(move |(id, slot)| {
                (s..=e).contains(&slot.ip)
                    && ids.find(hash(slot.ip), |x| x.0 == slot.ip).map(|x| x.1) == Some(*id as u32)
            })
            .map(|(_, slot)| slot)
    }

    /// Bound addresses, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = u128> + '_ {
        self.ids.iter().map(|e| e.0)
    }
}
