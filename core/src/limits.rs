//! Attempt counters for rate limits and brute-force back-off: a fixed window per key, and
//! for password guessing a lock-out that doubles with each strike; and leases for caps on
//! concurrent work. Pure: the caller owns the clock and the storage (a Durable Object per
//! key in the Worker).

use serde::{Deserialize, Serialize};

/// What a key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Attempts allowed per window.
    pub limit: u32,
    pub window_ms: i64,
    /// Whether each lock-out doubles the next one (failed logins) or only waits out the
    /// window (sign-ups, tokens).
    pub backoff: bool,
}

/// The longest lock-out back-off can reach.
pub const MAX_LOCKOUT_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub window_start: i64,
    pub count: u32,
    /// Lock-outs since the last success (back-off only).
    pub strikes: u32,
    pub blocked_until: i64,
}

impl Counter {
    /// Whether an attempt may go ahead at `now`; if not, how many ms until it may.
    pub fn check(&self, now: i64) -> Result<(), i64> {
        if self.blocked_until > now {
            Err(self.blocked_until - now)
        } else {
            Ok(())
        }
    }

    /// Counts one attempt that went ahead. Reaching the limit locks the key: until the window
    /// ends, or, with back-off, for `window × 2^(strikes-1)`.
    pub fn record(&mut self, policy: &Policy, now: i64) {
        if now >= self.window_start + policy.window_ms || now < self.window_start {
            self.window_start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        if self.count < policy.limit.max(1) {
            return;
        }
        self.blocked_until = if policy.backoff {
            self.strikes = self.strikes.saturating_add(1);
            let factor = 1i64 << (self.strikes - 1).min(20);
            now + policy.window_ms.saturating_mul(factor).min(MAX_LOCKOUT_MS)
        } else {
            self.window_start + policy.window_ms
        };
        // The next window starts when the lock-out ends.
        self.window_start = self.blocked_until;
        self.count = 0;
    }

    /// `check`, then `record` if allowed: one attempt at a key where every attempt counts.
    pub fn hit(&mut self, policy: &Policy, now: i64) -> Result<(), i64> {
        self.check(now)?;
        self.record(policy, now);
        Ok(())
    }

    /// A success (the right password): the slate is wiped, strikes included.
    pub fn reset(&mut self) {
        *self = Counter::default();
    }
}

/// Slots held for a while, e.g. an org's running generations: each holder (a project) takes
/// one, renews it while it works and gives it back when done; a holder that vanished (an
/// evicted or crashed room) loses its slot when the lease runs out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    /// Holder → when its lease ends (ms).
    pub held: std::collections::BTreeMap<String, i64>,
}

impl Leases {
    /// Takes or renews `holder`'s slot. Refused (with the number held) when `cap` others
    /// hold one.
    pub fn acquire(&mut self, holder: &str, cap: u32, ttl_ms: i64, now: i64) -> Result<(), usize> {
        self.held.retain(|_, until| *until > now);
        if !self.held.contains_key(holder) && self.held.len() >= cap as usize {
            return Err(self.held.len());
        }
        self.held.insert(holder.to_owned(), now + ttl_ms);
        Ok(())
    }

    pub fn release(&mut self, holder: &str) {
        self.held.remove(holder);
    }
}

/// Whole seconds for `Retry-After`, never 0.
pub fn retry_after_secs(ms: i64) -> u64 {
    (ms.max(1) as u64).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: Policy = Policy {
        limit: 10,
        window_ms: 1000,
        backoff: true,
    };

    #[test]
    fn the_limit_locks_until_the_window_ends_then_backs_off() {
        let mut c = Counter::default();
        for i in 0..10 {
            assert_eq!(c.check(i), Ok(()), "attempt {i}");
            c.record(&LOGIN, i);
        }
        assert_eq!(c.check(10), Err(999));
        assert_eq!(c.check(1009), Ok(()));
        // A second lock-out lasts twice as long.
        for i in 0..10 {
            c.record(&LOGIN, 1009 + i);
        }
        assert_eq!(c.check(1018), Err(2000));
        c.reset();
        assert_eq!(c.check(1019), Ok(()));
        assert_eq!(c.strikes, 0);
    }

    #[test]
    fn without_backoff_the_window_is_the_wait() {
        let p = Policy {
            limit: 3,
            window_ms: 60_000,
            backoff: false,
        };
        let mut c = Counter::default();
        assert!(c.hit(&p, 0).is_ok());
        assert!(c.hit(&p, 10).is_ok());
        assert!(c.hit(&p, 20).is_ok());
        assert_eq!(c.hit(&p, 30), Err(59_970));
        assert!(c.hit(&p, 60_000).is_ok());
    }

    #[test]
    fn an_old_window_is_forgotten() {
        let p = Policy {
            limit: 2,
            window_ms: 100,
            backoff: false,
        };
        let mut c = Counter::default();
        c.record(&p, 0);
        c.record(&p, 500);
        assert_eq!(c.check(501), Ok(()));
        assert_eq!(c.count, 1);
    }

    #[test]
    fn leases_cap_holders_renew_and_expire() {
        let mut l = Leases::default();
        assert_eq!(l.acquire("p1", 2, 100, 0), Ok(()));
        assert_eq!(l.acquire("p2", 2, 100, 10), Ok(()));
        assert_eq!(l.acquire("p3", 2, 100, 20), Err(2));
        // Renewing one's own slot is always allowed.
        assert_eq!(l.acquire("p1", 2, 100, 50), Ok(()));
        l.release("p2");
        assert_eq!(l.acquire("p3", 2, 100, 60), Ok(()));
        // p1's lease (renewed to 150) runs out; p3's (160) is still held.
        assert_eq!(l.acquire("p4", 2, 100, 155), Ok(()));
        assert_eq!(l.acquire("p5", 2, 100, 155), Err(2));
    }

    #[test]
    fn lockouts_are_capped_and_retry_after_rounds_up() {
        let p = Policy {
            limit: 1,
            window_ms: MAX_LOCKOUT_MS,
            backoff: true,
        };
        let mut c = Counter::default();
        for i in 0..40 {
            c.blocked_until = 0;
            c.record(&p, i);
        }
        assert!(c.blocked_until - 39 <= MAX_LOCKOUT_MS);
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1001), 2);
        assert_eq!(retry_after_secs(0), 1);
    }
}
