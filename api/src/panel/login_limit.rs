//! Wrong master keys are counted per client address (the login form and `X-Admin-Key` share
//! one count), so a flood of guesses is answered 429 instead of being verified at speed. The
//! right key is checked first and always accepted: other clients' failures, even from the same
//! address, never lock the admin out. What keeps the key from being guessed is its length
//! (config refuses short keys); the limit bounds and flags a flood.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

/// Failed attempts allowed in one window before the address must wait for the window's end.
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most in one window; the rest share one count (see `Bucket::Overflow`).
pub const MAX_TRACKED: usize = 10_000;

/// The client address of a request: the TCP peer, or, when the peer is one of the configured
/// trusted proxies, the nearest address in `X-Forwarded-For` that is not itself a trusted
/// proxy (what the outermost trusted proxy saw). Untrusted peers cannot pick their address.
pub fn client_address(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|axum::extract::ConnectInfo(address)| address.ip())?;
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(address) if is_trusted(address, trusted) => continue,
            Ok(address) => return Some(address),
            // A hop we cannot read: stop believing the header there.
            Err(_) => return Some(peer),
        }
    }
    Some(peer)
}

fn is_trusted(address: IpAddr, trusted: &[IpNet]) -> bool {
    let address = canonical(address);
    trusted.iter().any(|net| net.contains(&address))
}

/// IPv4-mapped IPv6 addresses are their IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// What one count covers: an IPv4 address, an IPv6 /64 (one host can rotate through its
/// whole /64 for free), the requests without an address, or every address past the tracking
/// limit together (rotating addresses then only joins one shared, quickly-limited count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Address(IpAddr),
    Unknown,
    Overflow,
}

fn bucket_of(client: Option<IpAddr>) -> Bucket {
    match client.map(canonical) {
        None => Bucket::Unknown,
        Some(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            Bucket::Address(IpAddr::V6(Ipv6Addr::from(prefix)))
        }
        Some(v4) => Bucket::Address(v4),
    }
}

/// Fixed windows: every count is forgotten when a window ends, so memory holds one window's
/// addresses at most and no failure scans the map.
struct Window {
    started: Instant,
    failures: HashMap<Bucket, u32>,
    /// Wrong passwords per account email (bounded like the addresses: past the bound, all
    /// further emails share one count).
    accounts: HashMap<String, u32>,
}

pub struct LoginLimiter {
    max_failures: u32,
    window: Mutex<Window>,
    /// Signs device cookies: a browser that logged in to an account before.
    device_key: [u8; 32],
}

/// The cookie that marks a browser which logged in to an account before.
pub const DEVICE_COOKIE: &str = "saas_admin_device";
/// Wrong passwords for one account, from anywhere, per window before further attempts without
/// its device cookie are refused unchecked.
pub const MAX_ACCOUNT_FAILURES: u32 = 10;

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(MAX_FAILURES)
    }
}

impl LoginLimiter {
    pub fn new(max_failures: u32) -> Self {
        Self {
            max_failures,
            window: Mutex::new(Window {
                started: Instant::now(),
                failures: HashMap::new(),
                accounts: HashMap::new(),
            }),
            device_key: rand::random(),
        }
    }

    /// Device cookies signed with `key` (derived from the master key, so every replica and
    /// restart recognises them).
    pub fn with_device_key(mut self, key: [u8; 32]) -> Self {
        self.device_key = key;
        self
    }

    /// The device cookie's value for a browser that just logged in as `email`.
    pub fn device_token(&self, email: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.device_key).expect("any length");
        mac.update(b"device:");
        mac.update(email.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `token` is the device cookie of a browser that logged in as `email` before.
    pub fn knows_device(&self, token: &str, email: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.device_token(email)
            .as_bytes()
            .ct_eq(token.as_bytes())
            .into()
    }

    fn roll(window: &mut Window, now: Instant) {
        if now >= window.started + WINDOW {
            window.started = now;
            window.failures.clear();
            window.accounts.clear();
        }
    }

    /// The count `client` falls in: its own, or once the window tracks as many addresses as it
    /// may, the one shared by every further address.
    fn address_bucket(window: &Window, client: Option<IpAddr>) -> Bucket {
        let bucket = bucket_of(client);
        if !window.failures.contains_key(&bucket) && window.failures.len() >= MAX_TRACKED {
            Bucket::Overflow
        } else {
            bucket
        }
    }

    /// Counts one failure from `client`; returns the address's count in this window.
    fn count_address(window: &mut Window, client: Option<IpAddr>) -> u32 {
        let bucket = Self::address_bucket(window, client);
        let count = window.failures.entry(bucket).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    fn account_key(window: &Window, email: &str) -> String {
        if window.accounts.contains_key(email) || window.accounts.len() < MAX_TRACKED {
            email.to_owned()
        } else {
            String::new()
        }
    }

    /// `Err(wait)` when the address or the account has failed more than allowed this window:
    /// the attempt is refused without checking the password.
    pub fn over_limit(
        &self,
        client: Option<IpAddr>,
        email: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        Self::roll(&mut window, now);
        let wait = (window.started + WINDOW).saturating_duration_since(now);
        let by_address = window
            .failures
            .get(&Self::address_bucket(&window, client))
            .copied()
            .unwrap_or(0);
        let key = Self::account_key(&window, email);
        let by_account = window.accounts.get(&key).copied().unwrap_or(0);
        if by_address >= self.max_failures || by_account >= MAX_ACCOUNT_FAILURES {
            Err(wait)
        } else {
            Ok(())
        }
    }

    /// Counts a wrong password for `email` from `client`.
    pub fn failed_login(&self, client: Option<IpAddr>, email: &str, now: Instant) {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        Self::roll(&mut window, now);
        Self::count_address(&mut window, client);
        let key = Self::account_key(&window, email);
        let count = window.accounts.entry(key).or_insert(0);
        *count = count.saturating_add(1);
    }

    /// Counts a wrong key from `client`. `Err(wait)` when the address has now failed more
    /// than allowed this window: answer 429 and tell it to wait `wait`.
    pub fn failed(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        Self::roll(&mut window, now);
        if Self::count_address(&mut window, client) > self.max_failures {
            Err((window.started + WINDOW).saturating_duration_since(now))
        } else {
            Ok(())
        }
    }

    /// Addresses counted in the current window (for tests of the memory bound).
    pub fn tracked(&self) -> usize {
        self.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failures
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_address_waits_after_too_many_failures_and_only_that_address() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.failed(ip("10.0.0.1"), t0).is_ok());
        }
        let wait = limiter
            .failed(ip("10.0.0.1"), t0 + Duration::from_secs(10))
            .unwrap_err();
        assert!(wait <= WINDOW - Duration::from_secs(10), "{wait:?}");
        assert!(limiter.failed(ip("10.0.0.2"), t0).is_ok());
        // The window ends, and the address may try again.
        assert!(limiter.failed(ip("10.0.0.1"), t0 + WINDOW * 2).is_ok());
    }

    #[test]
    fn one_ipv6_host_is_one_count_across_its_slash_64() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        let refused = (0..=MAX_FAILURES)
            .map(|i| limiter.failed(ip(&format!("2001:db8:1:2::{i:x}")), t0))
            .filter(Result::is_err)
            .count();
        assert_eq!(refused, 1);
        assert!(limiter.failed(ip("2001:db8:1:3::1"), t0).is_ok());
    }

    #[test]
    fn rotating_addresses_keeps_memory_bounded_and_ends_in_one_shared_count() {
        let limiter = LoginLimiter::new(3);
        let t0 = Instant::now();
        let mut refused = 0;
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let address = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            if limiter.failed(Some(IpAddr::V4(address)), t0).is_err() {
                refused += 1;
            }
        }
        assert!(
            limiter.tracked() <= MAX_TRACKED + 1,
            "{}",
            limiter.tracked()
        );
        // Past the limit every new address shares the overflow count: all but 3 are refused.
        assert!(refused >= 100 - 3, "{refused}");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.1.0.0/16".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "1.2.3.4, 5.6.7.8, 10.1.0.9".parse().unwrap(),
        );
        let from = |peer: &str| {
            let mut extensions = Extensions::new();
            extensions.insert(axum::extract::ConnectInfo::<SocketAddr>(
                format!("{peer}:1234").parse().unwrap(),
            ));
            client_address(&extensions, &headers, &trusted)
        };
        // The nearest untrusted hop, not the first (which the client itself wrote).
        assert_eq!(from("10.1.2.3"), ip("5.6.7.8"));
        assert_eq!(from("192.168.9.9"), ip("192.168.9.9"));
        assert_eq!(
            client_address(&Extensions::new(), &headers, &trusted),
            None,
            "no peer address: the unknown bucket"
        );
    }

    #[test]
    fn past_the_tracking_bound_password_guesses_share_one_limited_count() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for n in 0..MAX_TRACKED as u32 {
            let address = std::net::Ipv4Addr::from(0x0a00_0000 + n);
            limiter.failed_login(Some(address.into()), "a@example.com", now);
        }
        // A fresh address now counts in the shared overflow count, and is limited by it.
        let late = ip("192.0.2.99");
        assert!(limiter.over_limit(late, "b@example.com", now).is_ok());
        for _ in 0..MAX_FAILURES {
            limiter.failed_login(late, "b@example.com", now);
        }
        assert!(limiter.over_limit(late, "b@example.com", now).is_err());
        assert_eq!(
            limiter.tracked(),
            MAX_TRACKED + 1,
            "the bound plus the shared count"
        );
    }
}
