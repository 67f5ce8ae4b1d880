//! The PostgreSQL store's tables and their migrations, applied in order at start under a
//! transaction-scoped advisory lock, so replicas starting together migrate once. A
//! database migrated by a newer tether is refused, never written.

use tokio_postgres::Client;

/// The schema version this build reads and writes.
pub const VERSION: i32 = 1;

/// The advisory lock that serialises migrations ("tether schema" in ASCII).
const MIGRATION_LOCK: i64 = 0x7465_7468_7363_6865;

/// Each migration, the one at index `i` bringing the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the vault's one row (its revision, the key that seals it, the model's version) and
    // a row per connection. Secrets live only inside `sealed` (AES-256-GCM under the vault
    // key, bound to the row's name and the column); the other columns are what an operator
    // may read with psql.
    "CREATE TABLE tether_vault (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        revision bigint NOT NULL,
        key_id text NOT NULL,
        store_version integer NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL
    );
    CREATE TABLE tether_connections (
        name text PRIMARY KEY,
        position integer NOT NULL,
        upstream text NOT NULL,
        auth text NOT NULL,
        state text NOT NULL,
        generation bigint,
        expires_at timestamptz,
        sealed bytea NOT NULL,
        revision bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL
    );",
];

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the database's tether schema is version {found}; this build knows {VERSION}")]
    Future { found: i32 },
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

/// Brings the database's schema to [`VERSION`].
pub async fn migrate(client: &Client) -> Result<(), SchemaError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS tether_schema (version integer NOT NULL);
             BEGIN;",
        )
        .await?;
    let result = apply(client).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).await?;
    result
}

async fn apply(client: &Client) -> Result<(), SchemaError> {
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let found: i32 = match client
        .query_opt("SELECT version FROM tether_schema", &[])
        .await?
    {
        Some(row) => row.get(0),
        None => {
            client
                .execute("INSERT INTO tether_schema (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    if found > VERSION {
        return Err(SchemaError::Future { found });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        client.batch_execute(sql).await?;
        client
            .execute("UPDATE tether_schema SET version = $1", &[&(i as i32 + 1)])
            .await?;
    }
    Ok(())
}
