//! Durable state: hooks, plugins, events, the delivery work queue and the
//! attempt log, behind one trait with two backends.
//!
//! - [`sqlite`]: the embedded default, one file under the data directory.
//!   WAL mode; writes from many callers are grouped into one transaction and
//!   one fsync (group commit), and every caller hears back only after that
//!   commit.
//! - [`postgres`]: for several host processes sharing one database. Claims
//!   use `FOR UPDATE SKIP LOCKED` under leases; `LISTEN/NOTIFY` wakes idle
//!   workers when work arrives.
//!
//! Nothing outside this module writes SQL. An event and its deliveries are
//! written in one transaction; claiming takes a lease and commits at once,
//! so no lock or transaction is held while a webhook is being sent.

mod held;
pub mod postgres;
mod sql;
pub mod sqlite;
mod types;

use std::sync::Arc;
use std::time::Duration;

pub use self::types::*;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No hook, plugin, event or delivery with that id.
    #[error("{kind} `{id}` does not exist")]
    NotFound {
        /// What was looked for: `hook`, `plugin`, `event`, `delivery`.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// An object with that id already exists.
    #[error("{kind} `{id}` already exists")]
    Conflict {
        /// What kind of object.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The input breaks a rule of the store (size cap, empty name, ...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The caller's lease on a delivery expired and another worker took it.
    #[error("the lease on delivery `{0}` is no longer held by this worker")]
    LeaseLost(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The store cannot take more work now (its write queue is full);
    /// nothing was written. Try again shortly.
    #[error("the store is busy: {0}")]
    Busy(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Database(match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        })
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// The durable state the rest of the host works on. Both backends pass one
/// conformance suite (`host/tests/store.rs`).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The caps this store enforces.
    fn limits(&self) -> StoreLimits;

    // Hooks and plugins.

    /// Create a hook; [`StoreError::Conflict`] if its id is taken.
    async fn create_hook(&self, hook: &HookRecord) -> StoreResult<()>;
    /// Replace a hook's definition; [`StoreError::NotFound`] if it is unknown.
    async fn update_hook(&self, hook: &HookRecord) -> StoreResult<()>;
    /// One hook.
    async fn get_hook(&self, id: &str) -> StoreResult<Option<HookRecord>>;
    /// Every hook, by id.
    async fn list_hooks(&self) -> StoreResult<Vec<HookRecord>>;
    /// Delete a hook with its deliveries and their attempts.
    async fn delete_hook(&self, id: &str) -> StoreResult<()>;
    /// Enable a hook, or disable it recording why.
    async fn set_hook_enabled(
        &self,
        id: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> StoreResult<()>;
    /// Store a plugin under its name, replacing an older one of that name.
    async fn put_plugin(&self, plugin: &PluginRecord) -> StoreResult<()>;
    /// One plugin, with its bytes.
    async fn get_plugin(&self, name: &str) -> StoreResult<Option<PluginRecord>>;
    /// Every plugin, by name, without bytes.
    async fn list_plugins(&self) -> StoreResult<Vec<PluginRecord>>;
    /// Delete a plugin.
    async fn delete_plugin(&self, name: &str) -> StoreResult<()>;

    // Events and deliveries.

    /// Durably store events, each with one pending delivery per enabled hook
    /// subscribed to its name, all in one transaction per event. A repeated
    /// event id returns the first result and writes nothing. Returns once the
    /// writes are committed; results are in input order.
    async fn ingest(&self, events: Vec<NewEvent>) -> StoreResult<Vec<StoreResult<Ingested>>>;
    /// A new delivery of a stored event to one hook (manual resend, replay).
    async fn enqueue(&self, event_id: &str, hook_id: &str) -> StoreResult<DeliveryRef>;
    /// Take up to `limit` due deliveries under a lease for `owner`. Due means
    /// pending with its attempt time reached, or in flight under an expired
    /// lease (a crashed worker's). The lease is committed before returning.
    async fn claim(&self, owner: &str, limit: usize, lease: Duration) -> StoreResult<Vec<Claimed>>;
    /// Take due deliveries for `owner` the way a dispatcher works the
    /// queue: earliest due first, at most `limit`, and of each hook at most
    /// its free slots, as `free.slots` gives them (`free.default` for hooks
    /// not listed), so nothing claimed has to wait for its endpoint. On
    /// PostgreSQL the database's clock decides what is due and when the
    /// lease ends.
    async fn claim_free(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
        free: &FreeSlots,
    ) -> StoreResult<Vec<Claimed>>;
    /// When the next delivery that [`Store::claim_free`] could take with
    /// `free` falls due (it may be now), or `None` when none is waiting.
    async fn next_due(&self, free: &FreeSlots) -> StoreResult<Option<Millis>>;
    /// Extend `owner`'s leases on `ids`; returns how many are still held.
    async fn renew(&self, owner: &str, ids: &[String], lease: Duration) -> StoreResult<usize>;
    /// Record an attempt (none when no request was sent, e.g. a step
    /// cancelled the delivery) and what follows it, atomically, if `owner`
    /// still holds the lease ([`StoreError::LeaseLost`] otherwise).
    async fn finish_attempt(
        &self,
        owner: &str,
        delivery_id: &str,
        attempt: Option<NewAttempt>,
        next: Next,
    ) -> StoreResult<()>;
    /// Make a finished or waiting delivery due now (manual retry).
    async fn retry_now(&self, delivery_id: &str) -> StoreResult<()>;

    // Queries.

    /// Store inbound source `id` with its definition (JSON text), replacing
    /// any earlier one.
    async fn put_source(&self, id: &str, spec: &str) -> StoreResult<()>;
    /// Source `id`'s definition (JSON text).
    async fn get_source(&self, id: &str) -> StoreResult<Option<String>>;
    /// Every source: id and definition, by id.
    async fn list_sources(&self) -> StoreResult<Vec<(String, String)>>;
    /// Delete source `id`; `NotFound` if there is none.
    async fn delete_source(&self, id: &str) -> StoreResult<()>;

    /// Deliveries of a hook (or of every hook), newest first, filtered and
    /// paginated.
    async fn deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<Delivery>>;
    /// One delivery with its attempts, oldest first.
    async fn delivery(&self, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>>;
    /// Attempts of a hook's deliveries since `since`: requests, successes,
    /// failures and request latency percentiles.
    async fn hook_stats(&self, hook_id: &str, since: Millis) -> StoreResult<HookStats>;
    /// [`hook_stats`](Store::hook_stats) without the latency percentiles,
    /// which cost most: for lists of hooks.
    async fn hook_counts(&self, hook_id: &str, since: Millis) -> StoreResult<HookStats>;
    /// Every attempt of a hook's deliveries since `since`, for charts.
    async fn attempt_samples(
        &self,
        hook_id: &str,
        since: Millis,
    ) -> StoreResult<Vec<AttemptSample>>;
    /// Events created in `[since, until)`, oldest first (by time, then id),
    /// at most `limit`. To page, pass the last event's time as `since` and
    /// its id as `after`.
    async fn events_between(
        &self,
        since: Millis,
        until: Millis,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Register a custom event name (idempotent).
    async fn register_event_type(&self, name: &str) -> StoreResult<()>;
    /// The registered custom event names, sorted.
    async fn event_types(&self) -> StoreResult<Vec<String>>;
    /// Pending and in-flight deliveries, and the age of the oldest due one.
    async fn queue_depth(&self) -> StoreResult<QueueDepth>;

    // Upkeep.

    /// Delete events older than `before` whose deliveries are all finished,
    /// with those deliveries and attempts, `batch` events per transaction.
    /// Returns the number of events deleted.
    async fn prune(&self, before: Millis, batch: usize) -> StoreResult<u64>;
    /// Wait until new work may be due, or at most `max`.
    async fn wait_for_work(&self, max: Duration);
}

/// How many more deliveries each hook may have in flight: what a claim may
/// take of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeSlots {
    /// Free slots by hook id.
    pub slots: std::collections::BTreeMap<String, u32>,
    /// Free slots of a hook not listed.
    pub default: u32,
}

impl FreeSlots {
    /// The most a claim under these slots can take: every listed hook's
    /// free slots, and room for [`UNSEEN_PER_CLAIM`] hooks not listed. A
    /// claim asks for no more.
    pub fn claimable(&self) -> usize {
        let listed: usize = self.slots.values().map(|&n| n as usize).sum();
        listed + self.default as usize * UNSEEN_PER_CLAIM
    }

    /// The slots as the JSON object the claim statements read.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(&self.slots).expect("a map of counts serialises")
    }
}

/// How many hooks not listed in [`FreeSlots`] one claim makes room for.
pub const UNSEEN_PER_CLAIM: usize = 32;

/// A shared store handle.
pub type SharedStore = Arc<dyn Store>;

/// Open the store a database URL names: `postgres://...` or
/// `postgresql://...` for PostgreSQL, `sqlite://PATH` or a plain path for
/// SQLite.
pub async fn open(url: &str, limits: StoreLimits) -> StoreResult<SharedStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PostgresStore::connect(url, limits).await?,
        ))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Arc::new(sqlite::SqliteStore::open(path.as_ref(), limits)?))
    }
}
