//! Sharing the CPU between guests and everything else the server does.
//!
//! Every [`TICK`](super::TICK) the epoch callback asks [`Ticks::on_tick`]
//! what a running guest does next:
//!
//! - past its deadline, it is interrupted;
//! - a call younger than [`LONG_AFTER`] yields its thread and goes on at
//!   once, like any other task: short calls are never held back;
//! - an older one is a *long runner*: before each further slice it must
//!   take one of the long runners' turns, all but one core's worth, first
//!   come first served; a turn lasts one tick. However many guests spin, at
//!   least one core stays free for the API, health checks and short calls.
//!   A turn ends with its tick whatever the guest does, so a guest waiting
//!   on a host call (outbound HTTP) holds no one else up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::UpdateDeadline;

/// How long a long runner's turn lasts: one tick.
const TURN: Duration = super::TICK;

/// How long a call runs before it counts as a long runner.
pub(crate) const LONG_AFTER: Duration = Duration::from_millis(5);

/// The permits long runners take turns with: one fewer than the cores,
/// and at least one.
pub(crate) fn long_runner_permits() -> Arc<Semaphore> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Arc::new(Semaphore::new(cores.saturating_sub(1).max(1)))
}

/// One call's clock: its deadline and when it started.
pub(crate) struct Ticks {
    pub(crate) deadline: Instant,
    started: Instant,
    long_runners: Arc<Semaphore>,
}

impl Ticks {
    pub(crate) fn new(deadline: Instant, long_runners: Arc<Semaphore>) -> Self {
        Ticks {
            deadline,
            started: Instant::now(),
            long_runners,
        }
    }

    /// Start counting a new call (a kept instance's next one) from now.
    pub(crate) fn restart(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.started = Instant::now();
    }

    /// What the guest does at this tick.
    pub(crate) fn on_tick(&mut self) -> UpdateDeadline {
        let now = Instant::now();
        if now >= self.deadline {
            return UpdateDeadline::Interrupt;
        }
        if now.duration_since(self.started) < LONG_AFTER {
            return UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()));
        }
        let turns = self.long_runners.clone();
        UpdateDeadline::YieldCustom(1, Box::pin(take_turn(turns)))
    }
}

/// Wait for a long runner's turn; it is handed on after one tick.
async fn take_turn(turns: Arc<Semaphore>) {
    if let Ok(turn) = turns.acquire_owned().await {
        tokio::spawn(async move {
            tokio::time::sleep(TURN).await;
            drop(turn);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_runners_take_turns_a_tick_long() {
        let turns = Arc::new(Semaphore::new(1));
        let far = Instant::now() + Duration::from_secs(60);
        let mut young = Ticks::new(far, turns.clone());
        assert!(matches!(young.on_tick(), UpdateDeadline::YieldCustom(..)));
        assert_eq!(turns.available_permits(), 1, "a young call takes no turn");

        let mut old = Ticks::new(far, turns.clone());
        old.started -= LONG_AFTER;
        let UpdateDeadline::YieldCustom(_, turn) = old.on_tick() else {
            panic!("a long runner waits for its turn");
        };
        turn.await;
        assert_eq!(turns.available_permits(), 0, "its turn is taken");
        let handed_on = async {
            while turns.available_permits() == 0 {
                tokio::time::sleep(TURN).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), handed_on)
            .await
            .expect("the turn is handed on after its tick");

        let mut late = Ticks::new(std::time::Instant::now(), turns);
        assert!(matches!(late.on_tick(), UpdateDeadline::Interrupt));
    }
}
