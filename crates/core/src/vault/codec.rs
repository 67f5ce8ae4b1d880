//! The plaintext inside the seal: `schema version (u32 LE) ‖ count (u32 LE) ‖` then, per
//! connection, `length (u32 LE) ‖ MessagePack`, structs as arrays (positional).
//!
//! Positional fields halve the vault's size against named ones, which is most of a
//! transaction's cost (the whole file is written and fsynced each time). The rule that
//! keeps old vaults readable: new fields go at the end of a struct with
//! `#[serde(default)]`, and no field is ever removed or reordered.
//!
//! Connections are encoded one by one so that a transaction re-encodes only the ones it
//! changed: each decoded or encoded connection keeps its encoded form until it is borrowed
//! mutably. The schema version leads, so a newer vault is recognised without parsing it.

use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use super::model::{Connection, SCHEMA_VERSION, Store};

/// A connection's encoded form, reused while the connection is unchanged. Holds secrets,
/// so it is wiped on drop. A clone starts without it: a copy may be changed through
/// its public fields, and a stale form must never be written.
#[derive(Default)]
pub struct SealedForm(Option<Arc<Blob>>);

impl Clone for SealedForm {
    fn clone(&self) -> Self {
        Self(None)
    }
}

pub struct Blob(Box<[u8]>);

impl Drop for Blob {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl SealedForm {
    pub fn forget(&mut self) {
        self.0 = None;
    }
}

/// Two connections are equal by content; the cache never makes them differ.
impl PartialEq for SealedForm {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for SealedForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "cached" } else { "-" })
    }
}

#[derive(Debug)]
pub enum DecodeError {
    Future(u32),
    Invalid(String),
}

pub fn encode(store: &mut Store) -> Result<Zeroizing<Vec<u8>>, String> {
    let connections = store.connections_for_codec();
    let mut blobs = Vec::with_capacity(connections.len());
    for c in connections.iter_mut() {
        let blob = match &c.sealed.0 {
            Some(blob) => blob.clone(),
            None => {
                let bytes = rmp_serde::to_vec(c)
                    .map_err(|e| format!("cannot encode connection '{}': {e}", c.name))?;
                let blob = Arc::new(Blob(bytes.into_boxed_slice()));
                c.sealed = SealedForm(Some(blob.clone()));
                blob
            }
        };
        blobs.push(blob);
    }
    let total: usize = 8 + blobs.iter().map(|b| 4 + b.0.len()).sum::<usize>();
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&len_u32(blobs.len())?.to_le_bytes());
    for blob in &blobs {
        out.extend_from_slice(&len_u32(blob.0.len())?.to_le_bytes());
        out.extend_from_slice(&blob.0);
    }
    Ok(out)
}

/// One connection as the vault file encodes it (the PostgreSQL store seals each alone).
pub fn encode_connection(c: &Connection) -> Result<Zeroizing<Vec<u8>>, String> {
    rmp_serde::to_vec(c)
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot encode connection '{}': {e}", c.name))
}

pub fn decode_connection(bytes: &[u8]) -> Result<Connection, String> {
    rmp_serde::from_slice(bytes).map_err(|e| format!("cannot be decoded ({e})"))
}

fn len_u32(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("a part of {n} bytes is too large for the vault"))
}

pub fn decode(plain: &[u8]) -> Result<Store, DecodeError> {
    let mut rest = plain;
    let version = take_u32(&mut rest).ok_or_else(|| invalid("no schema version"))?;
    if version > SCHEMA_VERSION {
        return Err(DecodeError::Future(version));
    }
    let count = take_u32(&mut rest).ok_or_else(|| invalid("no connection count"))? as usize;
    let mut connections = Vec::with_capacity(count.min(rest.len() / 4));
    for i in 0..count {
        let len = take_u32(&mut rest)
            .ok_or_else(|| invalid(&format!("connection {i} of {count} is missing")))?
            as usize;
        if rest.len() < len {
            return Err(invalid(&format!("connection {i} is cut short")));
        }
        let (bytes, tail) = rest.split_at(len);
        rest = tail;
        let mut c: Connection =
            rmp_serde::from_slice(bytes).map_err(|e| invalid(&format!("connection {i}: {e}")))?;
        c.sealed = SealedForm(Some(Arc::new(Blob(bytes.into()))));
        connections.push(c);
    }
    if !rest.is_empty() {
        return Err(invalid(&format!(
            "{} unexpected bytes at the end",
            rest.len()
        )));
    }
    Ok(Store::from_connections(connections))
}

fn invalid(why: &str) -> DecodeError {
    DecodeError::Invalid(why.to_string())
}

fn take_u32(rest: &mut &[u8]) -> Option<u32> {
    let (head, tail) = rest.split_first_chunk::<4>()?;
    *rest = tail;
    Some(u32::from_le_bytes(*head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::model::{Auth, Event, EventKind, parse_upstream};

    fn store_of(names: &[&str]) -> Store {
        let mut store = Store::default();
        for name in names {
            store.push(Connection::new(
                name.parse().unwrap(),
                parse_upstream("https://e.example/mcp").unwrap(),
                Auth::None,
                chrono::DateTime::from_timestamp_micros(1_800_000_000_000_000).unwrap(),
            ));
        }
        store
    }

    #[test]
    fn round_trip_and_reuse_of_unchanged_connections() {
        let mut store = store_of(&["a", "b"]);
        let first = encode(&mut store).unwrap();
        let mut back = decode(&first).unwrap();
        assert_eq!(back, store);
        back.get_mut("b").unwrap().record(Event::new(
            chrono::Utc::now(),
            EventKind::Refreshed,
            "x",
        ));
        let second = encode(&mut back).unwrap();
        let again = decode(&second).unwrap();
        assert_eq!(again.get("b").unwrap().history.len(), 1);
        assert_eq!(again.get("a"), store.get("a"));
    }

    /// The evolution rule of this module: a field appended with a default decodes from
    /// data written before it existed.
    #[test]
    fn appended_defaulted_fields_read_old_data() {
        #[derive(serde::Serialize)]
        struct V1 {
            a: u32,
            #[serde(rename = "kind")]
            tag: String,
        }
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct V2 {
            a: u32,
            #[serde(rename = "kind")]
            tag: String,
            #[serde(default)]
            added: Option<String>,
        }
        let old = rmp_serde::to_vec(&V1 {
            a: 7,
            tag: "x".into(),
        })
        .unwrap();
        let new: V2 = rmp_serde::from_slice(&old).unwrap();
        assert_eq!(
            new,
            V2 {
                a: 7,
                tag: "x".into(),
                added: None
            }
        );
    }

    #[test]
    fn older_vaults_read_as_having_no_step_up_no_counters_and_no_ended_grants() {
        let mut store = store_of(&["a"]);
        store.get_mut("a").unwrap().counters = None;
        let bytes = encode(&mut store).unwrap().to_vec();
        // One connection: version ‖ count ‖ length ‖ MessagePack array, whose last three
        // elements are the step-up, the counters (none: nil, nil) and the ended grants
        // (none: an empty array). Schema 3 had no ended grants; schema 2 no counters
        // either; schema 1 no step-up either.
        let connection = &bytes[12..];
        let fields = connection[0] & 0x0f;
        assert_eq!(connection[0] & 0xf0, 0x90, "a fixarray");
        assert!(
            connection.ends_with(&[0xc0, 0xc0, 0x90]),
            "step_up, counters, ended_grants last"
        );
        for (schema, dropped) in [(3u32, 1usize), (2, 2), (1, 3)] {
            let mut old = Vec::new();
            old.extend_from_slice(&schema.to_le_bytes());
            old.extend_from_slice(&1u32.to_le_bytes());
            old.extend_from_slice(&((connection.len() - dropped) as u32).to_le_bytes());
            old.push(0x90 | (fields - dropped as u8));
            old.extend_from_slice(&connection[1..connection.len() - dropped]);
            let read = decode(&old).unwrap();
            let c = &read.connections()[0];
            assert_eq!(c.name.as_str(), "a");
            assert!(c.ended_grants.is_empty());
            assert_eq!(c.step_up, None);
            assert_eq!(c.counters, None, "schema {schema}");
        }
    }

    #[test]
    fn newer_and_damaged_payloads_are_named() {
        let mut store = store_of(&["a"]);
        let mut bytes = encode(&mut store).unwrap().to_vec();
        bytes[..4].copy_from_slice(&(SCHEMA_VERSION + 1).to_le_bytes());
        assert!(matches!(decode(&bytes), Err(DecodeError::Future(_))));
        let mut bytes = encode(&mut store).unwrap().to_vec();
        bytes.pop();
        assert!(matches!(decode(&bytes), Err(DecodeError::Invalid(_))));
        assert!(matches!(decode(b""), Err(DecodeError::Invalid(_))));
        assert!(matches!(
            decode(&[1, 0, 0, 0, 255, 255, 255, 255]),
            Err(DecodeError::Invalid(_))
        ));
    }
}
