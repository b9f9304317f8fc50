//! A set of `u128` keys stored as disjoint, non-adjacent inclusive intervals. Every operation
//! is O(log n) in the number of intervals (fragments), whatever their sizes.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals {
    map: BTreeMap<u128, u128>,
    count: u128,
}

impl Intervals {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys in the set.
    pub fn count(&self) -> u128 {
        self.count
    }

    pub fn fragments(&self) -> usize {
        self.map.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.map.iter().map(|(&s, &e)| (s, e))
    }

    /// The interval holding `x`, if any.
    fn containing(&self, x: u128) -> Option<(u128, u128)> {
        self.map
            .range(..=x)
            .next_back()
            .filter(|&(_, &e)| e >= x)
            .map(|(&s, &e)| (s, e))
    }

    pub fn contains(&self, x: u128) -> bool {
        self.containing(x).is_some()
    }

    /// True when any key of `[s, e]` is in the set.
    pub fn intersects(&self, s: u128, e: u128) -> bool {
        if self.contains(s) {
            return true;
        }
        self.map.range((Excluded(s), Included(e))).next().is_some()
    }

    /// Add `[s, e]`, which must not intersect the set; merges with neighbours.
    pub fn insert(&mut self, s: u128, e: u128) {
        debug_assert!(s <= e && !self.intersects(s, e));
        let mut start = s;
        let mut end = e;
        if s > 0
            && let Some((ps, pe)) = self.containing(s - 1)
        {
            self.map.remove(&ps);
            start = ps;
            debug_assert_eq!(pe, s - 1);
        }
        if e < u128::MAX
            && let Some(ne) = self.map.remove(&(e + 1))
        {
            end = ne;
        }
        self.map.insert(start, end);
        self.count += e - s + 1;
    }

    /// Remove one key; false if it was not there.
    pub fn remove(&mut self, x: u128) -> bool {
        let Some((s, e)) = self.containing(x) else {
            return false;
        };
        self.map.remove(&s);
        if s < x {
            self.map.insert(s, x - 1);
        }
        if x < e {
            self.map.insert(x + 1, e);
        }
        self.count -= 1;
        true
    }

    /// Remove every key in `[s, e]`; returns how many were removed.
    pub fn remove_range(&mut self, s: u128, e: u128) -> u128 {
        let mut removed = 0;
        // Intervals that start before s but reach into it.
        if let Some((ps, pe)) = self.containing(s)
            && ps < s
        {
            self.map.insert(ps, s - 1);
            let cut_end = pe.min(e);
            removed += cut_end - s + 1;
            if pe > e {
                self.map.insert(e + 1, pe);
            }
            self.count -= removed;
            if pe >= e {
                return removed;
            }
        }
        let starts: Vec<u128> = self
            .map
            .range((Included(s), Included(e)))
            .map(|(&k, _)| k)
            .collect();
        for k in starts {
            let ke = self.map.remove(&k).unwrap_or(k);
            let cut_end = ke.min(e);
            removed_add(&mut removed, &mut self.count, cut_end - k + 1);
            if ke > e {
                self.map.insert(e + 1, ke);
            }
        }
        removed
    }

    /// The parts of `[s, e]` not in the set, in order.
    pub fn gaps(&self, s: u128, e: u128) -> Vec<(u128, u128)> {
        let mut out = Vec::new();
        let mut at = s;
        let mut iter_from = s;
        if let Some((_, pe)) = self.containing(s) {
            if pe >= e {
                return out;
            }
            at = pe + 1;
            iter_from = at;
        }
        for (&is, &ie) in self.map.range((Included(iter_from), Included(e))) {
            if is > at {
                out.push((at, is - 1));
            }
            if ie >= e {
                return out;
            }
            at = ie + 1;
        }
        out.push((at, e));
        out
    }

    pub fn first(&self) -> Option<u128> {
        self.map.keys().next().copied()
    }

    /// The lowest key >= x.
    pub fn next_at_or_after(&self, x: u128) -> Option<u128> {
        if self.contains(x) {
            return Some(x);
        }
        self.map
            .range((Excluded(x), Unbounded))
            .next()
            .map(|(&s, _)| s)
    }
}

fn removed_add(removed: &mut u128, count: &mut u128, n: u128) {
    *removed += n;
    *count -= n;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_merges_and_remove_splits() {
        let mut iv = Intervals::new();
        iv.insert(10, 19);
        iv.insert(20, 29);
        iv.insert(0, 9);
        assert_eq!(iv.fragments(), 1);
        assert_eq!(iv.count(), 30);
        assert!(iv.remove(15));
        assert!(!iv.remove(15));
        assert_eq!(iv.fragments(), 2);
        assert_eq!(iv.next_at_or_after(15), Some(16));
        assert_eq!(iv.remove_range(5, 25), 20);
        assert_eq!(iv.iter().collect::<Vec<_>>(), vec![(0, 4), (26, 29)]);
        assert_eq!(iv.count(), 9);
        assert_eq!(iv.gaps(0, 30), vec![(5, 25), (30, 30)]);
        assert_eq!(iv.gaps(1, 3), vec![]);
        assert_eq!(iv.remove_range(0, 100), 9);
        assert_eq!(iv.count(), 0);
    }

    #[test]
    fn remove_range_inside_one_interval() {
        let mut iv = Intervals::new();
        iv.insert(0, u128::MAX - 1);
        assert_eq!(iv.remove_range(100, 199), 100);
        assert_eq!(
            iv.iter().collect::<Vec<_>>(),
            vec![(0, 99), (200, u128::MAX - 1)]
        );
    }
}
