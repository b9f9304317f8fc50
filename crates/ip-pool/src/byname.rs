//! The pools of one authority by name: a vector in name order. Calls come in runs on one
//! pool, so the pool used last is compared first; any other is found by binary search.
//! Each pool also gets a handle when it is added, never given to another pool, so the hot
//! calls can name a pool by a number instead of its text.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::Pool;

#[derive(Default)]
pub(crate) struct ByName {
    pools: Vec<Pool>,
    /// `handles[i]` is the handle of `pools[i]`.
    handles: Vec<u64>,
    next_handle: u64,
    last: usize,
}

impl ByName {
    /// Where `name` is, or where it would go.
    #[inline]
    fn find(&self, name: &str) -> core::result::Result<usize, usize> {
        if let Some(p) = self.pools.get(self.last)
            && crate::small::same(p.name.as_bytes(), name.as_bytes())
        {
            return Ok(self.last);
        }
        self.search(name)
    }

    #[inline(never)]
    fn search(&self, name: &str) -> core::result::Result<usize, usize> {
        self.pools.binary_search_by(|p| (*p.name).cmp(name))
    }

    #[inline]
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Pool> {
        let at = self.find(name).ok()?;
        self.last = at;
        self.pools.get_mut(at)
    }

    /// The handle of the pool named `name`.
    pub fn handle(&self, name: &str) -> Option<u64> {
        self.find(name).ok().map(|at| self.handles[at])
    }

    /// The pool with `handle`: the pool used last, or a scan of the handles (8 bytes a pool;
    /// calls come in runs on one pool, so the scan is rare).
    #[inline]
    pub fn by_handle_mut(&mut self, handle: u64) -> Option<&mut Pool> {
        let at = match self.handles.get(self.last) {
            Some(&h) if h == handle => self.last,
            _ => self.handles.iter().position(|&h| h == handle)?,
        };
        self.last = at;
        self.pools.get_mut(at)
    }

    /// Add a pool whose name is not taken; false (and nothing changes) if it is.
    pub fn insert(&mut self, pool: Pool) -> bool {
        match self.find(&pool.name) {
            Ok(_) => false,
            Err(at) => {
                self.pools.insert(at, pool);
                self.handles.insert(at, self.next_handle);
                self.next_handle += 1;
                true
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Pool> {
        let at = self.find(name).ok()?;
        self.handles.remove(at);
        Some(self.pools.remove(at))
    }

    /// Forget every pool; handles given out so far stay unused.
    pub fn clear(&mut self) {
        self.pools.clear();
        self.handles.clear();
    }

    /// The pools in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Pool> + '_ {
        self.pools.iter()
    }
}
