//! Failed admin logins are limited per client address, so the master key cannot be guessed
//! at speed, through the login form or the `X-Admin-Key` header (one count for both).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed in one window before the address must wait for the window's end.
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; past this, finished windows are forgotten first.
const MAX_TRACKED: usize = 10_000;

/// The address failures are counted against; absent when the router is served without
/// connection info (then every client shares one count).
pub fn client_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|axum::extract::ConnectInfo(address)| address.ip())
}

pub struct LoginLimiter {
    max_failures: u32,
    failures: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(MAX_FAILURES)
    }
}

impl LoginLimiter {
    pub fn new(max_failures: u32) -> Self {
        Self {
            max_failures,
            failures: Mutex::default(),
        }
    }

    /// `Err(wait)` when `client` has failed too often and must wait `wait` before trying again.
    pub fn check(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let failures = self.failures.lock().expect("login limiter lock");
        match failures.get(&client) {
            Some(&(start, count)) if count >= self.max_failures && now < start + WINDOW => {
                Err(start + WINDOW - now)
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, client: Option<IpAddr>, now: Instant) {
        let mut failures = self.failures.lock().expect("login limiter lock");
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (start, _)| now < *start + WINDOW);
        }
        let entry = failures.entry(client).or_insert((now, 0));
        if now >= entry.0 + WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    pub fn succeeded(&self, client: Option<IpAddr>) {
        let mut failures = self.failures.lock().expect("login limiter lock");
        // Most calls find nothing to clear: the common case stays a lookup.
        if !failures.is_empty() {
            failures.remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_too_many_failures_and_only_that_address() {
        let limiter = LoginLimiter::default();
        let a = Some("10.0.0.1".parse().unwrap());
        let b = Some("10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.check(a, t0).is_ok());
            limiter.failed(a, t0);
        }
        let wait = limiter.check(a, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, WINDOW - Duration::from_secs(10));
        assert!(limiter.check(b, t0).is_ok());
        // The window ends, and the address may try again.
        assert!(limiter.check(a, t0 + WINDOW).is_ok());
        limiter.failed(a, t0 + WINDOW);
        assert!(limiter.check(a, t0 + WINDOW).is_ok());
    }

    #[test]
    fn a_success_clears_the_count() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed(None, t0);
        }
        limiter.succeeded(None);
        limiter.failed(None, t0);
        assert!(limiter.check(None, t0).is_ok());
    }
}
