//! Rendered pages kept until something they may show changes.
//!
//! A cache holds pages by key, each with the generation it was rendered in.
//! Anything that may change what a page shows bumps the generation, after
//! its change is committed; a page is served only while its generation is
//! current and it is younger than the cache's freshness bound. The bound
//! covers what the hub does not hear of (a CLI command on the same database,
//! another hub on the same PostgreSQL) and text that ages with the clock.
//!
//! Correctness rests on one order: a reader takes the generation *before* it
//! reads the rows, and a writer bumps it *after* its commit. A page rendered
//! from rows older than a commit is then stored under an older generation
//! than the one the writer left, and never served.

use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rendered pages by key.
pub struct PageCache {
    generation: AtomicU64,
    fresh: Duration,
    max_pages: usize,
    pages: Mutex<HashMap<String, (u64, Instant, Bytes)>>,
}

impl PageCache {
    /// Pages stay at most `fresh`; at most `max_pages` are kept (beyond it
    /// all are dropped, which only costs renders).
    pub fn new(fresh: Duration, max_pages: usize) -> Self {
        Self {
            generation: AtomicU64::new(0),
            fresh,
            max_pages,
            pages: Mutex::new(HashMap::new()),
        }
    }

    /// The generation to render in: read it before reading any row.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Something a page may show changed (and is committed): every page is stale.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The page for `key`, if rendered in `generation` and still fresh.
    pub fn get(&self, key: &str, generation: u64) -> Option<Bytes> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .get(key)
            .filter(|(g, at, _)| *g == generation && at.elapsed() < self.fresh)
            .map(|(_, _, b)| b.clone())
    }

    /// Keep `page` for `key`, as rendered in `generation`.
    pub fn put(&self, key: String, generation: u64, page: Bytes) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if pages.len() >= self.max_pages && !pages.contains_key(&key) {
            pages.clear();
        }
        pages.insert(key, (generation, Instant::now(), page));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_rendered_before_a_change_is_never_served_after_it() {
        let c = PageCache::new(Duration::from_secs(60), 2);
        // A reader takes the generation, a writer commits and bumps, the
        // reader stores what it read before the commit.
        let g = c.generation();
        c.invalidate();
        c.put("a".into(), g, Bytes::from_static(b"old"));
        assert_eq!(c.get("a", c.generation()), None);
        // Rendered after the change: served until the next one.
        let g = c.generation();
        c.put("a".into(), g, Bytes::from_static(b"new"));
        assert_eq!(c.get("a", c.generation()).as_deref(), Some(&b"new"[..]));
        c.invalidate();
        assert_eq!(c.get("a", c.generation()), None);
    }

    #[test]
    fn pages_expire_and_the_bound_holds() {
        let c = PageCache::new(Duration::ZERO, 2);
        let g = c.generation();
        c.put("a".into(), g, Bytes::from_static(b"x"));
        assert_eq!(c.get("a", g), None, "older than the freshness bound");
        let c = PageCache::new(Duration::from_secs(60), 2);
        for k in ["a", "b", "c"] {
            c.put(k.into(), g, Bytes::from_static(b"x"));
        }
        assert!(c.get("c", g).is_some());
        assert!(c.get("a", g).is_none(), "dropped at the bound");
        assert!(c.pages.lock().unwrap().len() <= 2);
    }
}
