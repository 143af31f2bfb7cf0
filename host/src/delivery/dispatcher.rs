//! The dispatcher: claims due deliveries, runs each hook's plugin steps on
//! the event, signs and sends the webhook, and records the attempt together
//! with what follows it (success, a retry time, giving up, cancellation).
//!
//! Data flows one way: store → pipeline (runtime) → sender → store. The
//! dispatcher holds no lock or transaction while a request is in flight: a
//! claim is a committed lease.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use futures::FutureExt;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::policy::Verdict;
use super::scheduler::Endpoints;
use super::sender::{Sender, Sent};
use super::signing::{logto_signature, standard_signature};
use crate::event::delivery_body;
use crate::hook::Webhook;
use crate::hook::{refused_header, HookSpec};
use crate::metrics::Metrics;
use crate::pipeline::{EventInfo, Pipeline, PluginRegistry, Ran, StepError, Steps};
use crate::runtime::Blame;
use crate::store::{
    after, now_ms, Claimed, FreeSlots, Millis, NewAttempt, Next, SharedStore, StoreError,
    StoreResult,
};

/// How the dispatcher works the queue.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Name of this worker in leases; unique per process.
    pub owner: String,
    /// Most deliveries in flight at once across all endpoints.
    pub max_in_flight: usize,
    /// How long a claim holds a delivery before another worker may take it.
    pub lease: Duration,
    /// Longest idle wait between polls when no work is announced.
    pub idle_poll: Duration,
    /// How long a fetched hook or plugin is used before it is read again.
    pub cache_ttl: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            owner: format!(
                "worker-{}-{}",
                std::process::id(),
                crate::store::new_id("w")
            ),
            max_in_flight: 256,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_secs(1),
            cache_ttl: Duration::from_secs(2),
        }
    }
}

struct CachedHook {
    fetched: Instant,
    spec: Arc<HookSpec>,
    /// The steps with their grants, built once per fetch rather than once
    /// per call.
    steps: Steps,
    enabled: bool,
    disabled_reason: Option<String>,
    /// Since when every request to the endpoint has failed.
    failing_since: Option<Millis>,
}

/// Works the delivery queue. Cheap to share behind an `Arc`.
pub struct Dispatcher {
    store: SharedStore,
    pipeline: Pipeline,
    sender: Sender,
    settings: DispatchSettings,
    metrics: Arc<Metrics>,
    in_flight: Arc<Semaphore>,
    hooks: Mutex<HashMap<String, Arc<CachedHook>>>,
    /// Each endpoint's free slots.
    endpoints: Endpoints,
    /// Deliveries leased to this worker and being attempted, whose leases
    /// the heartbeat renews.
    leased: Mutex<HashSet<String>>,
    /// Woken whenever an attempt ends: its endpoint has a free slot, and an
    /// ordered hook's next delivery may be due.
    finished: Notify,
}

/// Why a delivery could not be processed (its lease stays and expires).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An endpoint slot taken by a claimed delivery: given back when dropped,
/// waking the dispatcher, which may then claim for the endpoint again.
struct Slot<'a> {
    dispatcher: &'a Dispatcher,
    hook_id: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.dispatcher.endpoints.finish(&self.hook_id);
        self.dispatcher.finished.notify_one();
    }
}

/// How long a delivery waits after the host first could not attempt it;
/// the wait doubles with each failure in a row, up to [`HOST_RETRY_MAX`].
const HOST_RETRY: Duration = Duration::from_secs(5);

/// The longest wait after host failures.
const HOST_RETRY_MAX: Duration = Duration::from_secs(300);

/// Host failures in a row after which a delivery ends as dead (about 25
/// minutes of them with the waits above).
pub const MAX_HOST_FAILURES: u32 = 10;

/// What follows the host's failure to attempt a delivery that had already
/// failed so `before` times in a row: a later try, or the end as dead.
fn host_failed(before: u32, reason: String) -> Next {
    if before + 1 >= MAX_HOST_FAILURES {
        return Next::Dead {
            reason: format!("{reason} (the host failed {MAX_HOST_FAILURES} times in a row)"),
        };
    }
    let wait = HOST_RETRY
        .saturating_mul(1 << before.min(16))
        .min(HOST_RETRY_MAX);
    Next::Deferred {
        at: after(now_ms(), wait),
        reason,
    }
}

/// Events a replay reads per page.
const REPLAY_PAGE: usize = 500;

/// How soon to look again at work that is due but held by another worker.
const BUSY_RETRY: Duration = Duration::from_millis(10);

/// The product string sent as `user-agent`.
pub const USER_AGENT: &str = concat!("wasmhooks/", env!("CARGO_PKG_VERSION"));

impl Dispatcher {
    /// A dispatcher over `store`, running steps with `plugins`, sending
    /// with `sender`, and counting what it does in `metrics`.
    pub fn new(
        store: SharedStore,
        plugins: Arc<PluginRegistry>,
        sender: Sender,
        settings: DispatchSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Dispatcher {
            store,
            pipeline: Pipeline::new(plugins),
            sender,
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            settings,
            metrics,
            hooks: Mutex::default(),
            endpoints: Endpoints::default(),
            leased: Mutex::default(),
            finished: Notify::new(),
        }
    }

    /// Work the queue until `shutdown` is cancelled, then finish what is in
    /// flight. Unclaimed work stays in the store.
    ///
    /// Each round claims what the endpoints can start now, and sleeps until
    /// an attempt ends, new work is announced, the earliest due time or the
    /// next rate slot comes, whichever is first: no wake-up is lost, since
    /// the waits are armed before each claim. The earliest due time is read
    /// beside the loop, so the next claim need not wait for it.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        tasks.spawn(self.clone().heartbeat(shutdown.clone()));
        let max = self.settings.max_in_flight;
        let mut claim = true;
        let mut wake_at = tokio::time::Instant::now();
        let mut next_wake: Option<tokio::task::JoinHandle<Option<tokio::time::Instant>>> = None;
        while !shutdown.is_cancelled() {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let room = self.in_flight.available_permits();
            if claim && room > 0 {
                wake_at = tokio::time::Instant::now() + self.settings.idle_poll;
                let free = self.endpoints.free(true);
                let wanted = room.min(max).min(free.claimable()).min(500);
                match self
                    .store
                    .claim_free(&self.settings.owner, wanted, self.settings.lease, &free)
                    .await
                {
                    Ok(claimed) => {
                        let full = claimed.len() == wanted;
                        for delivery in claimed {
                            self.start(delivery, &tasks);
                        }
                        if full {
                            // There may be more: claim again at once.
                            continue;
                        }
                        if let Some(earlier) = next_wake.replace(tokio::spawn({
                            let this = self.clone();
                            async move { this.next_wake(&this.endpoints.free(true)).await }
                        })) {
                            earlier.abort();
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "claiming deliveries failed"),
                }
            }
            let idle = wake_at.saturating_duration_since(tokio::time::Instant::now());
            let looked_up = async {
                match next_wake.as_mut() {
                    Some(lookup) => lookup.await.ok().flatten(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // An attempt ended: claim again only if an endpoint can
                // take a batch now; the next due time stands.
                () = &mut finished => claim = self.endpoints.any_free(),
                // New work, or the next due time came.
                () = self.store.wait_for_work(idle) => claim = true,
                at = looked_up => {
                    next_wake = None;
                    if let Some(at) = at {
                        wake_at = wake_at.min(at);
                    }
                    claim = false;
                }
                () = shutdown.cancelled() => {}
            }
        }
        if let Some(lookup) = next_wake {
            lookup.abort();
        }
        tasks.close();
        tasks.wait().await;
    }

    /// When to look again after a claim found nothing more to take: the
    /// earliest due time of an endpoint with a free slot, or the next rate
    /// slot.
    async fn next_wake(&self, free: &FreeSlots) -> Option<tokio::time::Instant> {
        let next_start = self.endpoints.next_start();
        let due = match self.store.next_due(free).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "reading the next due time failed");
                None
            }
        };
        let due = due.map(|at| {
            let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
            // Due now yet not claimed: another worker holds it; look again soon.
            tokio::time::Instant::now() + wait.max(BUSY_RETRY)
        });
        [due, next_start].into_iter().flatten().min()
    }

    /// Count `delivery` in and attempt it in its own task.
    fn start(self: &Arc<Self>, delivery: Claimed, tasks: &TaskTracker) {
        let permit = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .expect("claimed within the free room");
        let hook_id = delivery.delivery.hook_id.clone();
        let id = delivery.delivery.id.clone();
        self.endpoints.start(&hook_id);
        self.lock_leased().insert(id.clone());
        let this = self.clone();
        tasks.spawn(async move {
            let slot = Slot {
                dispatcher: &this,
                hook_id,
            };
            this.attempt(delivery, slot).await;
            this.lock_leased().remove(&id);
            drop(permit);
            this.finished.notify_one();
        });
    }

    /// One attempt, with a panic in it caught and recorded as the host's
    /// failure rather than ending the worker or losing the delivery.
    async fn attempt(&self, delivery: Claimed, slot: Slot<'_>) {
        let id = delivery.delivery.id.clone();
        let host_failures = delivery.host_failures;
        match AssertUnwindSafe(self.deliver_in(delivery, Some(slot)))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(delivery = %id, error = %e, "delivery could not be recorded")
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(delivery = %id, %message, "a delivery attempt panicked");
                let next = host_failed(
                    host_failures,
                    format!("host: the attempt panicked: {message}"),
                );
                if let Err(e) = self.finish(&id, None, next).await {
                    tracing::error!(delivery = %id, error = %e, "delivery could not be recorded");
                }
            }
        }
    }

    /// Renew the leases of the deliveries being attempted, a third of a
    /// lease apart, until `shutdown`.
    async fn heartbeat(self: Arc<Self>, shutdown: CancellationToken) {
        let every = self.settings.lease / 3;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => return,
            }
            let ids: Vec<String> = self.lock_leased().iter().cloned().collect();
            if ids.is_empty() {
                continue;
            }
            match self
                .store
                .renew(&self.settings.owner, &ids, self.settings.lease)
                .await
            {
                Ok(held) if held < ids.len() => tracing::warn!(
                    held,
                    leased = ids.len(),
                    "some leases were lost before their attempts ended"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "renewing leases failed"),
            }
        }
    }

    fn lock_leased(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.leased.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claim what is due now and process it all, round after round within
    /// the endpoints' slots and rates, until nothing is due now; returns how
    /// many were processed. A way to drive the queue step by step.
    pub async fn process_due(&self) -> StoreResult<usize> {
        let mut count = 0;
        loop {
            let free = self.endpoints.free(true);
            let claimed = self
                .store
                .claim_free(
                    &self.settings.owner,
                    self.settings.max_in_flight,
                    self.settings.lease,
                    &free,
                )
                .await?;
            if claimed.is_empty() {
                let unpaced = self.endpoints.free(false);
                match self.store.next_due(&unpaced).await? {
                    Some(due) if due <= now_ms() => {
                        // Due, but waiting for a rate slot.
                        let at = self
                            .endpoints
                            .next_start()
                            .unwrap_or_else(|| tokio::time::Instant::now() + BUSY_RETRY);
                        tokio::time::sleep_until(at).await;
                        continue;
                    }
                    _ => return Ok(count),
                }
            }
            count += claimed.len();
            for delivery in &claimed {
                self.endpoints.start(&delivery.delivery.hook_id);
            }
            let hooks: Vec<String> = claimed.iter().map(|c| c.delivery.hook_id.clone()).collect();
            let results =
                futures::future::join_all(claimed.into_iter().map(|c| self.deliver(c))).await;
            for hook_id in hooks {
                self.endpoints.finish(&hook_id);
            }
            for result in results {
                result.map_err(|DispatchError::Store(e)| e)?;
            }
        }
    }

    /// One attempt at one claimed delivery, recorded in the store.
    pub async fn deliver(&self, claimed: Claimed) -> Result<(), DispatchError> {
        self.deliver_in(claimed, None).await
    }

    /// [`Dispatcher::deliver`] holding the endpoint's `slot`, which is
    /// given back as soon as the endpoint has answered, before the attempt
    /// is recorded: the endpoint's concurrency counts its requests.
    async fn deliver_in(
        &self,
        claimed: Claimed,
        slot: Option<Slot<'_>>,
    ) -> Result<(), DispatchError> {
        let id = claimed.delivery.id.as_str();
        let Some(hook) = self.hook(&claimed.delivery.hook_id).await? else {
            // Deleted meanwhile; its deliveries went with it.
            return Ok(());
        };
        let webhook = match (&hook.spec.webhook, hook.enabled) {
            (Some(webhook), true) => webhook,
            (None, _) => {
                let reason = "the hook has no webhook target";
                return self
                    .finish(id, Some(failure("no_webhook", reason)), Next::GiveUp)
                    .await;
            }
            (Some(_), false) => {
                let reason = format!(
                    "hook disabled: {}",
                    hook.disabled_reason.as_deref().unwrap_or("by an operator")
                );
                return self
                    .finish(id, Some(failure("disabled", &reason)), Next::GiveUp)
                    .await;
            }
        };
        let attempts = claimed.delivery.attempts + 1;
        let (body, extra_headers) = match self.prepare(&hook, &claimed).await {
            Ok(Ran::Deliver { payload, headers }) => (payload, headers),
            Ok(Ran::Cancel { reason }) => {
                return self.finish(id, None, Next::Cancelled { reason }).await;
            }
            Ok(other) => unreachable!("a delivery's steps ended in {other:?}"),
            Err(e) if e.blame == Blame::Host => {
                tracing::warn!(delivery = %id, step = %e.step, kind = e.kind, error = %e.message,
                    "the host could not run the steps; deferred without counting an attempt");
                let next = host_failed(claimed.host_failures, format!("host: {e}"));
                return self.finish(id, None, next).await;
            }
            Err(e) => {
                let verdict = Verdict::Failed {
                    overloaded: false,
                    retry_after: None,
                };
                let next = next_after(webhook, attempts, &verdict);
                return self
                    .finish(id, Some(failure("plugin", &e.to_string())), next)
                    .await;
            }
        };
        let body = Bytes::from(body);
        let headers = signed_headers(&hook.spec, webhook, id, &body, extra_headers);
        let started_at = now_ms();
        let sent = self
            .sender
            .post(&webhook.url, &headers, body.clone(), webhook.timeout)
            .await;
        drop(slot);
        self.metrics.attempt(sent.duration);
        let verdict = Verdict::of(sent.status, Some(&sent.headers), sent.timed_out());
        let next = match &verdict {
            Verdict::Delivered => Next::Succeeded,
            Verdict::Gone => Next::GiveUp,
            // The target's name now resolves into a blocked range: waiting
            // will not change the policy, so the schedule is not spent on it.
            Verdict::Failed { .. } if sent.error_kind == Some("blocked") => Next::GiveUp,
            Verdict::Failed { .. } => next_after(webhook, attempts, &verdict),
        };
        self.finish(id, Some(record(started_at, &headers, &body, &sent)), next)
            .await?;
        let disable = match verdict {
            Verdict::Gone => Some("endpoint answered 410 Gone".to_string()),
            Verdict::Failed { .. } => failing_too_long(&hook, webhook, started_at),
            Verdict::Delivered => None,
        };
        if let Some(reason) = disable {
            tracing::warn!(hook = %claimed.delivery.hook_id, %reason, "endpoint disabled");
            self.store
                .set_hook_enabled(&claimed.delivery.hook_id, false, Some(&reason))
                .await?;
            self.forget_hook(&claimed.delivery.hook_id);
        }
        Ok(())
    }

    /// Send `payload` as event `event_name` to hook `hook_id`'s endpoint now,
    /// through its steps and signed as a delivery would be, without storing
    /// anything: the hook test an operator runs while setting up a receiver.
    pub async fn test(
        &self,
        hook_id: &str,
        event_name: &str,
        payload: &serde_json::Value,
    ) -> StoreResult<TestSend> {
        self.forget_hook(hook_id);
        let Some(hook) = self.hook(hook_id).await? else {
            return Err(StoreError::NotFound {
                kind: "hook",
                id: hook_id.to_string(),
            });
        };
        let Some(webhook) = &hook.spec.webhook else {
            return Err(StoreError::Invalid(format!(
                "hook `{hook_id}` is a sync hook and has no webhook to test"
            )));
        };
        let now = now_ms();
        let claimed = Claimed {
            delivery: crate::store::Delivery {
                id: crate::store::new_id("test"),
                event_id: crate::store::new_id("evt"),
                hook_id: hook_id.to_string(),
                status: crate::store::DeliveryStatus::InFlight,
                attempts: 0,
                due_at: None,
                last_error: None,
                created_at: now,
                updated_at: now,
                finished_at: None,
            },
            event_name: event_name.to_string(),
            payload: payload.to_string(),
            event_created_at: now,
            host_failures: 0,
        };
        let (body, extra) = match self.prepare(&hook, &claimed).await {
            Ok(Ran::Deliver { payload, headers }) => (Bytes::from(payload), headers),
            Ok(Ran::Cancel { reason }) => return Ok(TestSend::cancelled(event_name, reason)),
            Ok(other) => unreachable!("a delivery's steps ended in {other:?}"),
            Err(e) => return Ok(TestSend::failed(event_name, "plugin", e.to_string())),
        };
        let headers = signed_headers(&hook.spec, webhook, &claimed.delivery.id, &body, extra);
        let sent = self
            .sender
            .post(&webhook.url, &headers, body, webhook.timeout)
            .await;
        Ok(TestSend {
            event: event_name.to_string(),
            status: sent.status,
            body: sent.body,
            error_kind: sent.error_kind.map(String::from),
            error: sent.error,
            cancelled: None,
            duration_ms: sent.duration.as_millis() as u64,
        })
    }

    /// Record the end of an attempt, counted by what follows it.
    async fn finish(
        &self,
        delivery_id: &str,
        attempt: Option<NewAttempt>,
        next: Next,
    ) -> Result<(), DispatchError> {
        self.metrics.delivery(match next {
            Next::Succeeded => "succeeded",
            Next::Retry { .. } => "retry",
            Next::GiveUp => "failed",
            Next::Cancelled { .. } => "cancelled",
            Next::Deferred { .. } => "deferred",
            Next::Dead { .. } => "dead",
        });
        self.store
            .finish_attempt(&self.settings.owner, delivery_id, attempt, next)
            .await?;
        Ok(())
    }

    /// Run the hook's steps on the claimed event, within the runtime's
    /// timeout for each step, and shape the body a receiver gets.
    async fn prepare(&self, hook: &CachedHook, claimed: &Claimed) -> Result<Ran, StepError> {
        let created_at = rfc3339(claimed.event_created_at);
        let event = EventInfo {
            id: claimed.delivery.event_id.clone(),
            name: claimed.event_name.clone(),
            created_at: created_at.clone(),
        };
        let timeout = self.pipeline.plugins().runtime().limits().timeout;
        let budget = timeout * hook.steps.len().max(1) as u32;
        let ran = self
            .pipeline
            .deliver(&hook.steps, &event, claimed.payload.clone(), budget)
            .await?;
        Ok(match ran {
            Ran::Deliver { payload, headers } => Ran::Deliver {
                payload: delivery_body(
                    &claimed.event_name,
                    &created_at,
                    &payload,
                    &claimed.delivery.hook_id,
                ),
                headers,
            },
            other => other,
        })
    }

    /// Deliver again, to hook `hook_id`, every stored event in
    /// `[since, until)` that the hook subscribes to (the events it missed
    /// while down or disabled), a page at a time; `progress` hears of each
    /// page's events looked at and deliveries made. Returns how many
    /// deliveries were made.
    pub async fn replay(
        &self,
        hook_id: &str,
        since: Millis,
        until: Millis,
        mut progress: impl FnMut(u64, u64),
    ) -> StoreResult<u64> {
        let Some(hook) = self.store.get_hook(hook_id).await? else {
            return Err(StoreError::NotFound {
                kind: "hook",
                id: hook_id.to_string(),
            });
        };
        let mut created = 0;
        let mut cursor: (Millis, Option<String>) = (since, None);
        loop {
            let page = self
                .store
                .events_between(cursor.0, until, REPLAY_PAGE, cursor.1.as_deref())
                .await?;
            let mut enqueued = 0;
            for event in page.iter().filter(|e| hook.events.contains(&e.name)) {
                self.store.enqueue(&event.id, hook_id).await?;
                enqueued += 1;
            }
            created += enqueued;
            progress(page.len() as u64, enqueued);
            match page.last() {
                Some(last) if page.len() == REPLAY_PAGE => {
                    cursor = (last.created_at, Some(last.id.clone()))
                }
                _ => return Ok(created),
            }
        }
    }

    async fn hook(&self, id: &str) -> StoreResult<Option<Arc<CachedHook>>> {
        let cached = self
            .hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        if let Some(hook) = cached.filter(|h| h.fetched.elapsed() < self.settings.cache_ttl) {
            return Ok(Some(hook));
        }
        let Some(record) = self.store.get_hook(id).await? else {
            self.forget_hook(id);
            return Ok(None);
        };
        let spec: HookSpec = match serde_json::from_value(record.spec) {
            Ok(spec) => spec,
            Err(e) => {
                return Err(StoreError::Invalid(format!(
                    "stored hook `{id}` is unreadable: {e}"
                )))
            }
        };
        let webhook = spec.webhook.as_ref();
        self.endpoints.configure(
            id,
            webhook.map_or(1, |w| w.concurrency),
            webhook.and_then(|w| w.rate_limit),
        );
        let mut hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
        let hook = Arc::new(CachedHook {
            fetched: Instant::now(),
            steps: Steps::of(id, &spec),
            spec: Arc::new(spec),
            enabled: record.enabled,
            disabled_reason: record.disabled_reason,
            failing_since: record.failing_since,
        });
        hooks.insert(id.to_string(), hook.clone());
        Ok(Some(hook))
    }

    fn forget_hook(&self, id: &str) {
        self.hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Why the endpoint should be disabled, when it has failed without a
/// single success for its policy's `disable_after` window.
fn failing_too_long(hook: &CachedHook, webhook: &Webhook, now: Millis) -> Option<String> {
    let since = hook.failing_since?;
    let window = webhook.retry.disable_after;
    let failing = Duration::from_millis(now.saturating_sub(since).max(0) as u64);
    (failing >= window).then(|| {
        format!(
            "every request failed for {} (since {}); the limit is {}",
            humantime::format_duration(Duration::from_secs(failing.as_secs())),
            rfc3339(since),
            humantime::format_duration(window)
        )
    })
}

/// When to try again after a failed attempt, or give up.
fn next_after(webhook: &Webhook, attempts: u32, verdict: &Verdict) -> Next {
    match webhook.retry.next(attempts, verdict, rand::random::<f64>()) {
        Some(delay) => Next::Retry {
            at: after(now_ms(), delay),
        },
        None => Next::GiveUp,
    }
}

/// What a hook test got back from the receiver.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TestSend {
    /// The event sent.
    pub event: String,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// The receiver's body (capped).
    pub body: Option<String>,
    /// Failure kind (`timeout`, `connect`, `plugin`, ...).
    pub error_kind: Option<String>,
    /// Failure detail.
    pub error: Option<String>,
    /// Why a step cancelled the send, if one did.
    pub cancelled: Option<String>,
    /// How long the request took.
    pub duration_ms: u64,
}

impl TestSend {
    fn cancelled(event: &str, reason: String) -> Self {
        TestSend {
            cancelled: Some(reason),
            ..TestSend::failed(event, "cancelled", String::new())
        }
    }

    fn failed(event: &str, kind: &str, message: String) -> Self {
        TestSend {
            event: event.to_string(),
            status: None,
            body: None,
            error_kind: Some(kind.to_string()),
            error: (!message.is_empty()).then_some(message),
            cancelled: None,
            duration_ms: 0,
        }
    }
}

/// An event time as Logto writes it: RFC 3339 with milliseconds and `Z`.
/// Times outside what RFC 3339 can write (refused at ingest) are clamped,
/// so a stored one can never stop a delivery.
fn rfc3339(at: Millis) -> String {
    let at = at.clamp(0, crate::store::LATEST_EVENT_TIME) as u64;
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at)).to_string()
}

/// Request headers: content type and user agent, the hook's own headers and
/// those its steps added (neither may touch the signature headers), then the
/// Logto and Standard Webhooks signatures.
fn signed_headers(
    spec: &HookSpec,
    webhook: &Webhook,
    delivery_id: &str,
    body: &[u8],
    added: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = vec![
        ("content-type".into(), "application/json".into()),
        ("user-agent".into(), USER_AGENT.into()),
    ];
    let custom = webhook
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()));
    for (name, value) in custom.chain(added.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v))) {
        if refused_header(&name).is_some() {
            continue;
        }
        headers.retain(|(n, _)| *n != name);
        headers.push((name, value));
    }
    if let Some(key) = webhook.logto_key(now_ms()) {
        headers.push(("logto-signature-sha-256".into(), logto_signature(key, body)));
    }
    let now = now_ms();
    let timestamp = now / 1000;
    headers.push(("webhook-id".into(), delivery_id.to_string()));
    headers.push(("webhook-timestamp".into(), timestamp.to_string()));
    let secrets = spec.active_secrets(now);
    if !secrets.is_empty() {
        headers.push((
            "webhook-signature".into(),
            standard_signature(&secrets, delivery_id, timestamp, body),
        ));
    }
    headers
}

/// Header names whose values are masked in attempt logs.
fn is_secret_header(name: &str) -> bool {
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "api-key",
        "apikey",
    ]
    .iter()
    .any(|s| name.contains(s))
}

fn record(started_at: i64, headers: &[(String, String)], body: &[u8], sent: &Sent) -> NewAttempt {
    NewAttempt {
        started_at,
        duration_ms: sent.duration.as_millis() as u64,
        request_headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    if is_secret_header(n) {
                        "***".into()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect(),
        request_body: String::from_utf8_lossy(body).into_owned(),
        response_status: sent.status,
        response_headers: sent
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        response_body: sent.body.clone(),
        error_kind: sent.error_kind.map(String::from),
        error_message: sent.error.clone(),
        success: sent.status.is_some_and(|s| (200..300).contains(&s)),
    }
}

/// An attempt that failed before any request was sent.
fn failure(kind: &str, message: &str) -> NewAttempt {
    NewAttempt {
        started_at: now_ms(),
        error_kind: Some(kind.to_string()),
        error_message: Some(message.to_string()),
        ..NewAttempt::default()
    }
}
