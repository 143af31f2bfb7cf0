//! Fresh databases for store tests: a new SQLite file, or a new PostgreSQL
//! database on the server `WASMHOOKS_TEST_POSTGRES_URL` names.

use std::path::PathBuf;

/// The variable that names the test PostgreSQL server.
pub const POSTGRES_URL_VAR: &str = "WASMHOOKS_TEST_POSTGRES_URL";

/// A fresh SQLite database path in its own temporary directory (kept alive
/// by the returned guard).
pub fn sqlite_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("wasmhooks.db");
    (dir, path)
}

/// The test server's URL; `None` when it is not configured. Under CI the
/// server is required, so a missing URL fails instead of skipping.
pub fn postgres_server() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{POSTGRES_URL_VAR} must be set under CI (see scripts/test-postgres)")
        }
        _ => None,
    }
}

/// A new, empty database on the test server, dropped with the guard.
pub struct PostgresDb {
    server: String,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl PostgresDb {
    /// Create a database named after `label` plus a random suffix.
    pub async fn create(label: &str) -> Option<Self> {
        let server = postgres_server()?;
        let suffix: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            ^ (std::process::id() as u64) << 32;
        let name = format!(
            "wh_{}_{suffix:x}",
            label
                .to_ascii_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        let name: String = name.chars().take(60).collect();
        admin(&server, &format!("CREATE DATABASE {name}")).await;
        let url = match server.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("{POSTGRES_URL_VAR} must end in /DATABASE"),
        };
        Some(PostgresDb { server, name, url })
    }

    /// Drop the database (its connections are closed by force).
    pub async fn drop_database(self) {
        admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

async fn admin(server: &str, statement: &str) {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL server");
    let driver = tokio::spawn(connection);
    client.batch_execute(statement).await.expect(statement);
    drop(client);
    let _ = driver.await;
}
