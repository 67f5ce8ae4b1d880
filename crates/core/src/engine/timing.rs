//! When to refresh: at about 75% of a token's lifetime (±5% jitter, so many connections
//! do not refresh in lockstep), never later than 60 s before expiry where the lifetime
//! allows — and never before half of it, so short tokens are not refreshed in a storm.
//! After a transient failure, retry with capped exponential backoff and jitter.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Refresh this long before expiry at the latest, where the lifetime allows.
const LEAD: chrono::Duration = chrono::Duration::seconds(60);
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// A stable jitter in [-1, 1] for one token of one connection: the schedule does not
/// move each time it is computed, yet differs between connections and generations.
pub fn jitter(name: &str, generation: u64) -> f64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (name, generation).hash(&mut h);
    (h.finish() % 20_001) as f64 / 10_000.0 - 1.0
}

/// When to refresh a token obtained at `obtained` that expires at `expires`.
pub fn refresh_at(obtained: DateTime<Utc>, expires: DateTime<Utc>, jitter: f64) -> DateTime<Utc> {
    let life_ms = (expires - obtained).num_milliseconds().max(0) as f64;
    let at = |fraction: f64| obtained + chrono::Duration::milliseconds((life_ms * fraction) as i64);
    let planned = at(0.75 + 0.05 * jitter.clamp(-1.0, 1.0));
    planned.min(expires - LEAD).max(at(0.5))
}

/// The wait before retry number `failures` (1 = first retry): 1 s, 2 s, 4 s … 5 min,
/// ±20% jitter; a server's `Retry-After` wins when longer.
pub fn backoff(failures: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(BACKOFF_CAP).as_secs_f64() * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0));
    let wait = Duration::from_secs_f64(capped.max(0.1));
    retry_after.map_or(wait, |r| wait.max(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn an_hour_token_is_refreshed_at_three_quarters() {
        assert_eq!(refresh_at(t(0), t(3600), 0.0), t(2700));
        assert_eq!(refresh_at(t(0), t(3600), 1.0), t(2880));
        assert_eq!(refresh_at(t(0), t(3600), -1.0), t(2520));
    }

    #[test]
    fn the_sixty_second_lead_wins_down_to_half_the_lifetime() {
        // 3 minutes: 75% would leave 45 s; refresh at 120 s instead.
        assert_eq!(refresh_at(t(0), t(180), 0.0), t(120));
        // 100 s: 60 s before expiry is 40 s, under half: refresh at 50 s.
        assert_eq!(refresh_at(t(0), t(100), 0.0), t(50));
        // A 2 s test token: at half.
        assert_eq!(refresh_at(t(0), t(2), 0.0), t(1));
    }

    #[test]
    fn jitter_is_stable_and_bounded() {
        for g in 0..1000 {
            let j = jitter("linear", g);
            assert!((-1.0..=1.0).contains(&j));
            assert_eq!(j, jitter("linear", g));
        }
        assert_ne!(jitter("linear", 1), jitter("github", 1));
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_honours_retry_after() {
        assert_eq!(backoff(1, 0.0, None), Duration::from_secs(1));
        assert_eq!(backoff(4, 0.0, None), Duration::from_secs(8));
        assert_eq!(backoff(30, 0.0, None), Duration::from_secs(300));
        assert_eq!(
            backoff(1, 0.0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
