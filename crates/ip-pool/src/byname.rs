//! The pools of one authority by name: a vector in name order. Calls come in runs on one
//! pool, so the pool used last is compared first; any other is found by binary search.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::Pool;

#[derive(Default)]
pub(crate) struct ByName {
    pools: Vec<Pool>,
    last: usize,
}

impl ByName {
    /// Where `name` is, or where it would go.
    #[inline]
    fn find(&self, name: &str) -> core::result::Result<usize, usize> {
        if let Some(p) = self.pools.get(self.last)
            && p.name.as_bytes() == name.as_bytes()
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
        if let Some(p) = self.pools.get(self.last)
            && p.name.as_bytes() == name.as_bytes()
        {
            return self.pools.get_mut(self.last);
        }
        let at = self.search(name).ok()?;
        self.last = at;
        self.pools.get_mut(at)
    }

    /// Add a pool whose name is not taken; false (and nothing changes) if it is.
    pub fn insert(&mut self, pool: Pool) -> bool {
        match self.find(&pool.name) {
            Ok(_) => false,
            Err(at) => {
                self.pools.insert(at, pool);
                true
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Pool> {
        let at = self.find(name).ok()?;
        Some(self.pools.remove(at))
    }

    /// The pools in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Pool> + '_ {
        self.pools.iter()
    }
}
