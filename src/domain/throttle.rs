//! Sign-in throttling, the rules without the storage: how many failed
//! sign-ins a username and a client address may have within a window, how
//! long a lockout lasts (doubling with each repeated lockout, up to a cap),
//! and how a client address is counted. The state lives in the database
//! (`store::throttle`), so every instance sees the same counts.

use std::net::IpAddr;

/// The limits of failed sign-ins (their flags are in `app::Config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// Failed sign-ins one username may have within a window before it is locked.
    pub max_failures_per_username: i64,
    /// Failed sign-ins one client address may have within a window, over all
    /// usernames, before it is locked.
    pub max_failures_per_address: i64,
    /// The window failures are counted in, in seconds, from the first one.
    pub window_seconds: i64,
    /// The first lockout, in seconds; each further lockout of the same
    /// username or address doubles it.
    pub lockout_seconds: i64,
    /// The longest lockout, in seconds.
    pub max_lockout_seconds: i64,
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits {
            max_failures_per_username: 5,
            max_failures_per_address: 50,
            window_seconds: 15 * 60,
            lockout_seconds: 60,
            max_lockout_seconds: 3600,
        }
    }
}

impl SignInLimits {
    /// How many lockouts in a row double the first one before the cap is
    /// reached: from this many previous lockouts on, a lockout lasts
    /// [`SignInLimits::max_lockout_seconds`].
    pub fn doublings(&self) -> i64 {
        let (first, cap) = (self.lockout_seconds.max(1), self.max_lockout_seconds.max(1));
        let mut doublings = 0;
        while doublings < 62 && first.saturating_mul(1 << doublings) < cap {
            doublings += 1;
        }
        doublings
    }

    /// The length of a lockout after `previous` lockouts (what the store
    /// computes in SQL, written out for the reader and the tests).
    pub fn lockout_after(&self, previous: i64) -> i64 {
        if previous >= self.doublings() { self.max_lockout_seconds } else { self.lockout_seconds << previous }
    }
}

/// What one throttled subject (a username or an address) looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    /// Attempts charged in the current window.
    pub failures: i64,
    /// When the current window began (seconds).
    pub window_start: i64,
    /// No attempt is admitted before this time (seconds).
    pub locked_until: i64,
}

impl ThrottleState {
    /// Seconds until an attempt may be admitted again for a subject allowed
    /// `max` failures in `window` seconds, at `now`; `None` when it may be
    /// now. While attempts already admitted fill the window and none has
    /// failed yet, the answer is the end of the window (an upper bound: a
    /// lockout that follows is at most that long at first, and a right
    /// password ends the wait).
    pub fn retry_after(&self, max: i64, window: i64, now: i64) -> Option<i64> {
        if self.locked_until > now {
            return Some(self.locked_until - now);
        }
        let window_end = self.window_start + window;
        (self.failures >= max && window_end > now).then(|| (window_end - now).max(1))
    }
}

/// The address a sign-in comes from, as the throttle counts it: an IPv4
/// address by itself, an IPv6 address by its /64 network (what one client
/// is usually given, so that it cannot spread its attempts over its own
/// addresses), an IPv4 address mapped into IPv6 as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    /// The client at `ip` (an IPv4-mapped IPv6 address becomes IPv4).
    pub fn new(ip: IpAddr) -> Self {
        ClientAddress(ip.to_canonical())
    }

    /// The address itself.
    pub fn ip(&self) -> IpAddr {
        self.0
    }

    /// The text the throttle's row for this address is keyed by.
    pub fn throttle_key(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(network))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_double_up_to_the_cap() {
        let limits = SignInLimits::default();
        let lengths: Vec<i64> = (0..8).map(|n| limits.lockout_after(n)).collect();
        assert_eq!(lengths, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let odd = SignInLimits { lockout_seconds: 7, max_lockout_seconds: 7, ..limits };
        assert_eq!((odd.doublings(), odd.lockout_after(0), odd.lockout_after(40)), (0, 7, 7));
    }

    #[test]
    fn a_locked_or_full_subject_says_when_to_try_again() {
        let state = ThrottleState { failures: 0, window_start: 100, locked_until: 160 };
        assert_eq!(state.retry_after(5, 900, 100), Some(60));
        assert_eq!(state.retry_after(5, 900, 160), None);
        let full = ThrottleState { failures: 5, window_start: 100, locked_until: 0 };
        assert_eq!(full.retry_after(5, 900, 200), Some(800));
        assert_eq!(full.retry_after(5, 900, 1000), None);
        assert_eq!(full.retry_after(6, 900, 200), None);
    }

    #[test]
    fn ipv6_clients_count_by_their_network() {
        let a = ClientAddress::new("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddress::new("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a.throttle_key(), "2001:db8:1:2::/64");
        assert_eq!(a.throttle_key(), b.throttle_key());
        let mapped = ClientAddress::new("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(mapped.throttle_key(), "192.0.2.7");
    }
}
