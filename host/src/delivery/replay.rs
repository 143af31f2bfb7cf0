//! Replays as background jobs: delivering a time range of stored events
//! again to a hook may cover millions of events, so it runs page by page
//! in its own task, and its progress can be read while it runs.
//!
//! Jobs are kept in memory, the latest [`KEPT`] of them. A replay cut short
//! by a restart has enqueued what its pages reached; running it again
//! enqueues the range once more.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::dispatcher::Dispatcher;
use crate::store::{new_id, now_ms, Millis};

/// Finished and running jobs kept for reading.
const KEPT: usize = 100;

/// Where a replay stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayStatus {
    /// Paging through the range.
    Running,
    /// Every event in the range was looked at.
    Done,
    /// Stopped by an error (see `error`); what was enqueued stays.
    Failed,
}

/// A replay and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Replay {
    /// The job's id.
    pub id: String,
    /// The hook the events go to.
    pub hook_id: String,
    /// Start of the range (inclusive), ms since the epoch.
    pub since: Millis,
    /// End of the range (exclusive).
    pub until: Millis,
    /// Running, done or failed.
    pub status: ReplayStatus,
    /// Stored events looked at so far.
    pub scanned: u64,
    /// New deliveries made so far (events the hook subscribes to).
    pub enqueued: u64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it started.
    pub started_at: Millis,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
}

/// The replay jobs of one host.
#[derive(Debug, Default)]
pub struct Replays {
    jobs: Mutex<VecDeque<Arc<Mutex<Replay>>>>,
}

impl Replays {
    /// Start replaying `[since, until)` to hook `hook_id` with `dispatcher`
    /// in the background; returns the job as it starts.
    pub fn start(
        &self,
        dispatcher: Arc<Dispatcher>,
        hook_id: &str,
        since: Millis,
        until: Millis,
    ) -> Replay {
        let job = Arc::new(Mutex::new(Replay {
            id: new_id("rpl"),
            hook_id: hook_id.to_string(),
            since,
            until,
            status: ReplayStatus::Running,
            scanned: 0,
            enqueued: 0,
            error: None,
            started_at: now_ms(),
            finished_at: None,
        }));
        {
            let mut jobs = self.lock();
            if jobs.len() >= KEPT {
                jobs.pop_front();
            }
            jobs.push_back(job.clone());
        }
        let started = lock(&job).clone();
        let hook_id = hook_id.to_string();
        tokio::spawn(async move {
            let result = dispatcher
                .replay(&hook_id, since, until, |scanned, enqueued| {
                    let mut job = lock(&job);
                    job.scanned += scanned;
                    job.enqueued += enqueued;
                })
                .await;
            let mut job = lock(&job);
            job.finished_at = Some(now_ms());
            match result {
                Ok(_) => job.status = ReplayStatus::Done,
                Err(e) => {
                    tracing::error!(replay = %job.id, error = %e, "replay stopped");
                    job.status = ReplayStatus::Failed;
                    job.error = Some(e.to_string());
                }
            }
        });
        started
    }

    /// The replay `id`, as it stands now.
    pub fn get(&self, id: &str) -> Option<Replay> {
        self.lock()
            .iter()
            .map(|job| lock(job).clone())
            .find(|job| job.id == id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Mutex<Replay>>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn lock(job: &Mutex<Replay>) -> std::sync::MutexGuard<'_, Replay> {
    job.lock().unwrap_or_else(|p| p.into_inner())
}
