//! A small bounded least-recently-used map: the 1000-entry de-duplication
//! cache of add-file events and the 100-entry description cache.
//!
//! Both caches are tiny, so the order is kept in a `BTreeMap` keyed by a use
//! counter: O(log n) per operation, no unsafe linked lists, and the memory
//! is exactly bounded by the capacity.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// A map that holds at most `capacity` entries and forgets the least
/// recently used one when a new one would exceed it.
#[derive(Debug, Clone)]
pub struct Lru<K, V> {
    capacity: usize,
    tick: u64,
    map: HashMap<K, (V, u64)>,
    order: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty map for at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Lru<K, V> {
        Lru {
            capacity: capacity.max(1),
            tick: 0,
            map: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The value of `key`, marking it most recently used.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.tick += 1;
        let tick = self.tick;
        let (value, used) = self.map.get_mut(key)?;
        let old = std::mem::replace(used, tick);
        if let Some(k) = self.order.remove(&old) {
            self.order.insert(tick, k);
        }
        Some(value)
    }

    /// The value of `key`, without touching the order.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    /// Inserts or replaces `key` as the most recently used entry, evicting
    /// the least recently used ones beyond the capacity.
    pub fn insert(&mut self, key: K, value: V) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, old)) = self.map.insert(key.clone(), (value, tick)) {
            self.order.remove(&old);
        }
        self.order.insert(tick, key);
        while self.map.len() > self.capacity {
            match self.order.pop_first() {
                Some((_, k)) => {
                    self.map.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (value, used) = self.map.remove(key)?;
        self.order.remove(&used);
        Some(value)
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get_mut(&"a"), Some(&mut 1)); // a is now newest
        lru.insert("c", 3);
        assert_eq!(lru.peek(&"b"), None);
        assert_eq!(lru.peek(&"a"), Some(&1));
        assert_eq!(lru.peek(&"c"), Some(&3));
        assert_eq!(lru.len(), 2);
    }

    #[test]
    fn replace_and_remove_keep_the_bound() {
        let mut lru = Lru::new(3);
        for i in 0..10 {
            lru.insert(i % 4, i);
        }
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.remove(&1), Some(9));
        assert_eq!(lru.remove(&1), None);
        assert_eq!(lru.len(), 2);
        lru.clear();
        assert!(lru.is_empty());
        lru.insert(7, 7);
        assert_eq!(lru.peek(&7), Some(&7));
    }

    #[test]
    fn peek_does_not_refresh() {
        let mut lru = Lru::new(2);
        lru.insert(1, ());
        lru.insert(2, ());
        assert!(lru.peek(&1).is_some());
        lru.insert(3, ());
        assert!(lru.peek(&1).is_none());
    }
}
