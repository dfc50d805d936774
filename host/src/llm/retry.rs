//! When to try a model call again and how long to wait first: exponential backoff with full
//! jitter, or the endpoint's own `Retry-After` / `retry-after-ms` when it sends one, both capped.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The backoff policy of one client.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// First step.
    pub base: Duration,
    /// Ceiling of a step and of an honoured `Retry-After`.
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (1 for the first retry): uniform in
    /// `[0, min(max, base × 2^(retry-1))]`. Full jitter spreads the retries of many rows that
    /// failed together, so they do not hit the endpoint again in one burst.
    pub fn jittered(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    /// The upper bound of [`Self::jittered`].
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before the next attempt: the endpoint's request, capped at `max`, or jitter.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max),
            None => self.jittered(retry),
        }
    }
}

/// The wait an answer asks for: `retry-after-ms` (OpenAI's, in milliseconds) or `Retry-After`
/// in seconds or as an HTTP date. A date in the past means "now"; an unreadable value is ignored.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text(RETRY_AFTER.as_str())?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when = SystemTime::from(date);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("valid header"));
        }
        map
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480, ten seconds after `now`.
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
                now
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Wed, 21 Oct 2015 07:20:00 GMT")]),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-4")]), now), None);
        assert_eq!(retry_after(&headers(&[]), now), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling_and_jitters_below_it() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(700),
        };
        assert_eq!(backoff.ceiling(1), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(2), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(3), Duration::from_millis(400));
        assert_eq!(backoff.ceiling(4), Duration::from_millis(700));
        assert_eq!(backoff.ceiling(60), Duration::from_millis(700));
        let draws: Vec<Duration> = (0..200).map(|_| backoff.jittered(3)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(400)));
        // 200 uniform draws from 0..=400 ms are not all equal unless jitter is missing.
        assert!(draws.iter().any(|d| *d != draws[0]));
    }

    #[test]
    fn an_honoured_retry_after_is_capped() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        assert_eq!(
            backoff.wait(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            backoff.wait(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(5)
        );
    }
}
