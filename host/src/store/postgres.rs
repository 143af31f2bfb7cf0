//! The PostgreSQL backend, for several host processes sharing one database.
//!
//! Claims lock due rows with `FOR UPDATE SKIP LOCKED`, so concurrent
//! claimers never take the same delivery, and commit the lease at once. A
//! worker that dies leaves leases that expire; the next claim takes them
//! over. Writes that create work send `NOTIFY wasmhooks_work` inside their
//! transaction; each store holds a `LISTEN` connection that wakes its idle
//! workers when one arrives.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::sql::{self, pg, Dialect};
use super::types::*;
use super::{FreeSlots, Store, StoreError, StoreResult};

/// The channel work notifications travel on.
const CHANNEL: &str = "wasmhooks_work";

/// An advisory lock key that serialises migrations across processes.
const MIGRATION_LOCK: i64 = 0x7761_736d_686f_6f6b;

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    limits: StoreLimits,
    work: Arc<Notify>,
    ingest_queue: mpsc::Sender<IngestRequest>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Group-commit tasks (and so connections) writing events at once.
const COMMITTERS: usize = 4;

/// How long a request waits for a pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(5);

fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn not_found(kind: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        id: id.to_string(),
    }
}

impl PostgresStore {
    /// Connect to `url`, migrate the schema and start listening for work.
    pub async fn connect(url: &str, limits: StoreLimits) -> StoreResult<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("database URL: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // A request waits at most this long for a connection; past it the
        // store answers busy instead of queueing without bound.
        let pool = Pool::builder(manager)
            .max_size(32)
            .wait_timeout(Some(POOL_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(db)?;
        migrate(&pool).await?;
        let work = Arc::new(Notify::new());
        let (ingest_queue, requests) = mpsc::channel(4096);
        let requests = Arc::new(tokio::sync::Mutex::new(requests));
        let mut tasks = vec![tokio::spawn(listen(config, work.clone()))];
        for _ in 0..COMMITTERS {
            tasks.push(tokio::spawn(group_committer(
                pool.clone(),
                requests.clone(),
            )));
        }
        Ok(PostgresStore {
            pool,
            limits,
            work,
            ingest_queue,
            tasks,
        })
    }

    /// Turn each repeated id whose stored event differs from the one sent
    /// into a conflict.
    async fn check_repeats(
        &self,
        sent: &[NewEvent],
        stored: Vec<Ingested>,
    ) -> StoreResult<Vec<StoreResult<Ingested>>> {
        let repeated: Vec<&str> = stored
            .iter()
            .filter(|i| i.duplicate)
            .map(|i| i.event_id.as_str())
            .collect();
        let mut content = std::collections::HashMap::new();
        if !repeated.is_empty() {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT id, name, payload FROM events WHERE id = ANY($1)",
                    &[&repeated],
                )
                .await?;
            for row in rows {
                content.insert(
                    row.get::<_, String>(0),
                    (row.get::<_, String>(1), row.get::<_, String>(2)),
                );
            }
        }
        Ok(stored
            .into_iter()
            .zip(sent)
            .map(|(ingested, event)| match content.get(&ingested.event_id) {
                Some((name, payload))
                    if ingested.duplicate && !same_event(name, payload, event) =>
                {
                    Err(reused_id(&ingested.event_id))
                }
                _ => Ok(ingested),
            })
            .collect())
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Timeout(_) => StoreError::Busy(format!(
                "no database connection came free within {}",
                humantime::format_duration(POOL_WAIT)
            )),
            other => db(other),
        })
    }

    async fn load_hooks(&self, id: Option<&str>) -> StoreResult<Vec<HookRecord>> {
        let client = self.client().await?;
        let rows = client.query(&pg(sql::SELECT_HOOKS), &[&id]).await?;
        let events_stmt = client.prepare_cached(&pg(sql::SELECT_HOOK_EVENTS)).await?;
        let mut hooks = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.get(0);
            let spec: String = row.get(1);
            let events = client
                .query(&events_stmt, &[&id])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            hooks.push(HookRecord {
                id,
                events,
                spec: serde_json::from_str(&spec).map_err(|e| db(format!("hook spec: {e}")))?,
                enabled: row.get(2),
                disabled_reason: row.get(3),
                created_at: row.get(4),
                updated_at: row.get(5),
                ordered: row.get(6),
                failing_since: row.get(7),
            });
        }
        Ok(hooks)
    }
}

/// Run the schema migrations not yet applied, one process at a time.
async fn migrate(pool: &Pool) -> StoreResult<()> {
    let mut client = pool.get().await.map_err(db)?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
    for (version, statements) in sql::migrations(Dialect::Postgres).iter().enumerate() {
        let version = version as i64 + 1;
        let done = tx
            .query_opt(
                "SELECT version FROM schema_migrations WHERE version = $1",
                &[&version],
            )
            .await?;
        if done.is_none() {
            tx.batch_execute(statements)
                .await
                .map_err(|e| StoreError::Database(format!("migration {version} failed: {e}")))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[&version, &now_ms()],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The database's clock, in milliseconds since the epoch: every process
/// sharing the database judges leases and due times by it.
async fn database_now(client: &tokio_postgres::Client) -> StoreResult<Millis> {
    let row = client
        .query_one(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Hold a `LISTEN` connection and wake waiting workers on each notification;
/// reconnect with a pause when the connection drops.
async fn listen(config: tokio_postgres::Config, work: Arc<Notify>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let listening = async {
                    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
                    Ok::<_, tokio_postgres::Error>(())
                };
                let driver = async {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => work.notify_one(),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "work notification connection failed");
                                break;
                            }
                        }
                    }
                };
                let (subscribed, ()) = tokio::join!(listening, driver);
                if let Err(e) = subscribed {
                    tracing::warn!(error = %e, "LISTEN failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot open the work notification connection"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A claimed delivery from a claim's row: the delivery's columns, then
/// its event's name, payload and time, then its host failures.
fn claimed_from_row(row: &Row) -> Claimed {
    Claimed {
        delivery: delivery_from_row(row),
        event_name: row.get(10),
        payload: row.get(11),
        event_created_at: row.get(12),
        host_failures: row.get::<_, i64>(13) as u32,
    }
}

fn delivery_from_row(row: &Row) -> Delivery {
    let status: String = row.get(3);
    Delivery {
        id: row.get(0),
        event_id: row.get(1),
        hook_id: row.get(2),
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Failed),
        attempts: row.get::<_, i64>(4) as u32,
        due_at: row.get(5),
        last_error: row.get(6),
        created_at: row.get(7),
        updated_at: row.get(8),
        finished_at: row.get(9),
    }
}

fn headers_json(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".into())
}

fn headers_from(text: Option<String>) -> Vec<(String, String)> {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

async fn write_hook_events(tx: &Transaction<'_>, hook: &HookRecord) -> StoreResult<()> {
    tx.execute(&pg(sql::DELETE_HOOK_EVENTS), &[&hook.id])
        .await?;
    let insert = tx.prepare_cached(&pg(sql::INSERT_HOOK_EVENT)).await?;
    for event in &hook.events {
        tx.execute(&insert, &[&hook.id, event]).await?;
    }
    Ok(())
}

async fn notify_work(tx: &Transaction<'_>) -> StoreResult<()> {
    tx.batch_execute(&format!("NOTIFY {CHANNEL}")).await?;
    Ok(())
}

/// Store validated events and their deliveries inside `tx`, in a fixed
/// number of round trips whatever the batch size: one multi-row insert of
/// the events (duplicates skipped), one lookup of subscribed hooks, one
/// multi-row insert of the deliveries, one lookup of duplicates' deliveries.
/// Returns whether any delivery was created, and the results in input order.
async fn ingest_batch(
    tx: &Transaction<'_>,
    events: Vec<NewEvent>,
) -> StoreResult<(bool, Vec<Ingested>)> {
    let now = now_ms();
    let ids: Vec<String> = events
        .iter()
        .map(|e| e.id.clone().unwrap_or_else(|| new_id("evt")))
        .collect();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    let payloads: Vec<&str> = events.iter().map(|e| e.payload.as_str()).collect();
    let created_at: Vec<i64> = events.iter().map(|e| e.created_at).collect();
    let insert = tx.prepare_cached(INSERT_EVENTS).await?;
    let inserted: std::collections::HashSet<String> = tx
        .query(&insert, &[&ids, &names, &payloads, &created_at, &now])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();

    let mut distinct: Vec<&str> = names.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let subscribed = tx.prepare_cached(SUBSCRIBED_TO_ANY).await?;
    let mut hooks_of: std::collections::HashMap<String, Vec<String>> =
        std::collections::HashMap::new();
    let mut ordered = std::collections::HashSet::new();
    for row in tx.query(&subscribed, &[&distinct]).await? {
        let hook: String = row.get(1);
        if row.get::<_, bool>(2) {
            ordered.insert(hook.clone());
        }
        hooks_of.entry(row.get(0)).or_default().push(hook);
    }

    // The first occurrence of a newly inserted id is new; every other
    // occurrence (and every id already stored) is a duplicate.
    let mut first_seen = std::collections::HashSet::new();
    let mut results: Vec<Option<Ingested>> = Vec::with_capacity(events.len());
    let (mut d_ids, mut d_events, mut d_hooks) = (Vec::new(), Vec::new(), Vec::new());
    for (id, name) in ids.iter().zip(&names) {
        if inserted.contains(id) && first_seen.insert(id.clone()) {
            let deliveries: Vec<DeliveryRef> = hooks_of
                .get(*name)
                .into_iter()
                .flatten()
                .map(|hook_id| DeliveryRef {
                    id: new_id("dlv"),
                    hook_id: hook_id.clone(),
                })
                .collect();
            for d in &deliveries {
                d_ids.push(d.id.clone());
                d_events.push(id.clone());
                d_hooks.push(d.hook_id.clone());
            }
            results.push(Some(Ingested {
                event_id: id.clone(),
                deliveries,
                duplicate: false,
            }));
        } else {
            results.push(None);
        }
    }
    if !d_ids.is_empty() {
        let d_seqs = sequence(tx, &d_hooks, &ordered).await?;
        let insert = tx.prepare_cached(INSERT_DELIVERIES).await?;
        tx.execute(&insert, &[&d_ids, &d_events, &d_hooks, &now, &d_seqs])
            .await?;
    }

    let duplicates: Vec<&String> = ids
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_none())
        .map(|(id, _)| id)
        .collect();
    let mut earlier: std::collections::HashMap<String, Vec<DeliveryRef>> =
        std::collections::HashMap::new();
    if !duplicates.is_empty() {
        let select = tx.prepare_cached(SELECT_INGESTED_ANY).await?;
        for row in tx.query(&select, &[&duplicates]).await? {
            earlier.entry(row.get(0)).or_default().push(DeliveryRef {
                id: row.get(1),
                hook_id: row.get(2),
            });
        }
    }
    let created = !d_ids.is_empty();
    let results = ids
        .into_iter()
        .zip(results)
        .map(|(id, result)| {
            result.unwrap_or_else(|| Ingested {
                deliveries: earlier.get(&id).cloned().unwrap_or_default(),
                event_id: id,
                duplicate: true,
            })
        })
        .collect();
    Ok((created, results))
}

/// Each delivery's sequence number within its hook, for the `ordered` ones
/// (in batch order), taking a block of numbers per hook in id order so that
/// concurrent batches lock hooks in the same order.
async fn sequence(
    tx: &Transaction<'_>,
    hooks: &[String],
    ordered: &std::collections::HashSet<String>,
) -> StoreResult<Vec<Option<i64>>> {
    let mut counts: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for hook in hooks.iter().filter(|h| ordered.contains(*h)) {
        *counts.entry(hook.as_str()).or_default() += 1;
    }
    let mut next: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    if !counts.is_empty() {
        let take = tx.prepare_cached(&pg(sql::NEXT_SEQ)).await?;
        for (hook, count) in counts {
            if let Some(row) = tx.query_opt(&take, &[&hook, &count]).await? {
                let last: i64 = row.get(0);
                next.insert(hook, last - count + 1);
            }
        }
    }
    Ok(hooks
        .iter()
        .map(|hook| {
            next.get_mut(hook.as_str()).map(|seq| {
                *seq += 1;
                *seq - 1
            })
        })
        .collect())
}

/// Params: ids, names, payloads, created-at times (arrays), now.
const INSERT_EVENTS: &str = "INSERT INTO events (id, name, payload, created_at, received_at)
     SELECT id, name, payload, created_at, $5
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) AS e (id, name, payload, created_at)
     ON CONFLICT (id) DO NOTHING RETURNING id";

/// Params: event names (array).
const SUBSCRIBED_TO_ANY: &str =
    "SELECT he.event_name, he.hook_id, h.ordered FROM hook_events he JOIN hooks h ON h.id = he.hook_id
     WHERE he.event_name = ANY($1) AND h.enabled ORDER BY he.event_name, he.hook_id";

/// Params: delivery ids, event ids, hook ids (arrays), now, sequence
/// numbers (array, NULL for hooks that are not ordered).
const INSERT_DELIVERIES: &str =
    "INSERT INTO deliveries (id, event_id, hook_id, source, status, attempts, due_at, created_at, updated_at, seq)
     SELECT id, event_id, hook_id, 'ingest', 'pending', 0, $4, $4, $4, seq
     FROM UNNEST($1::text[], $2::text[], $3::text[], $5::bigint[]) AS d (id, event_id, hook_id, seq)";

/// Params: event ids (array).
const SELECT_INGESTED_ANY: &str = "SELECT event_id, id, hook_id FROM deliveries
     WHERE event_id = ANY($1) AND source = 'ingest' ORDER BY event_id, hook_id";

/// One caller's events waiting for the next group commit.
struct IngestRequest {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<StoreResult<Vec<Ingested>>>,
}

/// Most events one group-commit transaction takes.
const MAX_GROUP: usize = 1024;

/// Group commit: take every request waiting, write them all in one
/// transaction, answer each after the commit. Several of these run at once,
/// each on its own connection, so one batch's fsync overlaps the next.
async fn group_committer(
    pool: Pool,
    requests: Arc<tokio::sync::Mutex<mpsc::Receiver<IngestRequest>>>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut receiver = requests.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut size = first.events.len();
            batch.push(first);
            while size < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(request) => {
                        size += request.events.len();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
        }
        let sizes: Vec<usize> = batch.iter().map(|r| r.events.len()).collect();
        let (events, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|r| (r.events, r.reply)).unzip();
        let outcome = async {
            let mut client = pool.get().await.map_err(db)?;
            let tx = client.transaction().await?;
            let (created, results) =
                ingest_batch(&tx, events.into_iter().flatten().collect()).await?;
            if created {
                notify_work(&tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(results)
        }
        .await;
        match outcome {
            Ok(results) => {
                let mut results = results.into_iter();
                for (reply, size) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(results.by_ref().take(size).collect()));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Database(format!(
                        "nothing was written: {e}"
                    ))));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn limits(&self) -> StoreLimits {
        self.limits
    }

    async fn create_hook(&self, hook: &HookRecord) -> StoreResult<()> {
        validate_hook(hook)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .execute(
                &pg(sql::INSERT_HOOK),
                &[
                    &hook.id,
                    &hook.spec.to_string(),
                    &hook.enabled,
                    &hook.disabled_reason,
                    &hook.created_at,
                    &hook.updated_at,
                    &hook.ordered,
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict {
                kind: "hook",
                id: hook.id.clone(),
            });
        }
        write_hook_events(&tx, hook).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_hook(&self, hook: &HookRecord) -> StoreResult<()> {
        validate_hook(hook)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let updated = tx
            .execute(
                &pg(sql::UPDATE_HOOK),
                &[
                    &hook.id,
                    &hook.spec.to_string(),
                    &hook.enabled,
                    &hook.disabled_reason,
                    &hook.updated_at,
                    &hook.ordered,
                ],
            )
            .await?;
        if updated == 0 {
            return Err(not_found("hook", &hook.id));
        }
        write_hook_events(&tx, hook).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_hook(&self, id: &str) -> StoreResult<Option<HookRecord>> {
        Ok(self.load_hooks(Some(id)).await?.pop())
    }

    async fn list_hooks(&self) -> StoreResult<Vec<HookRecord>> {
        self.load_hooks(None).await
    }

    async fn delete_hook(&self, id: &str) -> StoreResult<()> {
        match self
            .client()
            .await?
            .execute(&pg(sql::DELETE_HOOK), &[&id])
            .await?
        {
            0 => Err(not_found("hook", id)),
            _ => Ok(()),
        }
    }

    async fn set_hook_enabled(
        &self,
        id: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        let reason = if enabled { None } else { reason };
        match self
            .client()
            .await?
            .execute(
                &pg(sql::SET_HOOK_ENABLED),
                &[&id, &enabled, &reason, &now_ms()],
            )
            .await?
        {
            0 => Err(not_found("hook", id)),
            _ => Ok(()),
        }
    }

    async fn put_plugin(&self, plugin: &PluginRecord) -> StoreResult<()> {
        validate_id("plugin name", &plugin.name)?;
        self.client()
            .await?
            .execute(
                &pg(sql::PUT_PLUGIN),
                &[
                    &plugin.name,
                    &plugin.hash,
                    &(plugin.size as i64),
                    &plugin.bytes,
                    &plugin.created_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn get_plugin(&self, name: &str) -> StoreResult<Option<PluginRecord>> {
        let row = self
            .client()
            .await?
            .query_opt(&pg(sql::GET_PLUGIN), &[&name])
            .await?;
        Ok(row.map(|r| PluginRecord {
            name: r.get(0),
            hash: r.get(1),
            size: r.get::<_, i64>(2) as u64,
            bytes: r.get(3),
            created_at: r.get(4),
        }))
    }

    async fn list_plugins(&self) -> StoreResult<Vec<PluginRecord>> {
        let rows = self.client().await?.query(sql::LIST_PLUGINS, &[]).await?;
        Ok(rows
            .iter()
            .map(|r| PluginRecord {
                name: r.get(0),
                hash: r.get(1),
                size: r.get::<_, i64>(2) as u64,
                bytes: Vec::new(),
                created_at: r.get(3),
            })
            .collect())
    }

    async fn delete_plugin(&self, name: &str) -> StoreResult<()> {
        match self
            .client()
            .await?
            .execute(&pg(sql::DELETE_PLUGIN), &[&name])
            .await?
        {
            0 => Err(not_found("plugin", name)),
            _ => Ok(()),
        }
    }

    async fn ingest(&self, events: Vec<NewEvent>) -> StoreResult<Vec<StoreResult<Ingested>>> {
        let checks: Vec<StoreResult<()>> = events
            .iter()
            .map(|e| validate_event(e, &self.limits))
            .collect();
        let valid: Vec<NewEvent> = events
            .into_iter()
            .zip(&checks)
            .filter(|(_, c)| c.is_ok())
            .map(|(e, _)| e)
            .collect();
        let sent: Vec<NewEvent> = valid.clone();
        let stored = if valid.is_empty() {
            Vec::new()
        } else {
            let (reply, answer) = oneshot::channel();
            self.ingest_queue
                .send(IngestRequest {
                    events: valid,
                    reply,
                })
                .await
                .map_err(|_| StoreError::Database("the group-commit tasks have stopped".into()))?;
            answer.await.map_err(|_| {
                StoreError::Database("a group-commit task dropped a request".into())
            })??
        };
        let mut stored = self.check_repeats(&sent, stored).await?.into_iter();
        Ok(checks
            .into_iter()
            .map(|check| {
                check.and_then(|()| {
                    stored
                        .next()
                        .unwrap_or_else(|| Err(StoreError::Database("missing result".into())))
                })
            })
            .collect())
    }

    async fn enqueue(&self, event_id: &str, hook_id: &str) -> StoreResult<DeliveryRef> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if tx
            .query_opt(&pg(sql::EXISTS_EVENT), &[&event_id])
            .await?
            .is_none()
        {
            return Err(not_found("event", event_id));
        }
        if tx
            .query_opt(&pg(sql::EXISTS_HOOK), &[&hook_id])
            .await?
            .is_none()
        {
            return Err(not_found("hook", hook_id));
        }
        let id = new_id("dlv");
        let seq: Option<i64> = tx
            .query_opt(&pg(sql::NEXT_SEQ), &[&hook_id, &1i64])
            .await?
            .map(|r| r.get(0));
        tx.execute(
            &pg(sql::INSERT_DELIVERY),
            &[&id, &event_id, &hook_id, &"enqueue", &now_ms(), &seq],
        )
        .await?;
        notify_work(&tx).await?;
        tx.commit().await?;
        Ok(DeliveryRef {
            id,
            hook_id: hook_id.to_string(),
        })
    }

    async fn claim(&self, owner: &str, limit: usize, lease: Duration) -> StoreResult<Vec<Claimed>> {
        let client = self.client().await?;
        let now = database_now(&client).await?;
        let claim = client.prepare_cached(&pg(&sql::claim_due())).await?;
        let rows = client
            .query(&claim, &[&now, &(limit as i64), &owner, &after(now, lease)])
            .await?;
        Ok(rows.iter().map(claimed_from_row).collect())
    }

    async fn claim_free(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
        free: &FreeSlots,
    ) -> StoreResult<Vec<Claimed>> {
        let client = self.client().await?;
        let now = database_now(&client).await?;
        let claim = client
            .prepare_cached(&sql::PG_CLAIM_WITHIN_FREE_SLOTS)
            .await?;
        let default = i64::from(free.default);
        let rows = client
            .query(
                &claim,
                &[
                    &now,
                    &(limit as i64),
                    &free.to_json(),
                    &default,
                    &owner,
                    &after(now, lease),
                ],
            )
            .await?;
        Ok(rows.iter().map(claimed_from_row).collect())
    }

    async fn next_due(&self, free: &FreeSlots) -> StoreResult<Option<Millis>> {
        let client = self.client().await?;
        let next = client
            .prepare_cached(&sql::PG_NEXT_DUE_OF_FREE_HOOKS)
            .await?;
        let default = i64::from(free.default);
        let row = client
            .query_one(&next, &[&free.to_json(), &default, &Millis::MAX])
            .await?;
        Ok(row.get(0))
    }

    async fn renew(&self, owner: &str, ids: &[String], lease: Duration) -> StoreResult<usize> {
        let client = self.client().await?;
        let renew = client.prepare_cached(&pg(sql::RENEW_LEASE)).await?;
        let now = database_now(&client).await?;
        let mut held = 0;
        for id in ids {
            held += client
                .execute(&renew, &[id, &owner, &after(now, lease), &now])
                .await? as usize;
        }
        Ok(held)
    }

    async fn finish_attempt(
        &self,
        owner: &str,
        delivery_id: &str,
        attempt: Option<NewAttempt>,
        next: Next,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let now = now_ms();
        let after = sql::after_attempt(&next, attempt.as_ref(), now);
        let finish = tx.prepare_cached(&pg(sql::FINISH_ATTEMPT)).await?;
        let health = tx.prepare_cached(&pg(sql::ENDPOINT_HEALTH)).await?;
        let insert = tx.prepare_cached(&pg(sql::INSERT_ATTEMPT)).await?;
        let finish_params: [&(dyn ToSql + Sync); 8] = [
            &delivery_id,
            &owner,
            &after.status.as_str(),
            &after.due_at,
            &after.error,
            &now,
            &after.finished_at,
            &after.counted,
        ];
        let sent = attempt.as_ref().is_some_and(NewAttempt::sent);
        let success = attempt.as_ref().is_some_and(|a| a.success);
        let limit = self.limits.max_logged_body_bytes;
        // The statements go out together, in order, in one round trip: the
        // attempt's number reads the count the update just raised. When the
        // lease turns out lost, the transaction is rolled back on drop.
        let pipelined = tokio::try_join!(
            tx.execute(&finish, &finish_params),
            async {
                if sent {
                    tx.execute(&health, &[&delivery_id, &success, &now]).await?;
                }
                Ok(())
            },
            async {
                let Some(a) = attempt else { return Ok(()) };
                tx.execute(
                    &insert,
                    &[
                        &delivery_id,
                        &a.started_at,
                        &(a.duration_ms as i64),
                        &headers_json(&a.request_headers),
                        &cap_body(Some(a.request_body), limit),
                        &a.response_status.map(i64::from),
                        &headers_json(&a.response_headers),
                        &cap_body(a.response_body, limit),
                        &a.error_kind,
                        &a.error_message,
                        &a.success,
                    ],
                )
                .await
                .map(drop)
            },
        );
        if !matches!(pipelined, Ok((updated, (), ())) if updated > 0) {
            // Nothing was finished: roll back, and say why. A lost lease or
            // a missing delivery explains a failed statement too.
            drop(tx);
            let exists = client
                .query_opt(&pg(sql::EXISTS_DELIVERY), &[&delivery_id])
                .await?;
            return Err(match (pipelined, exists) {
                (_, None) => not_found("delivery", delivery_id),
                (Err(e), Some(_)) => e.into(),
                (Ok(_), Some(_)) => StoreError::LeaseLost(delivery_id.to_string()),
            });
        }
        if matches!(next, Next::Retry { .. } | Next::Deferred { .. }) {
            notify_work(&tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn retry_now(&self, delivery_id: &str) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let status: Option<String> = tx
            .query_opt(
                &format!("{} FOR UPDATE", pg(sql::SELECT_STATUS)),
                &[&delivery_id],
            )
            .await?
            .map(|r| r.get(0));
        match status.as_deref() {
            None => return Err(not_found("delivery", delivery_id)),
            Some("in_flight") => {
                return Err(StoreError::Invalid(format!(
                    "delivery `{delivery_id}` is being attempted now"
                )))
            }
            Some(_) => {}
        }
        tx.execute(&pg(sql::RETRY_NOW), &[&delivery_id, &now_ms()])
            .await?;
        notify_work(&tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&pg(&sql::list_deliveries())).await?;
        let rows = client
            .query(
                &stmt,
                &[
                    &query.hook_id,
                    &query.status.map(DeliveryStatus::as_str),
                    &query.since,
                    &query.until,
                    &query.after,
                    &(query.limit.clamp(1, 1000) as i64),
                ],
            )
            .await?;
        Ok(rows.iter().map(delivery_from_row).collect())
    }

    async fn delivery(&self, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(&pg(&sql::select_delivery()), &[&id])
            .await?
        else {
            return Ok(None);
        };
        let attempts = client
            .query(&pg(sql::SELECT_ATTEMPTS), &[&id])
            .await?
            .iter()
            .map(|r| Attempt {
                number: r.get::<_, i64>(0) as u32,
                detail: NewAttempt {
                    started_at: r.get(1),
                    duration_ms: r.get::<_, i64>(2) as u64,
                    request_headers: headers_from(r.get(3)),
                    request_body: r.get(4),
                    response_status: r.get::<_, Option<i64>>(5).map(|s| s as u16),
                    response_headers: headers_from(r.get(6)),
                    response_body: r.get(7),
                    error_kind: r.get(8),
                    error_message: r.get(9),
                    success: r.get(10),
                },
            })
            .collect();
        Ok(Some((delivery_from_row(&row), attempts)))
    }

    async fn hook_counts(&self, hook_id: &str, since: Millis) -> StoreResult<HookStats> {
        let client = self.client().await?;
        Ok(hook_counts(&client, hook_id, since).await?.0)
    }

    async fn hook_stats(&self, hook_id: &str, since: Millis) -> StoreResult<HookStats> {
        let client = self.client().await?;
        let (stats, sent) = hook_counts(&client, hook_id, since).await?;
        let at = client.prepare_cached(&pg(sql::LATENCY_AT)).await?;
        let mut values = [None; 3];
        for (value, rank) in values.iter_mut().zip(super::percentile_ranks(sent)) {
            *value = client
                .query_opt(&at, &[&hook_id, &since, &rank])
                .await?
                .map(|r| r.get::<_, i64>(0) as u64);
        }
        Ok(HookStats {
            latency_ms: Latency::from_ranks(values),
            ..stats
        })
    }

    async fn attempt_samples(
        &self,
        hook_id: &str,
        since: Millis,
    ) -> StoreResult<Vec<AttemptSample>> {
        let rows = self
            .client()
            .await?
            .query(&pg(sql::ATTEMPT_SAMPLES), &[&hook_id, &since])
            .await?;
        Ok(rows
            .iter()
            .map(|r| AttemptSample {
                started_at: r.get(0),
                duration_ms: r.get::<_, i64>(1) as u64,
                success: r.get(2),
                sent: r.get(3),
            })
            .collect())
    }

    async fn register_event_type(&self, name: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(&pg(sql::REGISTER_EVENT_TYPE), &[&name, &now_ms()])
            .await?;
        Ok(())
    }

    async fn put_source(&self, id: &str, spec: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(&pg(sql::PUT_SOURCE), &[&id, &spec, &now_ms()])
            .await?;
        Ok(())
    }

    async fn get_source(&self, id: &str) -> StoreResult<Option<String>> {
        let row = self
            .client()
            .await?
            .query_opt(&pg(sql::SELECT_SOURCE), &[&id])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn list_sources(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = self.client().await?.query(sql::LIST_SOURCES, &[]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn delete_source(&self, id: &str) -> StoreResult<()> {
        match self
            .client()
            .await?
            .execute(&pg(sql::DELETE_SOURCE), &[&id])
            .await?
        {
            0 => Err(not_found("source", id)),
            _ => Ok(()),
        }
    }

    async fn event_types(&self) -> StoreResult<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query(sql::LIST_EVENT_TYPES, &[])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn events_between(
        &self,
        since: Millis,
        until: Millis,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<Vec<StoredEvent>> {
        let rows = self
            .client()
            .await?
            .query(
                &pg(sql::EVENTS_BETWEEN),
                &[&since, &until, &(limit as i64), &after],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| StoredEvent {
                id: r.get(0),
                name: r.get(1),
                payload: r.get(2),
                created_at: r.get(3),
            })
            .collect())
    }

    async fn queue_depth(&self) -> StoreResult<QueueDepth> {
        let now = now_ms();
        let row = self
            .client()
            .await?
            .query_one(&pg(sql::QUEUE_DEPTH), &[&now])
            .await?;
        Ok(QueueDepth {
            pending: row.get::<_, i64>(0) as u64,
            in_flight: row.get::<_, i64>(1) as u64,
            oldest_due_ms: row
                .get::<_, Option<i64>>(2)
                .map(|due| (now - due).max(0) as u64),
        })
    }

    async fn prune(&self, before: Millis, batch: usize) -> StoreResult<u64> {
        let client = self.client().await?;
        let batch = batch.max(1) as i64;
        let mut total = 0;
        loop {
            let deleted = client.execute(&pg(sql::PRUNE), &[&before, &batch]).await?;
            total += deleted;
            if (deleted as i64) < batch {
                return Ok(total);
            }
        }
    }

    async fn wait_for_work(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.work.notified()).await;
    }
}

/// A hook's attempt counts since `since`, and how many sent a request.
async fn hook_counts(
    client: &deadpool_postgres::Object,
    hook_id: &str,
    since: Millis,
) -> StoreResult<(HookStats, u64)> {
    let row = client
        .query_one(&pg(sql::HOOK_STATS), &[&hook_id, &since])
        .await?;
    let stats = HookStats {
        requests: row.get::<_, i64>(0) as u64,
        successes: row.get::<_, i64>(1) as u64,
        failures: row.get::<_, i64>(2) as u64,
        latency_ms: Latency::default(),
    };
    Ok((stats, row.get::<_, i64>(3) as u64))
}
