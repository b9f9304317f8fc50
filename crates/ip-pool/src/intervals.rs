//! A set of `u128` keys stored as disjoint, non-adjacent inclusive intervals. Every operation
//! is O(log n) in the number of intervals (fragments), whatever their sizes.
//!
//! The map is keyed by each interval's *end* and holds its start, so the common moves
//! (taking the lowest address of an interval, giving back the address just below one) change
//! a value in place instead of removing and re-inserting a key.

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::collections::BTreeMap;
use core::ops::Bound::{Excluded, Included, Unbounded};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals {
    /// end -> start
    map: BTreeMap<u128, u128>,
    count: u128,
}

impl Intervals {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys in the set.
    #[inline]
    pub fn count(&self) -> u128 {
        self.count
    }

    pub fn fragments(&self) -> usize {
        self.map.len()
    }

    /// The intervals as inclusive `(start, end)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.map.iter().map(|(&e, &s)| (s, e))
    }

    /// The first interval ending at or after `x`: `(start, end)`.
    #[inline]
    fn at_or_after(&self, x: u128) -> Option<(u128, u128)> {
        self.map.range(x..).next().map(|(&e, &s)| (s, e))
    }

    /// The interval holding `x`, if any.
    #[inline]
    fn containing(&self, x: u128) -> Option<(u128, u128)> {
        self.at_or_after(x).filter(|&(s, _)| s <= x)
    }

    #[inline]
    pub fn contains(&self, x: u128) -> bool {
        self.containing(x).is_some()
    }

    /// True when any key of `[s, e]` is in the set.
    pub fn intersects(&self, s: u128, e: u128) -> bool {
        self.at_or_after(s).is_some_and(|(is, _)| is <= e)
    }

    /// Add `[s, e]`, which must not intersect the set; merges with neighbours.
    #[inline]
    pub fn insert(&mut self, s: u128, e: u128) {
        debug_assert!(s <= e && !self.intersects(s, e));
        self.count += e - s + 1;
        // Fast path: before the first interval, so there is nothing on the left to merge with.
        if let Some(mut first) = self.map.first_entry()
            && e < *first.get()
        {
            if *first.get() == e + 1 {
                *first.get_mut() = s;
            } else {
                self.map.insert(e, s);
            }
            return;
        }
        // The interval ending at s - 1, if any, is absorbed.
        let left = s
            .checked_sub(1)
            .and_then(|l| self.map.remove(&l).map(|ls| (l, ls)));
        let start = left.map_or(s, |(_, ls)| ls);
        // The interval starting at e + 1, if any, keeps its key and takes the new start.
        if e < u128::MAX
            && let Some((_, rs)) = self.map.range_mut((Excluded(e), Unbounded)).next()
            && *rs == e + 1
        {
            *rs = start;
            return;
        }
        self.map.insert(e, start);
    }

    /// Remove one key; false if it was not there.
    #[inline]
    pub fn remove(&mut self, x: u128) -> bool {
        // Fast path: the lowest key (the sequential strategy's pick).
        if let Some(mut first) = self.map.first_entry()
            && *first.get() == x
        {
            self.count -= 1;
            if *first.key() == x {
                first.remove();
            } else {
                *first.get_mut() = x + 1;
            }
            return true;
        }
        let Some((&e, s)) = self.map.range_mut(x..).next() else {
            return false;
        };
        if *s > x {
            return false;
        }
        self.count -= 1;
        let start = *s;
        if x < e {
            // Keep [x + 1, e] under its key; [start, x - 1] needs one of its own.
            *s = x + 1;
            if start < x {
                self.map.insert(x - 1, start);
            }
        } else {
            self.map.remove(&e);
            if start < x {
                self.map.insert(x - 1, start);
            }
        }
        true
    }

    /// Remove every key in `[s, e]`; returns how many were removed.
    pub fn remove_range(&mut self, s: u128, e: u128) -> u128 {
        let mut removed = 0;
        while let Some((is, ie)) = self.at_or_after(s) {
            if is > e {
                break;
            }
            self.map.remove(&ie);
            if is < s {
                self.map.insert(s - 1, is);
            }
            if ie > e {
                self.map.insert(ie, e + 1);
            }
            removed += ie.min(e) - is.max(s) + 1;
            if ie >= e {
                break;
            }
        }
        self.count -= removed;
        removed
    }

    /// The parts of `[s, e]` not in the set, in order.
    pub fn gaps(&self, s: u128, e: u128) -> Vec<(u128, u128)> {
        let mut out = Vec::new();
        let mut at = s;
        for (&ie, &is) in self.map.range((Included(s), Unbounded)) {
            if is > e {
                break;
            }
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

    #[inline]
    pub fn first(&self) -> Option<u128> {
        self.map.first_key_value().map(|(_, &s)| s)
    }

    /// The lowest key >= x.
    #[inline]
    pub fn next_at_or_after(&self, x: u128) -> Option<u128> {
        self.at_or_after(x).map(|(s, _)| s.max(x))
    }
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

    #[test]
    fn edges_of_the_key_space() {
        let mut iv = Intervals::new();
        iv.insert(u128::MAX, u128::MAX);
        iv.insert(0, 0);
        assert!(iv.remove(u128::MAX));
        assert!(iv.remove(0));
        assert_eq!(iv.count(), 0);
        // (The count of all 2^128 keys does not fit; pools never hold ::/0.)
        iv.insert(1, u128::MAX - 1);
        iv.insert(u128::MAX, u128::MAX);
        assert_eq!(iv.fragments(), 1);
        assert!(iv.remove(u128::MAX));
        assert!(iv.remove(1));
        assert_eq!(iv.iter().collect::<Vec<_>>(), vec![(2, u128::MAX - 1)]);
    }

    /// Every operation agrees with a plain set of keys.
    #[test]
    fn matches_a_reference_set() {
        let mut iv = Intervals::new();
        let mut set = alloc::collections::BTreeSet::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = u128::from(x % 200);
            match x % 5 {
                0 | 1 => {
                    assert_eq!(iv.remove(k), set.remove(&k));
                }
                2 => {
                    let e = k + u128::from(x >> 40) % 4;
                    let want = (k..=e).filter(|v| set.remove(v)).count() as u128;
                    assert_eq!(iv.remove_range(k, e), want);
                }
                _ => {
                    if !set.contains(&k) {
                        iv.insert(k, k);
                        set.insert(k);
                    }
                }
            }
            assert_eq!(iv.count(), set.len() as u128);
            assert_eq!(iv.first(), set.first().copied());
            assert_eq!(iv.next_at_or_after(k), set.range(k..).next().copied());
            assert_eq!(iv.contains(k), set.contains(&k));
            let gaps: u128 = iv.gaps(k, k + 9).iter().map(|(a, b)| b - a + 1).sum();
            assert_eq!(gaps, 10 - set.range(k..=k + 9).count() as u128);
        }
        let mut prev: Option<u128> = None;
        for (s, e) in iv.iter() {
            assert!(s <= e && prev.is_none_or(|p| s > p + 1));
            prev = Some(e);
        }
    }
}
