//! The tenants of one pool: each has a small id that bindings keep, so a release reaches its
//! tenant without hashing the name. Tenants left with no bindings and no quota (idle) are kept
//! for reuse and swept in bulk once more than 64 of them make up over half of all tenants
//! (amortised O(1)), so memory follows the tenants in use, not every tenant ever seen, and a
//! tenant that comes and goes is not forgotten and made again each time.

#[allow(unused_imports)]
use crate::prelude::*;

use core::cell::Cell;

use crate::{FxMap, Name};

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub(crate) struct Tenant {
    pub name: Name,
    /// Slot ids of the tenant's bindings (each slot knows its position here).
    pub ips: Vec<u32>,
    pub quota: Option<u64>,
}

impl Tenant {
    fn new(name: Name) -> Self {
        Tenant {
            name,
            ips: Vec::new(),
            quota: None,
        }
    }

    #[inline]
    pub fn idle(&self) -> bool {
        self.ips.is_empty() && self.quota.is_none()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Tenants {
    ids: FxMap<Name, u32>,
    list: Vec<Tenant>,
    vacant: Vec<u32>,
    /// How many tenants in `ids` are idle, kept exact by `change`.
    idle: usize,
    /// The tenant looked up last: allocations come in runs per tenant, and comparing one
    /// short name is cheaper than hashing it.
    last: Cell<u32>,
}

impl Default for Tenants {
    fn default() -> Self {
        Tenants {
            ids: FxMap::default(),
            list: Vec::new(),
            vacant: Vec::new(),
            idle: 0,
            last: Cell::new(NONE),
        }
    }
}

impl Tenants {
    #[inline]
    pub fn id(&self, name: &str) -> Option<u32> {
        let last = self.last.get();
        if let Some(t) = self.list.get(last as usize)
            && crate::small::same(t.name.as_bytes(), name.as_bytes())
        {
            return Some(last);
        }
        let id = self.ids.get(name).copied()?;
        self.last.set(id);
        Some(id)
    }

    #[inline]
    pub fn get(&self, name: &str) -> Option<&Tenant> {
        self.id(name).map(|id| &self.list[id as usize])
    }

    /// The tenant's id, making the tenant if it does not exist.
    pub fn make(&mut self, name: &str) -> u32 {
        if let Some(id) = self.id(name) {
            return id;
        }
        let name = Name::from(name);
        let id = match self.vacant.pop() {
            Some(id) => {
                self.list[id as usize] = Tenant::new(name.clone());
                id
            }
            None => {
                self.list.push(Tenant::new(name.clone()));
                (self.list.len() - 1) as u32
            }
        };
        self.ids.insert(name, id);
        self.idle += 1;
        id
    }

    #[inline]
    pub fn at(&self, id: u32) -> &Tenant {
        &self.list[id as usize]
    }

    /// Apply `change` to tenant `id`, keeping the count of idle tenants: every change of a
    /// tenant's bindings or quota goes through here.
    #[inline]
    fn change<R>(&mut self, id: u32, change: impl FnOnce(&mut Tenant) -> R) -> R {
        let t = &mut self.list[id as usize];
        let was_idle = t.idle();
        let r = change(t);
        match (was_idle, t.idle()) {
            (true, false) => self.idle -= 1,
            (false, true) => self.idle += 1,
            _ => {}
        }
        r
    }

    /// Add slot `slot` to the tenant's bindings; returns its position there.
    #[inline]
    pub fn push(&mut self, id: u32, slot: u32) -> u32 {
        self.change(id, |t| {
            t.ips.push(slot);
            t.ips.len() as u32 - 1
        })
    }

    /// Remove the binding at `pos` (by swapping the last one in); returns the slot now at `pos`.
    #[inline]
    pub fn remove(&mut self, id: u32, pos: u32) -> Option<u32> {
        self.change(id, |t| {
            t.ips.swap_remove(pos as usize);
            t.ips.get(pos as usize).copied()
        })
    }

    /// Set or clear (`None`) the tenant's quota.
    pub fn set_quota(&mut self, id: u32, quota: Option<u64>) {
        self.change(id, |t| t.quota = quota);
    }

    /// Forget the tenant now if it is idle.
    pub fn drop_if_idle(&mut self, id: u32) {
        if self.at(id).idle() {
            self.vacate(id);
        }
    }

    fn vacate(&mut self, id: u32) {
        if self.last.get() == id {
            self.last.set(NONE);
        }
        let t = &mut self.list[id as usize];
        self.ids.remove(&t.name);
        t.ips = Vec::new();
        self.vacant.push(id);
        self.idle -= 1;
    }

    /// True when enough tenants are idle for a sweep.
    #[inline]
    pub fn sweep_due(&self) -> bool {
        self.idle > 64 && self.idle > self.ids.len() / 2
    }

    /// Forget idle tenants once enough went idle. Called between operations, so a binding
    /// just released can still name its tenant.
    pub fn sweep_if_due(&mut self) {
        if self.sweep_due() {
            let idle: Vec<u32> = self
                .ids
                .values()
                .copied()
                .filter(|&id| self.at(id).idle())
                .collect();
            for id in idle {
                self.vacate(id);
            }
        }
    }

    /// Every tenant in use, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Tenant> + '_ {
        self.ids.values().map(|&id| &self.list[id as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::Tenants;

    #[test]
    fn a_tenant_that_comes_and_goes_keeps_its_id() {
        let mut t = Tenants::default();
        let id = t.make("bench");
        for slot in 0..1000 {
            let pos = t.push(id, slot);
            assert_eq!(t.remove(id, pos), None);
            t.sweep_if_due();
            assert_eq!(t.id("bench"), Some(id), "forgotten after {slot} releases");
        }
        assert_eq!(t.idle, 1);
    }

    #[test]
    fn idle_tenants_are_counted_exactly_and_swept_past_half() {
        let mut t = Tenants::default();
        let ids: Vec<u32> = (0..200).map(|i| t.make(&format!("t{i}"))).collect();
        for (slot, &id) in ids.iter().enumerate() {
            t.push(id, slot as u32);
        }
        assert_eq!(t.idle, 0);
        // A quota keeps a tenant without bindings; clearing it makes the tenant idle again.
        t.set_quota(ids[0], Some(3));
        assert_eq!(t.remove(ids[0], 0), None);
        assert_eq!(t.idle, 0);
        for &id in &ids[1..100] {
            t.remove(id, 0);
        }
        assert_eq!(t.idle, 99);
        assert!(!t.sweep_due(), "99 of 200 is not over half");
        t.remove(ids[100], 0);
        t.set_quota(ids[0], None);
        assert_eq!(t.idle, 101);
        t.sweep_if_due();
        assert_eq!(t.idle, 0);
        assert_eq!(t.iter().count(), 99);
        assert_eq!(t.id("t0"), None);
        assert_eq!(t.id("t150"), Some(ids[150]));
    }
}
