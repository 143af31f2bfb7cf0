//! The SQL both backends run. Statements are written once, with SQLite's
//! `?N` placeholders; [`pg`] rewrites them to PostgreSQL's `$N`. Only the
//! schema's column types and the claim's row locking differ.

use std::sync::LazyLock;

use super::types::{DeliveryStatus, Millis, NewAttempt, Next};

/// Which database a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// The schema, one entry per version; each runs once, in order.
pub(crate) fn migrations(dialect: Dialect) -> [String; 10] {
    let (int, blob, serial) = match dialect {
        Dialect::Sqlite => ("INTEGER", "BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Dialect::Postgres => (
            "BIGINT",
            "BYTEA",
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        ),
    };
    let (boolean, false_) = match dialect {
        Dialect::Sqlite => ("INTEGER", "0"),
        Dialect::Postgres => ("BOOLEAN", "FALSE"),
    };
    [format!(
        "CREATE TABLE hooks (
            id TEXT PRIMARY KEY,
            spec TEXT NOT NULL,
            enabled {boolean} NOT NULL,
            disabled_reason TEXT,
            created_at {int} NOT NULL,
            updated_at {int} NOT NULL
        );
        CREATE TABLE hook_events (
            hook_id TEXT NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
            event_name TEXT NOT NULL,
            PRIMARY KEY (event_name, hook_id)
        );
        CREATE INDEX hook_events_hook ON hook_events (hook_id);
        CREATE TABLE plugins (
            name TEXT PRIMARY KEY,
            hash TEXT NOT NULL,
            size {int} NOT NULL,
            bytes {blob} NOT NULL,
            created_at {int} NOT NULL
        );
        CREATE TABLE events (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at {int} NOT NULL,
            received_at {int} NOT NULL
        );
        CREATE INDEX events_created ON events (created_at);
        CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
            hook_id TEXT NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts {int} NOT NULL DEFAULT 0,
            due_at {int},
            lease_owner TEXT,
            last_error TEXT,
            created_at {int} NOT NULL,
            updated_at {int} NOT NULL,
            finished_at {int}
        );
        CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status IN ('pending', 'in_flight');
        CREATE INDEX deliveries_hook ON deliveries (hook_id, created_at);
        CREATE INDEX deliveries_event ON deliveries (event_id);
        CREATE TABLE attempts (
            id {serial},
            delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
            number {int} NOT NULL,
            started_at {int} NOT NULL,
            duration_ms {int} NOT NULL,
            request_headers TEXT NOT NULL,
            request_body TEXT NOT NULL,
            response_status {int},
            response_headers TEXT,
            response_body TEXT,
            error_kind TEXT,
            error_message TEXT,
            success {boolean} NOT NULL
        );
        CREATE INDEX attempts_delivery ON attempts (delivery_id, number);"
    ),
    format!(
        "ALTER TABLE hooks ADD COLUMN ordered {boolean} NOT NULL DEFAULT {false_};
        CREATE INDEX deliveries_hook_open ON deliveries (hook_id, id) WHERE status IN ('pending', 'in_flight');"
    ),
    format!("ALTER TABLE hooks ADD COLUMN failing_since {int};"),
    format!("CREATE TABLE event_types (name TEXT PRIMARY KEY, created_at {int} NOT NULL);"),
    format!("ALTER TABLE deliveries ADD COLUMN host_failures {int} NOT NULL DEFAULT 0;"),
    format!(
        "ALTER TABLE hooks ADD COLUMN next_seq {int} NOT NULL DEFAULT 0;
        ALTER TABLE deliveries ADD COLUMN seq {int};"
    ),
    format!(
        "CREATE TABLE sources (id TEXT PRIMARY KEY, spec TEXT NOT NULL,
            created_at {int} NOT NULL, updated_at {int} NOT NULL);"
    ),
    "CREATE INDEX deliveries_created ON deliveries (created_at, id);".to_string(),
    // Each hook's open deliveries in the order they fall due, for claims;
    // it serves the ordered hooks' lookups by hook the older index served.
    "CREATE INDEX deliveries_hook_due ON deliveries (hook_id, due_at, id)
        WHERE status IN ('pending', 'in_flight');
    DROP INDEX deliveries_hook_open;"
        .to_string(),
    // Claims and next-due reads go through each hook's index; one index
    // fewer to keep up on every ingest, lease and finish.
    "DROP INDEX deliveries_due;".to_string()]
}

/// Rewrite `?N` placeholders as `$N` for PostgreSQL.
pub(crate) fn pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) const SELECT_HOOKS: &str =
    "SELECT id, spec, enabled, disabled_reason, created_at, updated_at, ordered, failing_since
     FROM hooks WHERE (CAST(?1 AS TEXT) IS NULL OR id = ?1) ORDER BY id";

pub(crate) const SELECT_HOOK_EVENTS: &str =
    "SELECT event_name FROM hook_events WHERE hook_id = ?1 ORDER BY event_name";

pub(crate) const INSERT_HOOK: &str =
    "INSERT INTO hooks (id, spec, enabled, disabled_reason, created_at, updated_at, ordered)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING";

pub(crate) const UPDATE_HOOK: &str =
    "UPDATE hooks SET spec = ?2, enabled = ?3, disabled_reason = ?4, updated_at = ?5, ordered = ?6 WHERE id = ?1";

pub(crate) const DELETE_HOOK_EVENTS: &str = "DELETE FROM hook_events WHERE hook_id = ?1";

pub(crate) const INSERT_HOOK_EVENT: &str =
    "INSERT INTO hook_events (hook_id, event_name) VALUES (?1, ?2) ON CONFLICT DO NOTHING";

pub(crate) const DELETE_HOOK: &str = "DELETE FROM hooks WHERE id = ?1";

pub(crate) const SET_HOOK_ENABLED: &str =
    "UPDATE hooks SET enabled = ?2, disabled_reason = ?3, updated_at = ?4, failing_since = NULL WHERE id = ?1";

pub(crate) const PUT_PLUGIN: &str =
    "INSERT INTO plugins (name, hash, size, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, size = excluded.size,
     bytes = excluded.bytes, created_at = excluded.created_at";

pub(crate) const GET_PLUGIN: &str =
    "SELECT name, hash, size, bytes, created_at FROM plugins WHERE name = ?1";

pub(crate) const LIST_PLUGINS: &str =
    "SELECT name, hash, size, created_at FROM plugins ORDER BY name";

pub(crate) const DELETE_PLUGIN: &str = "DELETE FROM plugins WHERE name = ?1";

pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO events (id, name, payload, created_at, received_at)
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING";

/// The deliveries the first ingest of an event created.
pub(crate) const SELECT_INGESTED: &str =
    "SELECT id, hook_id FROM deliveries WHERE event_id = ?1 AND source = 'ingest' ORDER BY hook_id";

pub(crate) const SUBSCRIBED_HOOKS: &str =
    "SELECT he.hook_id, h.ordered FROM hook_events he JOIN hooks h ON h.id = he.hook_id
     WHERE he.event_name = ?1 AND h.enabled ORDER BY he.hook_id";

pub(crate) const EXISTS_EVENT: &str = "SELECT 1 FROM events WHERE id = ?1";

pub(crate) const SELECT_EVENT_CONTENT: &str = "SELECT name, payload FROM events WHERE id = ?1";

pub(crate) const EXISTS_HOOK: &str = "SELECT 1 FROM hooks WHERE id = ?1";

pub(crate) const EXISTS_DELIVERY: &str = "SELECT 1 FROM deliveries WHERE id = ?1";

/// Params: id, event id, hook id, source, now.
/// Params: id, event id, hook id, source, now, sequence number (ordered
/// hooks) or NULL.
pub(crate) const INSERT_DELIVERY: &str =
    "INSERT INTO deliveries (id, event_id, hook_id, source, status, attempts, due_at, created_at, updated_at, seq)
     VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5, ?6)";

/// Take `?2` sequence numbers of hook `?1`, if it is ordered: returns the
/// last one taken (no row for a hook that is not ordered). The row lock
/// this takes until commit makes sequence order the commit order, however
/// many connections or processes ingest at once.
pub(crate) const NEXT_SEQ: &str =
    "UPDATE hooks SET next_seq = next_seq + ?2 WHERE id = ?1 AND ordered RETURNING next_seq";

/// Whether an open delivery `p` of the same hook comes before `d`: by the
/// hook's sequence (deliveries from before sequences sort first), then id.
macro_rules! open_delivery_before_d {
    () => {
        "SELECT 1 FROM deliveries p
            WHERE p.hook_id = d.hook_id AND p.status IN ('pending', 'in_flight')
              AND (COALESCE(p.seq, 0) < COALESCE(d.seq, 0)
                   OR (COALESCE(p.seq, 0) = COALESCE(d.seq, 0) AND p.id < d.id))"
    };
}

/// Due: pending and its time has come, or in flight under an expired
/// lease; for an ordered hook, only its earliest unfinished delivery.
/// Params: now, limit.
pub(crate) const DUE_DELIVERIES: &str = concat!(
    "SELECT d.id FROM deliveries d JOIN hooks h ON h.id = d.hook_id
     WHERE d.status IN ('pending', 'in_flight') AND d.due_at <= ?1
       AND (NOT h.ordered OR NOT EXISTS (",
    open_delivery_before_d!(),
    "))
     ORDER BY d.due_at LIMIT ?2"
);

/// Claim in one statement (PostgreSQL): lock the due deliveries, skipping
/// rows other claimers hold, lease them, and return them with their events,
/// earliest due first. One round trip however many are claimed.
/// Params: now, limit, owner, lease end.
pub(crate) fn claim_due() -> String {
    let due = DUE_DELIVERIES.replacen("SELECT d.id", "SELECT d.id, d.due_at AS was_due", 1);
    format!(
        "WITH due AS ({due} FOR UPDATE OF d SKIP LOCKED),
         d AS (UPDATE deliveries
               SET status = 'in_flight', lease_owner = ?3, due_at = ?4, updated_at = ?1
               FROM due WHERE deliveries.id = due.id
               RETURNING deliveries.*, due.was_due)
         SELECT {DELIVERY_COLUMNS}, e.name, e.payload, e.created_at, d.host_failures
         FROM d JOIN events e ON e.id = d.event_id ORDER BY d.was_due, d.id"
    )
}

/// The hooks' free slots, from a JSON object of hook id to count in
/// parameter `param` (`?3`, say).
fn free_slots(dialect: Dialect, param: &str) -> String {
    match dialect {
        Dialect::Sqlite => {
            format!("SELECT key AS hook_id, CAST(value AS INTEGER) AS free FROM json_each({param})")
        }
        Dialect::Postgres => format!(
            "SELECT key AS hook_id, CAST(value AS BIGINT) AS free
             FROM jsonb_each_text(CAST(CAST({param} AS TEXT) AS jsonb))"
        ),
    }
}

/// The hooks with a free slot, and how many each has (from the JSON object
/// of free slots in parameter `slots`, or parameter `default` for a hook
/// not in it). A claim then reads each one's due deliveries through its
/// own index ([`due_of_hook`]), so a busy hook's backlog is never scanned.
/// Selects each one's id and count.
fn hooks_with_free_slots(dialect: Dialect, slots: &str, default: &str) -> String {
    format!(
        "WITH slots AS ({free})
         SELECT h.id, COALESCE(s.free, {default}) AS free FROM hooks h
         LEFT JOIN slots s ON s.hook_id = h.id WHERE COALESCE(s.free, {default}) > 0",
        free = free_slots(dialect, slots)
    )
}

/// Hook `hook`'s deliveries due by `now`, earliest first, at most `limit`
/// (all, without one): [`DUE_DELIVERIES`]'s rule for a single hook, read in
/// order from the `deliveries_hook_due` index. With a time far ahead as
/// `now`, its open deliveries in the order they fall due. Selects each
/// one's id and due time.
fn due_of_hook(hook: &str, now: &str, limit: Option<&str>) -> String {
    format!(
        concat!(
            "SELECT d.id, d.due_at FROM deliveries d JOIN hooks h ON h.id = d.hook_id
             WHERE d.hook_id = {hook} AND d.status IN ('pending', 'in_flight')
               AND d.due_at <= {now}
               AND (NOT h.ordered OR NOT EXISTS (",
            open_delivery_before_d!(),
            "))
             ORDER BY d.due_at, d.id{limit}"
        ),
        hook = hook,
        now = now,
        limit = limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default()
    )
}

/// Claim what a dispatcher may take now in one statement (PostgreSQL):
/// of each hook with a free slot, its earliest due deliveries up to its
/// free count, skipping rows other claimers hold; of those, the `?2`
/// earliest due, leased and returned with their events.
/// Params: now, limit, free slots (JSON), default free, owner, lease end.
fn claim_within_free_slots() -> String {
    format!(
        "WITH open_hooks AS ({hooks}),
         chosen AS (SELECT x.id, x.due_at AS was_due FROM open_hooks o
                    CROSS JOIN LATERAL ({due} FOR UPDATE OF d SKIP LOCKED) x
                    ORDER BY x.due_at, x.id LIMIT ?2),
         d AS (UPDATE deliveries
               SET status = 'in_flight', lease_owner = ?5, due_at = ?6, updated_at = ?1
               FROM chosen WHERE deliveries.id = chosen.id
               RETURNING deliveries.*, chosen.was_due)
         SELECT {DELIVERY_COLUMNS}, e.name, e.payload, e.created_at, d.host_failures
         FROM d JOIN events e ON e.id = d.event_id ORDER BY d.was_due, d.id",
        hooks = hooks_with_free_slots(Dialect::Postgres, "?3", "?4"),
        due = due_of_hook("o.id", "?1", Some("o.free")),
    )
}

/// The earliest due time of the open deliveries of hooks with a free slot
/// (PostgreSQL), each hook's read from its own index.
/// Params: free slots (JSON), default free, a time far ahead (as "now").
fn next_due_of_free_hooks() -> String {
    format!(
        "WITH open_hooks AS ({hooks})
         SELECT MIN(x.due_at) FROM open_hooks o CROSS JOIN LATERAL ({due}) x",
        hooks = hooks_with_free_slots(Dialect::Postgres, "?1", "?2"),
        due = due_of_hook("o.id", "?3", Some("1")),
    )
}

/// [`hooks_with_free_slots`] for SQLite, built once.
/// Params: free slots (JSON), default free.
pub(crate) static SQLITE_HOOKS_WITH_FREE_SLOTS: LazyLock<String> =
    LazyLock::new(|| hooks_with_free_slots(Dialect::Sqlite, "?1", "?2"));

/// [`due_of_hook`] for SQLite, built once, without a limit: the caller
/// stops stepping at its own. (SQLite's planner reads a bound `LIMIT`, so
/// rebinding it expires the prepared statement and every run would compile
/// it again.) Params: hook id, now.
pub(crate) static SQLITE_DUE_OF_HOOK: LazyLock<String> =
    LazyLock::new(|| due_of_hook("?1", "?2", None));

/// [`claim_within_free_slots`] in PostgreSQL's placeholders, built once.
pub(crate) static PG_CLAIM_WITHIN_FREE_SLOTS: LazyLock<String> =
    LazyLock::new(|| pg(&claim_within_free_slots()));

/// [`next_due_of_free_hooks`] in PostgreSQL's placeholders, built once.
pub(crate) static PG_NEXT_DUE_OF_FREE_HOOKS: LazyLock<String> =
    LazyLock::new(|| pg(&next_due_of_free_hooks()));

/// Every lease of a SQLite file's earlier process, released at start: one
/// process works a file, so whatever was in flight died with the last one.
/// Params: now.
pub(crate) const RELEASE_ALL_LEASES: &str =
    "UPDATE deliveries SET status = 'pending', lease_owner = NULL, due_at = ?1, updated_at = ?1
     WHERE status = 'in_flight'";

/// Params: id, owner, lease end, now.
pub(crate) const TAKE_LEASE: &str =
    "UPDATE deliveries SET status = 'in_flight', lease_owner = ?2, due_at = ?3, updated_at = ?4 WHERE id = ?1";

const DELIVERY_COLUMNS: &str =
    "d.id, d.event_id, d.hook_id, d.status, d.attempts, d.due_at, d.last_error, d.created_at, d.updated_at, d.finished_at";

/// A claimed delivery with its event, built once: SQLite's claims run it
/// for every delivery they take. Params: id.
pub(crate) static SELECT_CLAIMED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DELIVERY_COLUMNS}, e.name, e.payload, e.created_at, d.host_failures
         FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?1"
    )
});

pub(crate) fn select_delivery() -> String {
    format!("SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.id = ?1")
}

/// Params: hook id, status, since, until, after (delivery id), limit.
pub(crate) fn list_deliveries() -> String {
    format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d
         WHERE (CAST(?1 AS TEXT) IS NULL OR d.hook_id = ?1)
           AND (CAST(?2 AS TEXT) IS NULL OR d.status = ?2)
           AND (CAST(?3 AS BIGINT) IS NULL OR d.created_at >= ?3)
           AND (CAST(?4 AS BIGINT) IS NULL OR d.created_at < ?4)
           AND (CAST(?5 AS TEXT) IS NULL OR (d.created_at, d.id) <
                (SELECT a.created_at, a.id FROM deliveries a WHERE a.id = ?5))
         ORDER BY d.created_at DESC, d.id DESC LIMIT ?6"
    )
}

/// Params: id, owner, lease end, now.
pub(crate) const RENEW_LEASE: &str = "UPDATE deliveries SET due_at = ?3, updated_at = ?4
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'in_flight'";

/// Params: id, owner, status, due at, last error, now, finished at, attempts
/// counted (1, or 0 when the host could not make the attempt, which counts
/// a host failure instead).
pub(crate) const FINISH_ATTEMPT: &str = "UPDATE deliveries
     SET status = ?3, due_at = ?4, last_error = ?5, updated_at = ?6, finished_at = ?7,
         attempts = attempts + ?8, lease_owner = NULL,
         host_failures = CASE WHEN ?8 = 0 THEN host_failures + 1 ELSE 0 END
     WHERE id = ?1 AND lease_owner = ?2 AND status = 'in_flight'";

/// Params: delivery id, then the attempt's fields; its number is the
/// delivery's attempt count, just incremented.
pub(crate) const INSERT_ATTEMPT: &str = "INSERT INTO attempts (delivery_id, number, started_at, duration_ms,
        request_headers, request_body, response_status, response_headers, response_body,
        error_kind, error_message, success)
     VALUES (?1, (SELECT attempts FROM deliveries WHERE id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// Keep a hook's failing streak after an attempt that sent a request: a
/// success ends it, a failure starts it if none is running. Rows change
/// only when the streak does, so steady traffic takes no hook row lock.
/// Params: delivery id, success, now.
pub(crate) const ENDPOINT_HEALTH: &str = "UPDATE hooks
     SET failing_since = CASE WHEN CAST(?2 AS BOOLEAN) THEN NULL ELSE CAST(?3 AS BIGINT) END
     WHERE id = (SELECT hook_id FROM deliveries WHERE id = ?1)
       AND (CASE WHEN CAST(?2 AS BOOLEAN) THEN failing_since IS NOT NULL ELSE failing_since IS NULL END)";

pub(crate) const SELECT_ATTEMPTS: &str =
    "SELECT number, started_at, duration_ms, request_headers, request_body,
        response_status, response_headers, response_body, error_kind, error_message, success
     FROM attempts WHERE delivery_id = ?1 ORDER BY number";

pub(crate) const SELECT_STATUS: &str = "SELECT status FROM deliveries WHERE id = ?1";

/// Params: id, now.
pub(crate) const RETRY_NOW: &str = "UPDATE deliveries
     SET status = 'pending', due_at = ?2, updated_at = ?2, finished_at = NULL, lease_owner = NULL
     WHERE id = ?1";

/// Params: hook id, since.
pub(crate) const HOOK_STATS: &str =
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE a.success), COUNT(*) FILTER (WHERE NOT a.success),
        COUNT(*) FILTER (WHERE a.request_body <> '')
     FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
     WHERE d.hook_id = ?1 AND a.started_at >= ?2";

/// Params: hook id, since: each attempt's start, duration, success and
/// whether it sent a request.
pub(crate) const ATTEMPT_SAMPLES: &str =
    "SELECT a.started_at, a.duration_ms, a.success, a.request_body <> ''
     FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
     WHERE d.hook_id = ?1 AND a.started_at >= ?2";

/// Params: hook id, since, offset: the attempt duration at that rank.
pub(crate) const LATENCY_AT: &str = "SELECT a.duration_ms
     FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
     WHERE d.hook_id = ?1 AND a.started_at >= ?2 AND a.request_body <> ''
     ORDER BY a.duration_ms LIMIT 1 OFFSET ?3";

pub(crate) const REGISTER_EVENT_TYPE: &str =
    "INSERT INTO event_types (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING";

pub(crate) const LIST_EVENT_TYPES: &str = "SELECT name FROM event_types ORDER BY name";

/// Params: id, spec, now.
pub(crate) const PUT_SOURCE: &str = "INSERT INTO sources (id, spec, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?3)
     ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at";

pub(crate) const SELECT_SOURCE: &str = "SELECT spec FROM sources WHERE id = ?1";

pub(crate) const LIST_SOURCES: &str = "SELECT id, spec FROM sources ORDER BY id";

pub(crate) const DELETE_SOURCE: &str = "DELETE FROM sources WHERE id = ?1";

/// Params: since, until, limit, after (an event id at `since`, exclusive).
pub(crate) const EVENTS_BETWEEN: &str = "SELECT id, name, payload, created_at FROM events
     WHERE created_at < ?2
       AND (created_at > ?1 OR (created_at = ?1 AND (CAST(?4 AS TEXT) IS NULL OR id > ?4)))
     ORDER BY created_at, id LIMIT ?3";

/// Params: now.
pub(crate) const QUEUE_DEPTH: &str = "SELECT
        COUNT(*) FILTER (WHERE status = 'pending'),
        COUNT(*) FILTER (WHERE status = 'in_flight'),
        MIN(due_at) FILTER (WHERE due_at <= ?1)
     FROM deliveries WHERE status IN ('pending', 'in_flight')";

/// Params: before, batch. Old events whose deliveries are all finished go,
/// with their deliveries and attempts (by cascade).
pub(crate) const PRUNE: &str = "DELETE FROM events WHERE id IN (
        SELECT e.id FROM events e
        WHERE e.created_at < ?1 AND NOT EXISTS (
            SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status IN ('pending', 'in_flight'))
        LIMIT ?2)";

/// The delivery's new status, due time, error and finish time after an attempt.
pub(crate) fn after_attempt(
    next: &Next,
    attempt: Option<&NewAttempt>,
    now: Millis,
) -> AfterAttempt {
    let error = attempt.and_then(|a| a.error_message.clone().or_else(|| a.error_kind.clone()));
    let (status, due_at, error, finished_at) = match next {
        Next::Succeeded => (DeliveryStatus::Succeeded, None, None, Some(now)),
        Next::Retry { at } => (DeliveryStatus::Pending, Some(*at), error, None),
        Next::GiveUp => (DeliveryStatus::Failed, None, error, Some(now)),
        Next::Cancelled { reason } => (
            DeliveryStatus::Cancelled,
            None,
            Some(reason.clone()),
            Some(now),
        ),
        Next::Deferred { at, reason } => (
            DeliveryStatus::Pending,
            Some(*at),
            Some(reason.clone()),
            None,
        ),
        Next::Dead { reason } => (DeliveryStatus::Dead, None, Some(reason.clone()), Some(now)),
    };
    AfterAttempt {
        status,
        due_at,
        error,
        finished_at,
        counted: i64::from(!matches!(next, Next::Deferred { .. } | Next::Dead { .. })),
    }
}

/// A delivery's row after an attempt: [`FINISH_ATTEMPT`]'s parameters.
pub(crate) struct AfterAttempt {
    pub(crate) status: DeliveryStatus,
    pub(crate) due_at: Option<Millis>,
    pub(crate) error: Option<String>,
    pub(crate) finished_at: Option<Millis>,
    /// 1 for an attempt, 0 for one the host deferred.
    pub(crate) counted: i64,
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            super::pg("a = ?1 AND b = ?12 OR c = '?'"),
            "a = $1 AND b = $12 OR c = '?'"
        );
    }
}
