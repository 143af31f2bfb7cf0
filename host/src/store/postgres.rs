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
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::sql::{self, pg, Dialect};
use super::types::*;
use super::{Store, StoreError, StoreResult};

/// The channel work notifications travel on.
const CHANNEL: &str = "wasmhooks_work";

/// An advisory lock key that serialises migrations across processes.
const MIGRATION_LOCK: i64 = 0x7761_736d_686f_6f6b;

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    limits: StoreLimits,
    work: Arc<Notify>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

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
        let pool = Pool::builder(manager).max_size(32).build().map_err(db)?;
        migrate(&pool).await?;
        let work = Arc::new(Notify::new());
        Ok(PostgresStore {
            pool,
            limits,
            listener: tokio::spawn(listen(config, work.clone())),
            work,
        })
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(db)
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
                            Ok(AsyncMessage::Notification(_)) => work.notify_waiters(),
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

/// Store one event and its deliveries inside `tx`.
async fn ingest_one(tx: &Transaction<'_>, event: NewEvent) -> StoreResult<Ingested> {
    let now = now_ms();
    let id = event.id.unwrap_or_else(|| new_id("evt"));
    let insert_event = tx.prepare_cached(&pg(sql::INSERT_EVENT)).await?;
    let inserted = tx
        .execute(
            &insert_event,
            &[&id, &event.name, &event.payload, &event.created_at, &now],
        )
        .await?;
    if inserted == 0 {
        let rows = tx.query(&pg(sql::SELECT_INGESTED), &[&id]).await?;
        return Ok(Ingested {
            event_id: id,
            deliveries: rows
                .iter()
                .map(|r| DeliveryRef {
                    id: r.get(0),
                    hook_id: r.get(1),
                })
                .collect(),
            duplicate: true,
        });
    }
    let subscribed = tx.prepare_cached(&pg(sql::SUBSCRIBED_HOOKS)).await?;
    let hooks: Vec<String> = tx
        .query(&subscribed, &[&event.name])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let insert = tx.prepare_cached(&pg(sql::INSERT_DELIVERY)).await?;
    let mut deliveries = Vec::with_capacity(hooks.len());
    for hook_id in hooks {
        let delivery_id = new_id("dlv");
        tx.execute(&insert, &[&delivery_id, &id, &hook_id, &"ingest", &now])
            .await?;
        deliveries.push(DeliveryRef {
            id: delivery_id,
            hook_id,
        });
    }
    Ok(Ingested {
        event_id: id,
        deliveries,
        duplicate: false,
    })
}

#[async_trait::async_trait]
impl Store for PostgresStore {
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
        let mut client = self.client().await?;
        let mut tx = client.transaction().await?;
        let mut results = Vec::with_capacity(events.len());
        let mut created = false;
        for event in events {
            if let Err(e) = validate_event(&event, &self.limits) {
                results.push(Err(e));
                continue;
            }
            // Each event in its own savepoint: one failure spoils no other.
            let savepoint = tx.transaction().await?;
            match ingest_one(&savepoint, event).await {
                Ok(ingested) => {
                    savepoint.commit().await?;
                    created |= !ingested.deliveries.is_empty() && !ingested.duplicate;
                    results.push(Ok(ingested));
                }
                Err(e) => {
                    savepoint.rollback().await?;
                    results.push(Err(e));
                }
            }
        }
        if created {
            notify_work(&tx).await?;
        }
        tx.commit().await?;
        Ok(results)
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
        tx.execute(
            &pg(sql::INSERT_DELIVERY),
            &[&id, &event_id, &hook_id, &"enqueue", &now_ms()],
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
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let now = now_ms();
        let due = tx.prepare_cached(&pg(sql::DUE_DELIVERIES_LOCKED)).await?;
        let ids: Vec<String> = tx
            .query(&due, &[&now, &(limit as i64)])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let take = tx.prepare_cached(&pg(sql::TAKE_LEASE)).await?;
        let fetch = tx.prepare_cached(&pg(&sql::select_claimed())).await?;
        let lease_end = after(now, lease);
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            tx.execute(&take, &[&id, &owner, &lease_end, &now]).await?;
            let row = tx.query_one(&fetch, &[&id]).await?;
            claimed.push(Claimed {
                delivery: delivery_from_row(&row),
                event_name: row.get(10),
                payload: row.get(11),
                event_created_at: row.get(12),
            });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn renew(&self, owner: &str, ids: &[String], lease: Duration) -> StoreResult<usize> {
        let client = self.client().await?;
        let renew = client.prepare_cached(&pg(sql::RENEW_LEASE)).await?;
        let now = now_ms();
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
        let (status, due_at, error, finished_at) = sql::after_attempt(&next, attempt.as_ref(), now);
        let finish = tx.prepare_cached(&pg(sql::FINISH_ATTEMPT)).await?;
        let updated = tx
            .execute(
                &finish,
                &[
                    &delivery_id,
                    &owner,
                    &status.as_str(),
                    &due_at,
                    &error,
                    &now,
                    &finished_at,
                ],
            )
            .await?;
        if updated == 0 {
            return Err(
                match tx
                    .query_opt(&pg(sql::EXISTS_DELIVERY), &[&delivery_id])
                    .await?
                {
                    Some(_) => StoreError::LeaseLost(delivery_id.to_string()),
                    None => not_found("delivery", delivery_id),
                },
            );
        }
        if let Some(attempt) = attempt {
            let insert = tx.prepare_cached(&pg(sql::INSERT_ATTEMPT)).await?;
            tx.execute(
                &insert,
                &[
                    &delivery_id,
                    &attempt.started_at,
                    &(attempt.duration_ms as i64),
                    &headers_json(&attempt.request_headers),
                    &attempt.request_body,
                    &attempt.response_status.map(i64::from),
                    &headers_json(&attempt.response_headers),
                    &cap_body(attempt.response_body, self.limits.max_logged_body_bytes),
                    &attempt.error_kind,
                    &attempt.error_message,
                    &attempt.success,
                ],
            )
            .await?;
        }
        if matches!(next, Next::Retry { .. }) {
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
            })
            .collect();
        Ok(Some((delivery_from_row(&row), attempts)))
    }

    async fn hook_stats(&self, hook_id: &str, since: Millis) -> StoreResult<HookStats> {
        let row = self
            .client()
            .await?
            .query_one(&pg(sql::HOOK_STATS), &[&hook_id, &since])
            .await?;
        Ok(HookStats {
            requests: row.get::<_, i64>(0) as u64,
            successes: row.get::<_, i64>(1) as u64,
            failures: row.get::<_, i64>(2) as u64,
        })
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
