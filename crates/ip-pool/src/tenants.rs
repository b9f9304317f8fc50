//! The tenants of one pool: each has a small id that bindings keep, so a release reaches its
//! tenant without hashing the name. Tenants left with no bindings and no quota are kept for
//! reuse and swept in bulk once they outnumber half of all tenants (amortised O(1)), so memory
//! follows the tenants in use, not every tenant ever seen.

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
    /// Tenants that went idle since the last sweep (an upper bound: some may be busy again).
    went_idle: usize,
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
            went_idle: 0,
            last: Cell::new(NONE),
        }
    }
}

impl Tenants {
    #[inline]
    pub fn id(&self, name: &str) -> Option<u32> {
        let last = self.last.get();
        if let Some(t) = self.list.get(last as usize)
            && t.name.as_bytes() == name.as_bytes()
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
        id
    }

    #[inline]
    pub fn at(&self, id: u32) -> &Tenant {
        &self.list[id as usize]
    }

    #[inline]
    pub fn at_mut(&mut self, id: u32) -> &mut Tenant {
        &mut self.list[id as usize]
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
    }

    /// Called when a release leaves a tenant idle.
    #[inline]
    pub fn went_idle(&mut self) {
        self.went_idle += 1;
    }

    /// True when enough tenants went idle for a sweep.
    #[inline]
    pub fn sweep_due(&self) -> bool {
        self.went_idle > 64 && self.went_idle > self.ids.len() / 2
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
            self.went_idle = 0;
        }
    }

    /// Every tenant in use, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Tenant> + '_ {
        self.ids.values().map(|&id| &self.list[id as usize])
    }
}
