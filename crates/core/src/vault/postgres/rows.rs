//! The rows a transaction writes: each connection that changed, sealed and bound to its
//! row, and the names that are gone; then the vault's revision raised and announced.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::CHANNEL;
use crate::vault::model::SCHEMA_VERSION;

pub enum Change {
    Put {
        name: String,
        position: i32,
        upstream: String,
        auth: String,
        state: String,
        generation: Option<i64>,
        expires_at: Option<DateTime<Utc>>,
        sealed: Vec<u8>,
        revision: i64,
    },
    Delete(String),
}

/// What a sealed connection is bound to: its row and column, so a value copied to another
/// row fails its check.
pub fn binding(name: &str) -> Vec<u8> {
    format!("tether store v1\0tether_connections\0{name}\0sealed").into_bytes()
}

/// Writes `changes` and raises the vault to `revision`, announcing it, then commits the
/// transaction the caller began.
pub async fn commit(
    session: &Client,
    changes: &[Change],
    revision: i64,
    replica: &str,
) -> Result<(), tokio_postgres::Error> {
    let replica = replica.to_string();
    for change in changes {
        match change {
            Change::Put {
                name,
                position,
                upstream,
                auth,
                state,
                generation,
                expires_at,
                sealed,
                revision,
            } => {
                let params: [&(dyn ToSql + Sync); 10] = [
                    name, position, upstream, auth, state, generation, expires_at, sealed,
                    revision, &replica,
                ];
                session
                    .execute(
                        "INSERT INTO tether_connections
                           (name, position, upstream, auth, state, generation,
                            expires_at, sealed, revision, updated_by)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                         ON CONFLICT (name) DO UPDATE SET
                           position = $2, upstream = $3, auth = $4, state = $5,
                           generation = $6, expires_at = $7, sealed = $8,
                           revision = $9, updated_at = now(), updated_by = $10",
                        &params,
                    )
                    .await?;
            }
            Change::Delete(name) => {
                session
                    .execute("DELETE FROM tether_connections WHERE name = $1", &[name])
                    .await?;
            }
        }
    }
    session
        .execute(
            "UPDATE tether_vault SET revision = $1, store_version = $2,
               updated_at = now(), updated_by = $3",
            &[&revision, &(SCHEMA_VERSION as i32), &replica],
        )
        .await?;
    session
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &revision.to_string()],
        )
        .await?;
    session.batch_execute("COMMIT").await
}
