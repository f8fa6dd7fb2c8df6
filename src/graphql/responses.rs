//! Whole answers to the same anonymous query, shared until anything they could show changes.
//!
//! A dashboard polls one query over and over, and so do a thousand of them: between two
//! blocks the answer to the same body is the same. An answer is kept here when it is shareable:
//! a single query operation (no mutation, no `checkIdentity` — nothing rate-limited or asked
//! of the daemon), sent without an admin token (`Authorization: Bearer`), answered without an
//! error. Its key
//! is the request body's bytes under a [`CacheVersion`]: the write version of every chain's
//! books (`store::lease::versions`, changed by every write the API can show, see
//! [`crate::graphql::snapshot`]) and the generation of the daemon health state (the tip
//! height, the sync state). A request reads the version first and is answered from here only
//! under exactly that version; an answer is stored under the version read before it was
//! computed, so it is never older than its key. Any change empties the cache.
//!
//! A client cannot grow it without bound: bodies over [`MAX_KEY_BYTES`] and answers over
//! [`MAX_ANSWER_BYTES`] are not kept, and nothing more is kept once [`MAX_ENTRIES`] answers or
//! [`MAX_TOTAL_BYTES`] are held (until the next change).

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::web::Bytes;

use crate::health::Health;
use crate::store::{self, StoreResult};

/// The longest request body that is looked up or kept.
pub const MAX_KEY_BYTES: usize = 8 * 1024;
/// The largest answer that is kept.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// How many answers are kept at most.
pub const MAX_ENTRIES: usize = 4096;
/// How many bytes of bodies and answers are kept at most.
pub const MAX_TOTAL_BYTES: usize = 32 * 1024 * 1024;

/// What a kept answer depends on besides its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheVersion {
    /// `(chain, epoch, writes)` of every chain's lease, by chain name.
    books: Vec<(String, i64, i64)>,
    /// [`Health::generation`].
    health: u64,
}

impl CacheVersion {
    /// The version now, or `None` when a configured chain's books are not versioned yet (no
    /// instance took its lease): nothing is shared then.
    pub async fn read(
        db: &sea_orm::DatabaseConnection,
        health: &Health,
        chains: usize,
    ) -> StoreResult<Option<CacheVersion>> {
        // The health generation first: the state read after it is at least as new.
        let health = health.generation();
        let books = store::lease::versions(db).await?;
        Ok((books.len() >= chains).then_some(CacheVersion { books, health }))
    }

    /// Whether `self` is `other` or came after it (every part at least as high).
    fn at_least(&self, other: &CacheVersion) -> bool {
        self.health >= other.health
            && self.books.len() >= other.books.len()
            && other.books.iter().all(|(chain, epoch, writes)| {
                self.books
                    .iter()
                    .any(|(c, e, w)| c == chain && (e, w) >= (epoch, writes))
            })
    }
}

#[derive(Default)]
struct Kept {
    version: Option<CacheVersion>,
    answers: HashMap<Bytes, Bytes>,
    bytes: usize,
}

/// The kept answers of the current version.
#[derive(Default)]
pub struct ResponseCache {
    kept: Mutex<Kept>,
}

impl ResponseCache {
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer kept for `body` under exactly `version`.
    pub fn get(&self, version: &CacheVersion, body: &[u8]) -> Option<Bytes> {
        let kept = self.kept();
        if kept.version.as_ref() != Some(version) {
            return None;
        }
        kept.answers.get(body).cloned()
    }

    /// Keeps `answer` for `body`, computed after `version` was read. An answer of a version
    /// older than the one held is dropped; a newer version empties what is held.
    pub fn put(&self, version: CacheVersion, body: Bytes, answer: Bytes) {
        if body.len() > MAX_KEY_BYTES || answer.len() > MAX_ANSWER_BYTES {
            return;
        }
        let mut kept = self.kept();
        match &kept.version {
            Some(held) if *held == version => {}
            Some(held) if !version.at_least(held) => return,
            _ => {
                *kept = Kept {
                    version: Some(version),
                    ..Kept::default()
                };
            }
        }
        let size = body.len() + answer.len();
        if kept.answers.len() >= MAX_ENTRIES || kept.bytes + size > MAX_TOTAL_BYTES {
            return;
        }
        if kept.answers.insert(body, answer).is_none() {
            kept.bytes += size;
        }
    }

    /// How many answers are held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.kept().answers.len()
    }

    /// Whether no answer is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(writes: i64, health: u64) -> CacheVersion {
        CacheVersion {
            books: vec![("VRSC".to_owned(), 1, writes)],
            health,
        }
    }

    #[test]
    fn an_answer_is_served_only_under_the_version_it_was_kept_for() {
        let cache = ResponseCache::default();
        let body = Bytes::from_static(b"{\"query\":\"{ pool { tipHeight } }\"}");
        cache.put(v(5, 1), body.clone(), Bytes::from_static(b"five"));
        assert_eq!(cache.get(&v(5, 1), &body).as_deref(), Some(&b"five"[..]));
        assert_eq!(cache.get(&v(6, 1), &body), None, "a write of the books");
        assert_eq!(
            cache.get(&v(5, 2), &body),
            None,
            "a change of the daemon's state"
        );
        // A slow request that read version 4 cannot replace what version 5 holds.
        cache.put(v(4, 1), body.clone(), Bytes::from_static(b"four"));
        assert_eq!(cache.get(&v(5, 1), &body).as_deref(), Some(&b"five"[..]));
        // A newer version empties the cache.
        cache.put(
            v(6, 1),
            Bytes::from_static(b"other"),
            Bytes::from_static(b"six"),
        );
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&v(6, 1), &body), None);
    }

    #[test]
    fn a_client_cannot_grow_it_past_its_bounds() {
        let cache = ResponseCache::default();
        let big = Bytes::from(vec![b' '; MAX_KEY_BYTES + 1]);
        cache.put(v(1, 0), big.clone(), Bytes::from_static(b"x"));
        assert_eq!(cache.get(&v(1, 0), &big), None);
        for i in 0..MAX_ENTRIES + 10 {
            cache.put(
                v(1, 0),
                Bytes::from(i.to_string()),
                Bytes::from_static(b"x"),
            );
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert_eq!(
            cache.get(&v(1, 0), (MAX_ENTRIES + 5).to_string().as_bytes()),
            None
        );
    }
}
