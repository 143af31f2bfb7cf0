//! What the latency benchmarks share.

use std::future::Future;
use std::time::{Duration, Instant};

/// p50 and p99 of `calls` timed runs of `call`, after `warmup` untimed ones.
pub async fn percentiles<F, Fut>(calls: usize, warmup: usize, mut call: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..warmup {
        call().await;
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        call().await;
        times.push(started.elapsed());
    }
    times.sort();
    (times[calls / 2], times[calls * 99 / 100])
}
