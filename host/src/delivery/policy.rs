//! When to try a delivery again: the retry schedule with jitter,
//! `Retry-After`, floors for overloaded receivers, and the verdicts that
//! end a delivery or disable an endpoint (spec: delivery-policy.md).
//!
//! Deciding *whether* an attempt failed ([`Verdict::of`]) is kept apart
//! from deciding *when* to retry ([`RetryPolicy::next`]).

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// A hook's retry settings. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Delays before the second, third, ... attempt; the first is immediate.
    /// When they run out, the delivery fails for good.
    #[serde(with = "crate::duration::list")]
    #[schema(value_type = Vec<String>, example = json!(["5s", "5m", "30m"]))]
    pub schedule: Vec<Duration>,
    /// Random spread of each delay, as a fraction: 0.2 means +-20 %.
    pub jitter: f64,
    /// Longest `Retry-After` honoured.
    #[serde(with = "crate::duration::text")]
    #[schema(value_type = String, example = "1h")]
    pub max_retry_after: Duration,
    /// Shortest wait after a 429 or a timeout, so an overloaded receiver is
    /// not hammered.
    #[serde(with = "crate::duration::text")]
    #[schema(value_type = String, example = "1m")]
    pub overload_floor: Duration,
    /// An endpoint failing without a single success for this long is disabled.
    #[serde(with = "crate::duration::text")]
    #[schema(value_type = String, example = "5days")]
    pub disable_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let m = 60;
        let h = 3600;
        RetryPolicy {
            schedule: [5, 5 * m, 30 * m, 2 * h, 5 * h, 10 * h, 10 * h]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            jitter: 0.2,
            max_retry_after: Duration::from_secs(h),
            overload_floor: Duration::from_secs(m),
            disable_after: Duration::from_secs(5 * 24 * h),
        }
    }
}

/// What one attempt's result means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 410 Gone: the receiver asks never to be called again.
    Gone,
    /// Any other failure: try again later.
    Failed {
        /// The receiver is overloaded (429 or a timeout): wait at least the floor.
        overloaded: bool,
        /// The receiver's `Retry-After`, on 429 and 503.
        retry_after: Option<Duration>,
    },
}

impl Verdict {
    /// Judge an attempt from its status and headers (`None` when no response
    /// came) and whether it timed out.
    pub fn of(status: Option<u16>, headers: Option<&HeaderMap>, timed_out: bool) -> Self {
        match status {
            Some(200..=299) => Verdict::Delivered,
            Some(410) => Verdict::Gone,
            status => {
                let retry_after = match status {
                    Some(429 | 503) => headers.and_then(retry_after),
                    _ => None,
                };
                Verdict::Failed {
                    overloaded: timed_out || status == Some(429),
                    retry_after,
                }
            }
        }
    }
}

/// Parse `Retry-After`: delay-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The longest delay any retry setting may name: a month.
const LONGEST_DELAY: Duration = Duration::from_secs(31 * 24 * 3600);

impl RetryPolicy {
    /// Check the policy's ranges: `jitter` from 0 to 1, and every delay at
    /// most a month (`disable_after` at most a year). The message names the
    /// setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "retry jitter must be from 0 to 1 (a fraction of each delay), not {}",
                self.jitter
            ));
        }
        for (i, delay) in self.schedule.iter().enumerate() {
            if *delay > LONGEST_DELAY {
                return Err(format!(
                    "retry schedule[{i}] of {} is longer than a month",
                    humantime::format_duration(*delay)
                ));
            }
        }
        for (name, delay, longest) in [
            ("max_retry_after", self.max_retry_after, LONGEST_DELAY),
            ("overload_floor", self.overload_floor, LONGEST_DELAY),
            ("disable_after", self.disable_after, LONGEST_DELAY * 12),
        ] {
            if delay > longest {
                return Err(format!(
                    "retry {name} of {} is longer than {}",
                    humantime::format_duration(delay),
                    humantime::format_duration(longest)
                ));
            }
        }
        Ok(())
    }

    /// The delay before the next attempt after `attempts` attempts have
    /// failed with `verdict`, or `None` when the schedule is used up.
    /// `unit` is a uniform random number in [0, 1) for the jitter.
    pub fn next(&self, attempts: u32, verdict: &Verdict, unit: f64) -> Option<Duration> {
        let Verdict::Failed {
            overloaded,
            retry_after,
        } = verdict
        else {
            return None;
        };
        let base = *self.schedule.get(attempts.checked_sub(1)? as usize)?;
        let spread = 1.0 + self.jitter * (2.0 * unit - 1.0);
        let mut delay =
            Duration::try_from_secs_f64(base.as_secs_f64() * spread.max(0.0)).unwrap_or(base);
        if let Some(asked) = retry_after {
            delay = delay.max((*asked).min(self.max_retry_after));
        }
        if *overloaded {
            delay = delay.max(self.overload_floor);
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Verdict {
        Verdict::Failed {
            overloaded: false,
            retry_after: None,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(Verdict::of(Some(204), None, false), Verdict::Delivered);
        assert_eq!(Verdict::of(Some(410), None, false), Verdict::Gone);
        assert_eq!(
            Verdict::of(Some(302), None, false),
            failed(),
            "redirects are failures"
        );
        assert_eq!(Verdict::of(None, None, false), failed());
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "120".parse().unwrap());
        assert_eq!(
            Verdict::of(Some(429), Some(&headers), false),
            Verdict::Failed {
                overloaded: true,
                retry_after: Some(Duration::from_secs(120))
            }
        );
        assert_eq!(
            Verdict::of(Some(500), Some(&headers), false),
            failed(),
            "Retry-After only on 429 and 503"
        );
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(600));
        headers.insert("retry-after", soon.parse().unwrap());
        let Verdict::Failed {
            retry_after: Some(d),
            ..
        } = Verdict::of(Some(503), Some(&headers), false)
        else {
            panic!("a date is honoured")
        };
        assert!(d > Duration::from_secs(590) && d <= Duration::from_secs(600));
        assert_eq!(
            Verdict::of(None, None, true),
            Verdict::Failed {
                overloaded: true,
                retry_after: None
            }
        );
    }

    #[test]
    fn schedule_with_jitter_floors_and_clamps() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.next(1, &failed(), 0.5), Some(Duration::from_secs(5)));
        assert_eq!(policy.next(1, &failed(), 0.0), Some(Duration::from_secs(4)));
        assert_eq!(policy.next(1, &failed(), 1.0), Some(Duration::from_secs(6)));
        assert_eq!(
            policy.next(2, &failed(), 0.5),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            policy.next(7, &failed(), 0.5),
            Some(Duration::from_secs(36_000))
        );
        assert_eq!(
            policy.next(8, &failed(), 0.5),
            None,
            "eight attempts in all"
        );
        assert_eq!(policy.next(1, &Verdict::Gone, 0.5), None);
        let overloaded = Verdict::Failed {
            overloaded: true,
            retry_after: Some(Duration::from_secs(90)),
        };
        assert_eq!(
            policy.next(1, &overloaded, 0.5),
            Some(Duration::from_secs(90))
        );
        let greedy = Verdict::Failed {
            overloaded: true,
            retry_after: Some(Duration::from_secs(99_999)),
        };
        assert_eq!(
            policy.next(1, &greedy, 0.5),
            Some(Duration::from_secs(3600)),
            "clamped"
        );
        let timeout = Verdict::Failed {
            overloaded: true,
            retry_after: None,
        };
        assert_eq!(
            policy.next(1, &timeout, 0.5),
            Some(Duration::from_secs(60)),
            "floor"
        );
    }

    #[test]
    fn policy_reads_from_config() {
        let policy: RetryPolicy = serde_json::from_value(
            serde_json::json!({"schedule": ["100ms", "1s"], "overload_floor": "200ms"}),
        )
        .unwrap();
        assert_eq!(
            policy.schedule,
            [Duration::from_millis(100), Duration::from_secs(1)]
        );
        assert_eq!(policy.overload_floor, Duration::from_millis(200));
        assert_eq!(policy.jitter, 0.2);
        assert!(serde_json::from_value::<RetryPolicy>(serde_json::json!({"schedul": []})).is_err());
    }
}
