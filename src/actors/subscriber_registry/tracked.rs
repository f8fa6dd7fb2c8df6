//! The identities the registry follows, in memory: by address, and by the height of their
//! version, so that "whose version is exactly `n` blocks old" costs what it returns, not a
//! pass over every subscriber.

use std::collections::{BTreeSet, HashMap};

use crate::domain::Height;
use crate::store::identities::IdentityVersion;

/// The latest version of every identity that lists the pool's address, keyed by address,
/// with an index by version height that every change keeps in step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tracked {
    by_address: HashMap<String, IdentityVersion>,
    by_height: BTreeSet<(Height, String)>,
}

impl Tracked {
    /// Sets `address`'s version; returns the one it replaces.
    pub fn insert(&mut self, address: String, v: IdentityVersion) -> Option<IdentityVersion> {
        self.by_height.insert((v.height, address.clone()));
        let old = self.by_address.insert(address.clone(), v);
        if let Some(o) = &old {
            self.unindex(o.height, address);
        }
        old
    }

    /// Stops following `address`; returns its version.
    pub fn remove(&mut self, address: &str) -> Option<IdentityVersion> {
        let old = self.by_address.remove(address);
        if let Some(o) = &old {
            self.unindex(o.height, address.to_owned());
        }
        old
    }

    /// Drops `(height, address)` from the index unless the current version is at `height`
    /// (an insert that replaced a version of the same height keeps its entry).
    fn unindex(&mut self, height: Height, address: String) {
        if self.by_address.get(&address).map(|v| v.height) != Some(height) {
            self.by_height.remove(&(height, address));
        }
    }

    pub fn get(&self, address: &str) -> Option<&IdentityVersion> {
        self.by_address.get(address)
    }

    pub fn contains_key(&self, address: &str) -> bool {
        self.by_address.contains_key(address)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.by_address.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &IdentityVersion> {
        self.by_address.values()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    /// The addresses whose version was mined at `height`.
    pub fn versions_at(&self, height: Height) -> impl Iterator<Item = &String> {
        self.by_height
            .range((height, String::new())..)
            .take_while(move |(h, _)| *h == height)
            .map(|(_, a)| a)
    }
}

impl FromIterator<IdentityVersion> for Tracked {
    fn from_iter<I: IntoIterator<Item = IdentityVersion>>(iter: I) -> Tracked {
        let mut t = Tracked::default();
        for v in iter {
            t.insert(v.facts.address.clone(), v);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::actors::subscriber_registry::tests::version;

    fn at(t: &Tracked, height: Height) -> Vec<&str> {
        t.versions_at(height).map(String::as_str).collect()
    }

    #[test]
    fn the_height_index_follows_every_change() {
        let mut t: Tracked = [version("a", 5), version("b", 5), version("c", 7)]
            .into_iter()
            .collect();
        assert_eq!(at(&t, 5), ["a", "b"]);
        assert_eq!(at(&t, 7), ["c"]);
        assert!(at(&t, 6).is_empty());

        // A new version moves the identity to its height.
        assert_eq!(t.insert("a".into(), version("a", 7)).unwrap().height, 5);
        assert_eq!(at(&t, 5), ["b"]);
        assert_eq!(at(&t, 7), ["a", "c"]);

        // The same height again (a version recorded again) keeps it there.
        t.insert("c".into(), version("c", 7));
        assert_eq!(at(&t, 7), ["a", "c"]);

        // Removed: gone from both.
        assert_eq!(t.remove("b").unwrap().height, 5);
        assert!(at(&t, 5).is_empty());
        assert!(t.remove("b").is_none());
        assert_eq!(t.len(), 2);

        // What is left equals the same versions built afresh.
        let fresh: Tracked = [version("a", 7), version("c", 7)].into_iter().collect();
        assert_eq!(t, fresh);
    }
}
