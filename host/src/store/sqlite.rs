//! The embedded SQLite backend: one database file, WAL mode, fsync on every
//! commit (`synchronous = FULL`).
//!
//! All writes go to one writer thread. It takes every write request waiting
//! in its queue, runs each in its own savepoint inside one transaction, and
//! commits once: many callers share one fsync (group commit), and each hears
//! back only after the commit that holds its write. Reads run on a small pool
//! of read connections, which WAL lets proceed beside the writer.
//!
//! One process uses a database file at a time; to run several hosts, use the
//! PostgreSQL backend.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Row};
use tokio::sync::{oneshot, Notify};

use super::held::Held;
use super::sql::{self, Dialect};
use super::types::*;
use super::{FreeSlots, Store, StoreError, StoreResult};

/// Most write requests one transaction takes.
const MAX_BATCH: usize = 1024;

/// How long a busy writer waits to fill a transaction before committing.
const GATHER: Duration = Duration::from_micros(500);

/// A write request the writer thread runs inside its current transaction.
trait Job: Send {
    /// Run; `Err` means the job failed without a savepoint to undo it, so
    /// the whole transaction must be rolled back.
    fn run(&mut self, conn: &Connection) -> Result<(), ()>;
    fn finish(self: Box<Self>, commit: &StoreResult<()>);
    /// Whether the commit must reach the disk before the caller hears of
    /// it. Leases need not: one lost with the machine is simply taken again.
    fn durable(&self) -> bool;
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
    /// Run inside a savepoint, so a failure undoes only this job. Ingest
    /// jobs skip it (savepoints copy every page they touch): their input is
    /// validated beforehand, so only a database failure can stop them, and
    /// that fails the whole transaction anyway.
    isolated: bool,
    /// See [`Job::durable`].
    durable: bool,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> Result<(), ()> {
        let Some(work) = self.work.take() else {
            return Ok(());
        };
        if !self.isolated {
            let result = work(conn);
            let failed = result.is_err();
            self.result = Some(result);
            return if failed { Err(()) } else { Ok(()) };
        }
        let run = |sql: &str| {
            conn.prepare_cached(sql)
                .and_then(|mut s| s.execute([]))
                .map(drop)
        };
        let result = run("SAVEPOINT job")
            .map_err(StoreError::from)
            .and_then(|()| work(conn));
        let end = if result.is_ok() {
            run("RELEASE job")
        } else {
            run("ROLLBACK TO job").and_then(|()| run("RELEASE job"))
        };
        let result = match (result, end) {
            (Ok(_), Err(e)) => Err(e.into()),
            (result, _) => result,
        };
        self.result = Some(result);
        Ok(())
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn finish(self: Box<Self>, commit: &StoreResult<()>) {
        let result = match commit {
            Ok(()) => self
                .result
                .unwrap_or_else(|| Err(StoreError::Database("write was not run".into()))),
            Err(e) => Err(StoreError::Database(format!("commit failed: {e}"))),
        };
        let _ = self.reply.send(result);
    }
}

/// Lease `ids` to `owner` until `lease` after `now`.
fn take_leases(
    conn: &Connection,
    ids: &[String],
    owner: &str,
    now: Millis,
    lease: Duration,
) -> StoreResult<()> {
    let mut take = conn.prepare_cached(sql::TAKE_LEASE)?;
    for id in ids {
        take.execute(params![id, owner, after(now, lease), now])?;
    }
    Ok(())
}

/// Deliveries `ids` with their events, as claimed.
fn read_claimed(conn: &Connection, ids: &[String]) -> StoreResult<Vec<Claimed>> {
    let mut fetch = conn.prepare_cached(&sql::SELECT_CLAIMED)?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        claimed.push(fetch.query_row([id], |r| {
            Ok(Claimed {
                delivery: delivery_from_row(r)?,
                event_name: r.get(10)?,
                payload: r.get(11)?,
                event_created_at: r.get(12)?,
                host_failures: r.get(13)?,
            })
        })?);
    }
    Ok(claimed)
}

/// The hooks with a free slot under `slots` (JSON) and `default`, and how
/// many each has.
fn hooks_with_free_slots(
    conn: &Connection,
    slots: &str,
    default: u32,
) -> StoreResult<Vec<(String, usize)>> {
    let mut hooks = conn.prepare_cached(&sql::SQLITE_HOOKS_WITH_FREE_SLOTS)?;
    let rows = hooks.query_map(params![slots, default], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as usize))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Hook `hook`'s deliveries due by `now` that `take` allows (given each
/// one's id and due time), earliest first, at most `limit`, with their due
/// times. Those passed over (held here, their leases not yet written) cost
/// a step each.
fn due_of_hook(
    conn: &Connection,
    hook: &str,
    now: Millis,
    limit: usize,
    take: &dyn Fn(&str, Millis) -> bool,
) -> StoreResult<Vec<(String, Millis)>> {
    let mut due = conn.prepare_cached(&sql::SQLITE_DUE_OF_HOOK)?;
    let mut rows = due.query(params![hook, now])?;
    let mut taken = Vec::new();
    while taken.len() < limit {
        let Some(row) = rows.next()? else { break };
        let (id, due): (String, Millis) = (row.get(0)?, row.get(1)?);
        if take(&id, due) {
            taken.push((id, due));
        }
    }
    Ok(taken)
}

/// The SQLite store.
pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Box<dyn Job>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    limits: StoreLimits,
    work: Arc<Notify>,
    /// Writes waiting for the writer thread: ingest stops at
    /// [`MAX_QUEUED_INGEST`], so a burst the disk cannot keep up with is
    /// refused rather than held in memory.
    queued: Arc<AtomicUsize>,
    held: Arc<Held>,
}

/// Waiting writes past which ingest answers busy.
const MAX_QUEUED_INGEST: usize = 20_000;

/// Prepared statements each connection keeps: more than any one of them
/// runs, so none is compiled twice.
const STATEMENT_CACHE: usize = 64;

fn connect(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;
         PRAGMA cache_size = -65536;
         PRAGMA wal_autocheckpoint = 8192;",
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and migrate it.
    pub fn open(path: &Path, limits: StoreLimits) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("creating {}: {e}", dir.display())))?;
        }
        let conn = connect(path)?;
        migrate(&conn)?;
        // One process works a file: what an earlier one had in flight is
        // due again at once, not when its leases would have run out.
        let released = conn.execute(sql::RELEASE_ALL_LEASES, params![now_ms()])?;
        if released > 0 {
            tracing::info!(
                released,
                "deliveries in flight when the last process stopped are due again"
            );
        }
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = queued.clone();
        std::thread::Builder::new()
            .name("wasmhooks-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, &taken))
            .map_err(|e| StoreError::Database(format!("starting the writer thread: {e}")))?;
        Ok(SqliteStore {
            writer: Mutex::new(tx),
            readers: Arc::new(Mutex::new(Vec::new())),
            path: path.to_path_buf(),
            limits,
            work: Arc::new(Notify::new()),
            queued,
            held: Arc::default(),
        })
    }

    /// Run `work` in the writer's next transaction; returns after its commit.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.submit(work, true).await
    }

    /// [`SqliteStore::write`] for lease changes, which need not wait for
    /// the disk (see [`Job::durable`]).
    async fn write_lease<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.submit(work, false).await
    }

    async fn submit<T, F>(&self, work: F, durable: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.send(work, durable)?
            .await
            .map_err(|_| StoreError::Database("the writer thread dropped a request".into()))?
    }

    /// Queue `work` for the writer; the answer comes after its commit.
    fn send<T, F>(&self, work: F, durable: bool) -> StoreResult<oneshot::Receiver<StoreResult<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            result: None,
            reply,
            isolated: true,
            durable,
        });
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| StoreError::Database("the writer thread has stopped".into()))?;
        Ok(answer)
    }

    /// Run `work` on a read connection.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => connect(&path)?,
            };
            let result = work(&conn);
            readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

fn writer_loop(conn: Connection, jobs: mpsc::Receiver<Box<dyn Job>>, queued: &AtomicUsize) {
    let mut last_batch = 1;
    let mut synced = true;
    while let Ok(first) = jobs.recv() {
        queued.fetch_sub(1, Ordering::AcqRel);
        let mut batch = vec![first];
        // Under concurrent load, callers resubmit just after their reply;
        // waiting a moment for them makes one fsync serve many. An idle
        // writer commits at once, and so does one holding a lease job: until
        // a claim's leases are written, the next due time read beside it
        // cannot see when they end.
        let gather_until = Instant::now()
            + if last_batch > 1 {
                GATHER
            } else {
                Duration::ZERO
            };
        while batch.len() < MAX_BATCH && batch.iter().all(|job| job.durable()) {
            let left = gather_until.saturating_duration_since(Instant::now());
            match jobs.recv_timeout(left) {
                Ok(job) => {
                    queued.fetch_sub(1, Ordering::AcqRel);
                    batch.push(job)
                }
                Err(_) => break,
            }
        }
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => {
                    queued.fetch_sub(1, Ordering::AcqRel);
                    batch.push(job)
                }
                Err(_) => break,
            }
        }
        last_batch = batch.len();
        // Leases first, in a transaction of their own that does not wait
        // for the disk: WAL with `synchronous = NORMAL` survives a killed
        // process, only not the machine's crash, which is enough for a
        // lease. The durable writes then commit with a full sync.
        let (leases, durable): (Vec<_>, Vec<_>) = batch.into_iter().partition(|job| !job.durable());
        for (group, durable) in [(leases, false), (durable, true)] {
            if group.is_empty() {
                continue;
            }
            if durable != synced
                && conn
                    .execute_batch(if durable {
                        "PRAGMA synchronous = FULL"
                    } else {
                        "PRAGMA synchronous = NORMAL"
                    })
                    .is_ok()
            {
                synced = durable;
            }
            commit_group(&conn, group);
        }
    }
}

/// Run `group` in one transaction and tell each job how it ended.
fn commit_group(conn: &Connection, mut group: Vec<Box<dyn Job>>) {
    let commit = conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(StoreError::from)
        .and_then(|()| {
            for job in group.iter_mut() {
                job.run(conn).map_err(|()| {
                    StoreError::Database(
                        "a write in this transaction failed; nothing was written".into(),
                    )
                })?;
            }
            conn.execute_batch("COMMIT").map_err(StoreError::from)
        });
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for job in group {
        job.finish(&commit);
    }
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    for (version, statements) in sql::migrations(Dialect::Sqlite).iter().enumerate() {
        let version = version as i64 + 1;
        let done: Option<i64> = conn
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_none() {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let applied = conn.execute_batch(statements).and_then(|()| {
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    params![version, now_ms()],
                )
            });
            match applied {
                Ok(_) => conn.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(StoreError::Database(format!(
                        "migration {version} failed: {e}"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn hook_from_row(row: &Row<'_>) -> rusqlite::Result<(HookRecord, String)> {
    let spec: String = row.get(1)?;
    Ok((
        HookRecord {
            id: row.get(0)?,
            events: Vec::new(),
            spec: serde_json::Value::Null,
            enabled: row.get(2)?,
            disabled_reason: row.get(3)?,
            created_at: row.get(4)?,
            updated_at: row.get(5)?,
            ordered: row.get(6)?,
            failing_since: row.get(7)?,
        },
        spec,
    ))
}

fn load_hooks(conn: &Connection, id: Option<&str>) -> StoreResult<Vec<HookRecord>> {
    let mut stmt = conn.prepare_cached(sql::SELECT_HOOKS)?;
    let rows = stmt.query_map([id], hook_from_row)?;
    let mut hooks = Vec::new();
    for row in rows {
        let (mut hook, spec) = row?;
        hook.spec = serde_json::from_str(&spec)
            .map_err(|e| StoreError::Database(format!("hook spec: {e}")))?;
        let mut events = conn.prepare_cached(sql::SELECT_HOOK_EVENTS)?;
        hook.events = events
            .query_map([&hook.id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        hooks.push(hook);
    }
    Ok(hooks)
}

fn write_hook_events(conn: &Connection, hook: &HookRecord) -> StoreResult<()> {
    conn.execute(sql::DELETE_HOOK_EVENTS, [&hook.id])?;
    let mut insert = conn.prepare_cached(sql::INSERT_HOOK_EVENT)?;
    for event in &hook.events {
        insert.execute(params![hook.id, event])?;
    }
    Ok(())
}

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let status: String = row.get(3)?;
    Ok(Delivery {
        id: row.get(0)?,
        event_id: row.get(1)?,
        hook_id: row.get(2)?,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Failed),
        attempts: row.get(4)?,
        due_at: row.get(5)?,
        last_error: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        finished_at: row.get(9)?,
    })
}

fn headers_json(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".into())
}

fn headers_from(text: Option<String>) -> Vec<(String, String)> {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn not_found(kind: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// The next sequence number of hook `hook_id`, if it is ordered.
fn next_seq(conn: &Connection, hook_id: &str) -> StoreResult<Option<i64>> {
    Ok(conn
        .prepare_cached(sql::NEXT_SEQ)?
        .query_row(params![hook_id, 1], |r| r.get(0))
        .optional()?)
}

/// Store one event and its deliveries (inside the caller's transaction).
/// The outer error is the database's, and fails the transaction; the inner
/// one refuses this event alone (an id reused for another event), having
/// written nothing.
fn ingest_one(conn: &Connection, event: NewEvent) -> StoreResult<StoreResult<Ingested>> {
    let now = now_ms();
    let id = event.id.clone().unwrap_or_else(|| new_id("evt"));
    let inserted = conn.prepare_cached(sql::INSERT_EVENT)?.execute(params![
        id,
        event.name,
        event.payload,
        event.created_at,
        now
    ])?;
    if inserted == 0 {
        let (name, payload): (String, String) = conn
            .prepare_cached(sql::SELECT_EVENT_CONTENT)?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if !same_event(&name, &payload, &event) {
            return Ok(Err(reused_id(&id)));
        }
        let mut stmt = conn.prepare_cached(sql::SELECT_INGESTED)?;
        let deliveries = stmt
            .query_map([&id], |r| {
                Ok(DeliveryRef {
                    id: r.get(0)?,
                    hook_id: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        return Ok(Ok(Ingested {
            event_id: id,
            deliveries,
            duplicate: true,
        }));
    }
    let hooks: Vec<(String, bool)> = conn
        .prepare_cached(sql::SUBSCRIBED_HOOKS)?
        .query_map([&event.name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut insert = conn.prepare_cached(sql::INSERT_DELIVERY)?;
    let mut deliveries = Vec::with_capacity(hooks.len());
    for (hook_id, ordered) in hooks {
        let delivery_id = new_id("dlv");
        let seq = if ordered {
            next_seq(conn, &hook_id)?
        } else {
            None
        };
        insert.execute(params![delivery_id, id, hook_id, "ingest", now, seq])?;
        deliveries.push(DeliveryRef {
            id: delivery_id,
            hook_id,
        });
    }
    Ok(Ok(Ingested {
        event_id: id,
        deliveries,
        duplicate: false,
    }))
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn limits(&self) -> StoreLimits {
        self.limits
    }

    async fn create_hook(&self, hook: &HookRecord) -> StoreResult<()> {
        validate_hook(hook)?;
        let hook = hook.clone();
        self.write(move |conn| {
            let spec = hook.spec.to_string();
            let inserted = conn.execute(
                sql::INSERT_HOOK,
                params![
                    hook.id,
                    spec,
                    hook.enabled,
                    hook.disabled_reason,
                    hook.created_at,
                    hook.updated_at,
                    hook.ordered
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict {
                    kind: "hook",
                    id: hook.id,
                });
            }
            write_hook_events(conn, &hook)
        })
        .await
    }

    async fn update_hook(&self, hook: &HookRecord) -> StoreResult<()> {
        validate_hook(hook)?;
        let hook = hook.clone();
        self.write(move |conn| {
            let updated = conn.execute(
                sql::UPDATE_HOOK,
                params![
                    hook.id,
                    hook.spec.to_string(),
                    hook.enabled,
                    hook.disabled_reason,
                    hook.updated_at,
                    hook.ordered
                ],
            )?;
            if updated == 0 {
                return Err(not_found("hook", &hook.id));
            }
            write_hook_events(conn, &hook)
        })
        .await
    }

    async fn get_hook(&self, id: &str) -> StoreResult<Option<HookRecord>> {
        let id = id.to_string();
        self.read(move |conn| Ok(load_hooks(conn, Some(&id))?.pop()))
            .await
    }

    async fn list_hooks(&self) -> StoreResult<Vec<HookRecord>> {
        self.read(|conn| load_hooks(conn, None)).await
    }

    async fn delete_hook(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |conn| match conn.execute(sql::DELETE_HOOK, [&id])? {
            0 => Err(not_found("hook", &id)),
            _ => Ok(()),
        })
        .await
    }

    async fn set_hook_enabled(
        &self,
        id: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        let (id, reason) = (id.to_string(), reason.map(String::from));
        self.write(move |conn| {
            let reason = if enabled { None } else { reason };
            match conn.execute(
                sql::SET_HOOK_ENABLED,
                params![id, enabled, reason, now_ms()],
            )? {
                0 => Err(not_found("hook", &id)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn put_plugin(&self, plugin: &PluginRecord) -> StoreResult<()> {
        validate_id("plugin name", &plugin.name)?;
        let plugin = plugin.clone();
        self.write(move |conn| {
            conn.execute(
                sql::PUT_PLUGIN,
                params![
                    plugin.name,
                    plugin.hash,
                    plugin.size as i64,
                    plugin.bytes,
                    plugin.created_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_plugin(&self, name: &str) -> StoreResult<Option<PluginRecord>> {
        let name = name.to_string();
        self.read(move |conn| {
            Ok(conn
                .query_row(sql::GET_PLUGIN, [&name], |r| {
                    Ok(PluginRecord {
                        name: r.get(0)?,
                        hash: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        bytes: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn list_plugins(&self) -> StoreResult<Vec<PluginRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(sql::LIST_PLUGINS)?;
            let plugins = stmt
                .query_map([], |r| {
                    Ok(PluginRecord {
                        name: r.get(0)?,
                        hash: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        bytes: Vec::new(),
                        created_at: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(plugins)
        })
        .await
    }

    async fn delete_plugin(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.write(
            move |conn| match conn.execute(sql::DELETE_PLUGIN, [&name])? {
                0 => Err(not_found("plugin", &name)),
                _ => Ok(()),
            },
        )
        .await
    }

    async fn ingest(&self, events: Vec<NewEvent>) -> StoreResult<Vec<StoreResult<Ingested>>> {
        let waiting = self.queued.load(Ordering::Acquire);
        if waiting + events.len() > MAX_QUEUED_INGEST {
            return Err(StoreError::Busy(format!(
                "{waiting} writes are waiting for the disk"
            )));
        }
        let mut answers = Vec::with_capacity(events.len());
        for event in events {
            answers.push(match validate_event(&event, &self.limits) {
                Ok(()) => {
                    let (reply, answer) = oneshot::channel();
                    let job = Box::new(Pending {
                        work: Some(move |conn: &Connection| ingest_one(conn, event)),
                        result: None,
                        reply,
                        isolated: false,
                        durable: true,
                    });
                    self.queued.fetch_add(1, Ordering::AcqRel);
                    self.writer
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .send(job)
                        .map_err(|_| {
                            StoreError::Database("the writer thread has stopped".into())
                        })?;
                    Ok(answer)
                }
                Err(e) => Err(e),
            });
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Ok(answer) => answer
                    .await
                    .unwrap_or_else(|_| {
                        Err(StoreError::Database(
                            "the writer thread dropped a request".into(),
                        ))
                    })
                    .and_then(|refused| refused),
                Err(e) => Err(e),
            });
        }
        if results
            .iter()
            .any(|r| r.as_ref().is_ok_and(|i| !i.deliveries.is_empty()))
        {
            self.work.notify_one();
        }
        Ok(results)
    }

    async fn enqueue(&self, event_id: &str, hook_id: &str) -> StoreResult<DeliveryRef> {
        let (event_id, hook_id) = (event_id.to_string(), hook_id.to_string());
        let delivery = self
            .write(move |conn| {
                let exists = |query: &str, id: &str| -> StoreResult<bool> {
                    Ok(conn
                        .query_row(query, [id], |_| Ok(()))
                        .optional()?
                        .is_some())
                };
                if !exists(sql::EXISTS_EVENT, &event_id)? {
                    return Err(not_found("event", &event_id));
                }
                if !exists(sql::EXISTS_HOOK, &hook_id)? {
                    return Err(not_found("hook", &hook_id));
                }
                let id = new_id("dlv");
                let seq = next_seq(conn, &hook_id)?;
                conn.prepare_cached(sql::INSERT_DELIVERY)?.execute(params![
                    id,
                    event_id,
                    hook_id,
                    "enqueue",
                    now_ms(),
                    seq
                ])?;
                Ok(DeliveryRef { id, hook_id })
            })
            .await?;
        self.work.notify_one();
        Ok(delivery)
    }

    async fn claim(&self, owner: &str, limit: usize, lease: Duration) -> StoreResult<Vec<Claimed>> {
        let (owner, held) = (owner.to_string(), self.held.clone());
        self.write_lease(move |conn| {
            let now = now_ms();
            let ids: Vec<String> = conn
                .prepare_cached(sql::DUE_DELIVERIES)?
                .query_map(params![now, limit as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let ids: Vec<String> = ids.into_iter().filter(|id| !held.holds(id)).collect();
            take_leases(conn, &ids, &owner, now, lease)?;
            read_claimed(conn, &ids)
        })
        .await
    }

    /// Read on a reader what is due, hold it in memory and queue its
    /// leases without waiting for their commit: a claim costs the writer
    /// nothing the dispatcher waits for. The leases are written before the
    /// attempts' results, which come later on the same queue.
    async fn claim_free(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
        free: &FreeSlots,
    ) -> StoreResult<Vec<Claimed>> {
        let (slots, default) = (free.to_json(), free.default);
        let held = self.held.clone();
        let (now, mut claimed) = self
            .read(move |conn| {
                let now = now_ms();
                let claimed = held.take(
                    |free_to_take| {
                        let mut due = Vec::new();
                        for (hook, free) in hooks_with_free_slots(conn, &slots, default)? {
                            let take = |id: &str, _| free_to_take(id);
                            due.extend(due_of_hook(conn, &hook, now, free.min(limit), &take)?);
                        }
                        due.sort_unstable_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
                        due.truncate(limit);
                        Ok(due.into_iter().map(|(id, _)| id).collect())
                    },
                    |ids| read_claimed(conn, ids),
                )?;
                Ok((now, claimed))
            })
            .await?;
        if claimed.is_empty() {
            return Ok(claimed);
        }
        let ids: Vec<String> = claimed.iter().map(|c| c.delivery.id.clone()).collect();
        let owner = owner.to_string();
        let leased = self.send(
            move |conn| take_leases(conn, &ids, &owner, now, lease),
            false,
        );
        match leased {
            Ok(answer) => {
                tokio::spawn(async move {
                    if let Ok(Err(e)) = answer.await {
                        tracing::error!(error = %e, "writing claimed leases failed");
                    }
                });
            }
            Err(e) => {
                self.held.release(claimed.iter().map(|c| &c.delivery.id));
                return Err(e);
            }
        }
        for c in &mut claimed {
            c.delivery.status = DeliveryStatus::InFlight;
            c.delivery.due_at = Some(after(now, lease));
        }
        Ok(claimed)
    }

    async fn next_due(&self, free: &FreeSlots) -> StoreResult<Option<Millis>> {
        let (slots, default) = (free.to_json(), free.default);
        let held = self.held.clone();
        self.read(move |conn| {
            let now = now_ms();
            // Due now yet held: its attempt is on; its lease is being written.
            let take = |id: &str, due| due > now || !held.holds(id);
            let mut firsts = Vec::new();
            for (hook, _) in hooks_with_free_slots(conn, &slots, default)? {
                let first = due_of_hook(conn, &hook, Millis::MAX, 1, &take)?;
                firsts.extend(first.into_iter().map(|(_, due)| due));
            }
            Ok(firsts.into_iter().min())
        })
        .await
    }

    async fn renew(&self, owner: &str, ids: &[String], lease: Duration) -> StoreResult<usize> {
        let (owner, ids) = (owner.to_string(), ids.to_vec());
        self.write_lease(move |conn| {
            let now = now_ms();
            let mut renew = conn.prepare_cached(sql::RENEW_LEASE)?;
            let mut held = 0;
            for id in ids {
                held += renew.execute(params![id, owner, after(now, lease), now])?;
            }
            Ok(held)
        })
        .await
    }

    async fn finish_attempt(
        &self,
        owner: &str,
        delivery_id: &str,
        attempt: Option<NewAttempt>,
        next: Next,
    ) -> StoreResult<()> {
        let (owner, id) = (owner.to_string(), delivery_id.to_string());
        let max_body = self.limits.max_logged_body_bytes;
        let retry = matches!(next, Next::Retry { .. } | Next::Deferred { .. });
        let released = id.clone();
        let finished = self
            .write(move |conn| {
                let now = now_ms();
                let after = sql::after_attempt(&next, attempt.as_ref(), now);
                let updated = conn.prepare_cached(sql::FINISH_ATTEMPT)?.execute(params![
                    id,
                    owner,
                    after.status.as_str(),
                    after.due_at,
                    after.error,
                    now,
                    after.finished_at,
                    after.counted
                ])?;
                if updated == 0 {
                    let exists = conn
                        .query_row(sql::EXISTS_DELIVERY, [&id], |_| Ok(()))
                        .optional()?;
                    return Err(match exists {
                        Some(()) => StoreError::LeaseLost(id),
                        None => not_found("delivery", &id),
                    });
                }
                let Some(attempt) = attempt else {
                    return Ok(());
                };
                if attempt.sent() {
                    conn.prepare_cached(sql::ENDPOINT_HEALTH)?.execute(params![
                        id,
                        attempt.success,
                        now
                    ])?;
                }
                conn.prepare_cached(sql::INSERT_ATTEMPT)?.execute(params![
                    id,
                    attempt.started_at,
                    attempt.duration_ms as i64,
                    headers_json(&attempt.request_headers),
                    cap_body(Some(attempt.request_body), max_body),
                    attempt.response_status,
                    headers_json(&attempt.response_headers),
                    cap_body(attempt.response_body, max_body),
                    attempt.error_kind,
                    attempt.error_message,
                    attempt.success
                ])?;
                Ok(())
            })
            .await;
        // However it ended, this attempt no longer holds the delivery.
        self.held.release([&released]);
        finished?;
        if retry {
            self.work.notify_one();
        }
        Ok(())
    }

    async fn retry_now(&self, delivery_id: &str) -> StoreResult<()> {
        let id = delivery_id.to_string();
        self.write(move |conn| {
            let status: Option<String> = conn
                .query_row(sql::SELECT_STATUS, [&id], |r| r.get(0))
                .optional()?;
            match status.as_deref() {
                None => Err(not_found("delivery", &id)),
                Some("in_flight") => Err(StoreError::Invalid(format!(
                    "delivery `{id}` is being attempted now"
                ))),
                Some(_) => {
                    conn.execute(sql::RETRY_NOW, params![id, now_ms()])?;
                    Ok(())
                }
            }
        })
        .await?;
        self.work.notify_one();
        Ok(())
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        let query = query.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql::list_deliveries())?;
            let rows = stmt.query_map(
                params![
                    query.hook_id,
                    query.status.map(DeliveryStatus::as_str),
                    query.since,
                    query.until,
                    query.after,
                    query.limit.clamp(1, 1000) as i64
                ],
                delivery_from_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn delivery(&self, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        let id = id.to_string();
        self.read(move |conn| {
            let Some(delivery) = conn
                .query_row(&sql::select_delivery(), [&id], delivery_from_row)
                .optional()?
            else {
                return Ok(None);
            };
            let mut stmt = conn.prepare_cached(sql::SELECT_ATTEMPTS)?;
            let attempts = stmt
                .query_map([&id], |r| {
                    Ok(Attempt {
                        number: r.get(0)?,
                        detail: NewAttempt {
                            started_at: r.get(1)?,
                            duration_ms: r.get::<_, i64>(2)? as u64,
                            request_headers: headers_from(r.get(3)?),
                            request_body: r.get(4)?,
                            response_status: r.get(5)?,
                            response_headers: headers_from(r.get(6)?),
                            response_body: r.get(7)?,
                            error_kind: r.get(8)?,
                            error_message: r.get(9)?,
                            success: r.get(10)?,
                        },
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(Some((delivery, attempts)))
        })
        .await
    }

    async fn hook_counts(&self, hook_id: &str, since: Millis) -> StoreResult<HookStats> {
        let hook_id = hook_id.to_string();
        self.read(move |conn| Ok(hook_counts(conn, &hook_id, since)?.0))
            .await
    }

    async fn hook_stats(&self, hook_id: &str, since: Millis) -> StoreResult<HookStats> {
        let hook_id = hook_id.to_string();
        self.read(move |conn| {
            let (mut stats, sent) = hook_counts(conn, &hook_id, since)?;
            let mut at = conn.prepare_cached(sql::LATENCY_AT)?;
            let mut values = [None; 3];
            for (value, rank) in values.iter_mut().zip(super::percentile_ranks(sent)) {
                *value = at
                    .query_row(params![hook_id, since, rank], |r| r.get::<_, i64>(0))
                    .optional()?
                    .map(|ms| ms as u64);
            }
            stats.latency_ms = Latency::from_ranks(values);
            Ok(stats)
        })
        .await
    }

    async fn attempt_samples(
        &self,
        hook_id: &str,
        since: Millis,
    ) -> StoreResult<Vec<AttemptSample>> {
        let hook_id = hook_id.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(sql::ATTEMPT_SAMPLES)?;
            let rows = stmt.query_map(params![hook_id, since], |r| {
                Ok(AttemptSample {
                    started_at: r.get(0)?,
                    duration_ms: r.get::<_, i64>(1)? as u64,
                    success: r.get(2)?,
                    sent: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn register_event_type(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |conn| {
            conn.execute(sql::REGISTER_EVENT_TYPE, params![name, now_ms()])?;
            Ok(())
        })
        .await
    }

    async fn put_source(&self, id: &str, spec: &str) -> StoreResult<()> {
        let (id, spec) = (id.to_string(), spec.to_string());
        self.write(move |conn| {
            conn.execute(sql::PUT_SOURCE, params![id, spec, now_ms()])?;
            Ok(())
        })
        .await
    }

    async fn get_source(&self, id: &str) -> StoreResult<Option<String>> {
        let id = id.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(sql::SELECT_SOURCE)?
                .query_row([&id], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn list_sources(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(sql::LIST_SOURCES)?;
            let sources = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(sources)
        })
        .await
    }

    async fn delete_source(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |conn| match conn.execute(sql::DELETE_SOURCE, [&id])? {
            0 => Err(not_found("source", &id)),
            _ => Ok(()),
        })
        .await
    }

    async fn event_types(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(sql::LIST_EVENT_TYPES)?;
            let names = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(names)
        })
        .await
    }

    async fn events_between(
        &self,
        since: Millis,
        until: Millis,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<Vec<StoredEvent>> {
        let after = after.map(String::from);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(sql::EVENTS_BETWEEN)?;
            let events = stmt
                .query_map(params![since, until, limit as i64, after], |r| {
                    Ok(StoredEvent {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        payload: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(events)
        })
        .await
    }

    async fn queue_depth(&self) -> StoreResult<QueueDepth> {
        self.read(|conn| {
            let now = now_ms();
            Ok(conn.query_row(sql::QUEUE_DEPTH, params![now], |r| {
                Ok(QueueDepth {
                    pending: r.get::<_, Option<i64>>(0)?.unwrap_or(0) as u64,
                    in_flight: r.get::<_, Option<i64>>(1)?.unwrap_or(0) as u64,
                    oldest_due_ms: r
                        .get::<_, Option<i64>>(2)?
                        .map(|due| (now - due).max(0) as u64),
                })
            })?)
        })
        .await
    }

    async fn prune(&self, before: Millis, batch: usize) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let deleted = self
                .write(move |conn| {
                    Ok(conn.execute(sql::PRUNE, params![before, batch.max(1) as i64])?)
                })
                .await?;
            total += deleted as u64;
            if deleted < batch.max(1) {
                return Ok(total);
            }
        }
    }

    async fn wait_for_work(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.work.notified()).await;
    }
}

/// A hook's attempt counts since `since`, and how many sent a request.
fn hook_counts(
    conn: &Connection,
    hook_id: &str,
    since: Millis,
) -> rusqlite::Result<(HookStats, u64)> {
    conn.query_row(sql::HOOK_STATS, params![hook_id, since], |r| {
        let stats = HookStats {
            requests: r.get::<_, i64>(0)? as u64,
            successes: r.get::<_, Option<i64>>(1)?.unwrap_or(0) as u64,
            failures: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
            latency_ms: Latency::default(),
        };
        Ok((stats, r.get::<_, Option<i64>>(3)?.unwrap_or(0) as u64))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ingest_answers_busy_when_the_writer_is_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), StoreLimits::default()).unwrap();
        let event = || NewEvent {
            id: None,
            name: "PostSignIn".into(),
            payload: "{}".into(),
            created_at: now_ms(),
        };
        // Stand for a writer thread far behind.
        store.queued.fetch_add(MAX_QUEUED_INGEST, Ordering::AcqRel);
        let busy = store.ingest(vec![event()]).await.unwrap_err();
        assert!(matches!(busy, StoreError::Busy(_)), "{busy}");
        store.queued.fetch_sub(MAX_QUEUED_INGEST, Ordering::AcqRel);
        let stored = store.ingest(vec![event()]).await.unwrap();
        assert!(stored[0].is_ok());
        assert_eq!(
            store.queued.load(Ordering::Acquire),
            0,
            "every write counted out"
        );
    }

    /// A claim's statements run many times a second with new parameters:
    /// none may be compiled again for it (as one with a bound `LIMIT` is).
    #[test]
    fn a_claims_statements_are_compiled_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(SqliteStore::open(&path, StoreLimits::default()).unwrap());
        let conn = connect(&path).unwrap();
        let never = |_: &str, _| false;
        for round in 0..3 {
            let now = now_ms() + round;
            let hook = format!("hook_{round}");
            hooks_with_free_slots(&conn, &format!("{{\"{hook}\": 2}}"), 1).unwrap();
            due_of_hook(&conn, &hook, now, 2, &never).unwrap();
            read_claimed(&conn, &[format!("dlv_{round}")]).unwrap_err();
        }
        for statement in [
            sql::SQLITE_HOOKS_WITH_FREE_SLOTS.as_str(),
            sql::SQLITE_DUE_OF_HOOK.as_str(),
            sql::SELECT_CLAIMED.as_str(),
        ] {
            let compiled_again = conn
                .prepare_cached(statement)
                .unwrap()
                .get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(compiled_again, 0, "{statement}");
        }
    }
}
