//! Timestamps in two shapes: RFC 3339 text wherever people read them (`--json`), and
//! integer microseconds in the sealed vault, which is several times faster to write and
//! read back than formatting and parsing a date per event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod ts {
    use super::*;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            at.serialize(s)
        } else {
            s.serialize_i64(at.timestamp_micros())
        }
    }

    /// Accepts either shape whatever the format claims: serde buffers internally tagged
    /// enums (such as `Auth`) in a form that always reports itself human-readable, so a
    /// binary vault can hand integers to a "human-readable" deserializer.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_any(Visitor)
    }

    struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an RFC 3339 date or integer microseconds since 1970")
        }

        fn visit_i64<E: serde::de::Error>(self, micros: i64) -> Result<Self::Value, E> {
            DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| E::custom(format!("timestamp {micros} is out of range")))
        }

        fn visit_u64<E: serde::de::Error>(self, micros: u64) -> Result<Self::Value, E> {
            let micros = i64::try_from(micros)
                .map_err(|_| E::custom(format!("timestamp {micros} is out of range")))?;
            self.visit_i64(micros)
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| E::custom(format!("'{text}' is not an RFC 3339 date: {e}")))
        }
    }
}

pub mod ts_opt {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "super::ts")] DateTime<Utc>);

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        at.map(Wrap).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        #[serde(with = "ts")]
        at: DateTime<Utc>,
        #[serde(with = "ts_opt", default)]
        maybe: Option<DateTime<Utc>>,
    }

    /// Inside an internally tagged enum serde reports "human-readable" even for MessagePack.
    #[test]
    fn timestamps_survive_internally_tagged_enums() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        enum E {
            A { t: T },
        }
        let e = E::A {
            t: T {
                at: DateTime::from_timestamp_micros(42).unwrap(),
                maybe: None,
            },
        };
        let bin = rmp_serde::to_vec(&e).unwrap();
        assert_eq!(rmp_serde::from_slice::<E>(&bin).unwrap(), e);
    }

    #[test]
    fn both_shapes_round_trip() {
        let t = T {
            at: DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            maybe: Some(DateTime::from_timestamp_micros(5).unwrap()),
        };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("2027-01-15T08:00:00.123456Z"), "{json}");
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
        let bin = rmp_serde::to_vec_named(&t).unwrap();
        assert_eq!(rmp_serde::from_slice::<T>(&bin).unwrap(), t);
        let none = T { maybe: None, ..t };
        let bin = rmp_serde::to_vec_named(&none).unwrap();
        assert_eq!(rmp_serde::from_slice::<T>(&bin).unwrap(), none);
    }
}
