//! Login throttling, per account and per client address (pure, clock-injected).
//!
//! Each failed sign-in is remembered for `window_ms`. When a key has reached
//! its limit within the window it is locked until its oldest counted failure
//! leaves the window: a guesser gets `limit` tries per window, and a
//! colleague who mistyped waits minutes, not forever. The state lives in
//! memory: a restart forgets it, which gives a guesser at most one more
//! window's worth of tries per restart.

use std::collections::{HashMap, VecDeque};

/// What is being throttled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// An account name as typed (lower-cased), whether or not it exists, so
    /// the answer does not reveal which names exist.
    Account(String),
    /// A client address.
    Ip(String),
}

/// Failed sign-ins per key.
#[derive(Debug)]
pub struct Throttle {
    account_limit: usize,
    ip_limit: usize,
    window_ms: i64,
    fails: HashMap<Key, VecDeque<i64>>,
}

impl Throttle {
    /// A throttle allowing `account_limit` and `ip_limit` failures per `window_ms`.
    pub fn new(account_limit: u32, ip_limit: u32, window_ms: i64) -> Self {
        Self {
            account_limit: account_limit.max(1) as usize,
            ip_limit: ip_limit.max(1) as usize,
            window_ms: window_ms.max(1),
            fails: HashMap::new(),
        }
    }

    fn limit(&self, k: &Key) -> usize {
        match k {
            Key::Account(_) => self.account_limit,
            Key::Ip(_) => self.ip_limit,
        }
    }

    fn prune(&mut self, now_ms: i64) {
        let w = self.window_ms;
        self.fails.retain(|_, q| {
            while q.front().is_some_and(|&t| t <= now_ms - w) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }

    /// `Err(wait_ms)` when any of `keys` is locked at `now_ms`.
    pub fn check(&mut self, keys: &[Key], now_ms: i64) -> Result<(), i64> {
        self.prune(now_ms);
        let mut wait = 0;
        for k in keys {
            if let Some(q) = self.fails.get(k) {
                if q.len() >= self.limit(k) {
                    let until = q.front().copied().unwrap_or(now_ms) + self.window_ms;
                    wait = wait.max(until - now_ms);
                }
            }
        }
        if wait > 0 {
            Err(wait)
        } else {
            Ok(())
        }
    }

    /// Count a failed sign-in against each of `keys`.
    pub fn fail(&mut self, keys: &[Key], now_ms: i64) {
        for k in keys {
            let limit = self.limit(k);
            let q = self.fails.entry(k.clone()).or_default();
            q.push_back(now_ms);
            // Attempts while locked are refused before they are counted, so
            // the queue never grows past its limit.
            while q.len() > limit {
                q.pop_front();
            }
        }
    }

    /// A good sign-in clears the account's failures (not the address's: one
    /// right password must not reset a guesser working through many accounts).
    pub fn succeed(&mut self, account: &Key) {
        self.fails.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(s: &str) -> Key {
        Key::Account(s.into())
    }
    fn ip(s: &str) -> Key {
        Key::Ip(s.into())
    }

    #[test]
    fn an_account_locks_after_its_limit_and_unlocks_when_the_window_passes() {
        let mut t = Throttle::new(3, 100, 60_000);
        let keys = [acct("anna"), ip("10.0.0.1")];
        for i in 0..3 {
            assert!(t.check(&keys, i * 1000).is_ok());
            t.fail(&keys, i * 1000);
        }
        assert_eq!(
            t.check(&keys, 3_000),
            Err(57_000),
            "locked until the first failure is a window old"
        );
        assert!(
            t.check(&[acct("bert"), ip("10.0.0.1")], 3_000).is_ok(),
            "another account is not locked"
        );
        assert!(
            t.check(&keys, 60_000).is_ok(),
            "the first failure has left the window"
        );
        t.fail(&keys, 60_000);
        assert!(
            t.check(&keys, 60_001).is_err(),
            "three failures inside the window again"
        );
    }

    #[test]
    fn an_address_locks_across_accounts_and_success_clears_only_the_account() {
        let mut t = Throttle::new(5, 4, 60_000);
        for (i, a) in ["a", "b", "c", "d"].into_iter().enumerate() {
            t.fail(&[acct(a), ip("1.2.3.4")], i as i64);
        }
        assert!(
            t.check(&[acct("e"), ip("1.2.3.4")], 10).is_err(),
            "one address guessing many accounts"
        );
        assert!(t.check(&[acct("e"), ip("5.6.7.8")], 10).is_ok());
        let mut t = Throttle::new(2, 100, 60_000);
        t.fail(&[acct("anna")], 0);
        t.succeed(&acct("anna"));
        t.fail(&[acct("anna")], 1);
        assert!(
            t.check(&[acct("anna")], 2).is_ok(),
            "success cleared the earlier failure"
        );
    }

    #[test]
    fn memory_stays_bounded_by_the_window() {
        let mut t = Throttle::new(5, 5, 1_000);
        for i in 0..10_000 {
            t.fail(&[ip(&format!("10.0.{}.{}", i / 256, i % 256))], i);
        }
        t.check(&[], 20_000).ok();
        assert!(t.fails.is_empty(), "old failures are forgotten");
    }
}
