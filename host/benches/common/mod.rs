//! What the benchmarks share.

#[allow(dead_code)] // not every benchmark drives the server
pub mod server;

use std::future::Future;
use std::time::{Duration, Instant};

/// The allocator the `wasmhooks` binary runs on, so in-process benchmarks
/// measure the engine as it serves.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// p50 and p99 of `calls` timed runs of `call`, after `warmup` untimed ones.
#[allow(dead_code)] // not every benchmark uses every helper
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

/// The async runtime benchmarks drive their load from: two workers, as the
/// reference machine has two cores.
#[allow(dead_code)] // not every benchmark uses every helper
pub fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the tokio runtime")
}
