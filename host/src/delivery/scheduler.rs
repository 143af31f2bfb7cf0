//! Endpoint-aware scheduling: what each endpoint (a hook's webhook target)
//! can take now, so that work is claimed only when it can start at once.
//!
//! An endpoint has a concurrency (attempts in flight at once) and may have a
//! rate (attempts started per second, spaced evenly). A busy endpoint takes
//! new work in batches of an eighth of its concurrency, so claims stay few
//! under load. The dispatcher asks
//! for [`Endpoints::free`] before each claim, counts each claimed delivery
//! in with [`Endpoints::start`] and out with [`Endpoints::finish`]; a slow,
//! failing or rate-limited endpoint then holds only its own slots, and never
//! delays another endpoint's deliveries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::FreeSlots;

/// Free slots of an endpoint this process has not seen yet: one, until its
/// hook's settings are read with its first delivery.
const UNKNOWN_FREE: u32 = 1;

/// One endpoint's share of this process.
#[derive(Debug)]
struct Endpoint {
    concurrency: u32,
    /// The spacing of attempts, for an endpoint with a rate limit.
    interval: Option<Duration>,
    in_flight: u32,
    /// When the next attempt may start, under the rate limit.
    next_start: Instant,
}

impl Endpoint {
    fn new() -> Self {
        Endpoint {
            concurrency: UNKNOWN_FREE,
            interval: None,
            in_flight: 0,
            next_start: Instant::now(),
        }
    }

    fn free(&self, now: Instant, pacing: bool) -> u32 {
        let slots = self.concurrency.saturating_sub(self.in_flight);
        // A busy endpoint is claimed for again once an eighth of its slots
        // are free, not at each slot: a claim is a committed write.
        if pacing && self.in_flight > 0 && slots < (self.concurrency / 8).max(1) {
            return 0;
        }
        match self.interval {
            Some(_) if pacing && now < self.next_start => 0,
            // One paced attempt per claim: the next slot is an interval on.
            Some(_) if pacing => slots.min(1),
            _ => slots,
        }
    }
}

/// Every endpoint's slots in this process.
#[derive(Debug, Default)]
pub struct Endpoints {
    endpoints: Mutex<HashMap<String, Endpoint>>,
}

impl Endpoints {
    /// Set hook `hook_id`'s endpoint to `concurrency` attempts at once and at
    /// most `rate` starts per second; what is in flight stays counted.
    pub fn configure(&self, hook_id: &str, concurrency: u32, rate: Option<u32>) {
        let mut endpoints = self.lock();
        let endpoint = endpoints
            .entry(hook_id.to_string())
            .or_insert_with(Endpoint::new);
        endpoint.concurrency = concurrency.max(1);
        let interval = rate.map(|rate| Duration::from_secs(1) / rate.max(1));
        if let (None, Some(interval)) = (endpoint.interval, interval) {
            // Attempts started before the rate was known count against it.
            let now = Instant::now();
            endpoint.next_start = endpoint.next_start.max(now) + interval * endpoint.in_flight;
        }
        endpoint.interval = interval;
    }

    /// What a claim may take now: each endpoint's free slots, and one for
    /// an endpoint not seen yet. With `pacing` off, rate limits are left out
    /// (to ask whether anything is due at all).
    pub fn free(&self, pacing: bool) -> FreeSlots {
        let now = Instant::now();
        FreeSlots {
            slots: self
                .lock()
                .iter()
                .map(|(id, endpoint)| (id.clone(), endpoint.free(now, pacing)))
                .collect(),
            default: UNKNOWN_FREE,
        }
    }

    /// Whether an endpoint seen here can take a batch now.
    pub fn any_free(&self) -> bool {
        let now = Instant::now();
        self.lock().values().any(|e| e.free(now, true) > 0)
    }

    /// Count an attempt to hook `hook_id`'s endpoint in, taking its rate slot.
    pub fn start(&self, hook_id: &str) {
        let now = Instant::now();
        let mut endpoints = self.lock();
        let endpoint = endpoints
            .entry(hook_id.to_string())
            .or_insert_with(Endpoint::new);
        endpoint.in_flight += 1;
        if let Some(interval) = endpoint.interval {
            endpoint.next_start = endpoint.next_start.max(now) + interval;
        }
    }

    /// Count an attempt to hook `hook_id`'s endpoint out.
    pub fn finish(&self, hook_id: &str) {
        if let Some(endpoint) = self.lock().get_mut(hook_id) {
            endpoint.in_flight = endpoint.in_flight.saturating_sub(1);
        }
    }

    /// Forget hook `hook_id`'s endpoint (the hook is gone).
    pub fn forget(&self, hook_id: &str) {
        let mut endpoints = self.lock();
        if endpoints.get(hook_id).is_some_and(|e| e.in_flight == 0) {
            endpoints.remove(hook_id);
        }
    }

    /// The earliest future time a rate-limited endpoint may start again.
    pub fn next_start(&self) -> Option<Instant> {
        let now = Instant::now();
        self.lock()
            .values()
            .filter(|e| e.interval.is_some() && e.next_start > now)
            .map(|e| e.next_start)
            .min()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Endpoint>> {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_concurrency_and_rate() {
        let endpoints = Endpoints::default();
        assert_eq!(endpoints.free(true).default, 1);
        endpoints.configure("a", 2, None);
        endpoints.configure("b", 4, Some(10));
        let free = endpoints.free(true);
        assert_eq!((free.slots["a"], free.slots["b"]), (2, 1));
        endpoints.start("a");
        endpoints.start("a");
        endpoints.start("b");
        let free = endpoints.free(true);
        assert_eq!(
            (free.slots["a"], free.slots["b"]),
            (0, 0),
            "b waits for its rate"
        );
        assert_eq!(endpoints.free(false).slots["b"], 3, "without pacing");
        assert!(endpoints.next_start().is_some());
        endpoints.finish("a");
        assert_eq!(endpoints.free(true).slots["a"], 1);

        endpoints.configure("c", 64, None);
        for _ in 0..60 {
            endpoints.start("c");
        }
        assert_eq!(
            endpoints.free(true).slots["c"],
            0,
            "four free: wait for a batch"
        );
        for _ in 0..12 {
            endpoints.finish("c");
        }
        assert_eq!(
            endpoints.free(true).slots["c"],
            16,
            "enough free: claim them"
        );
    }
}
