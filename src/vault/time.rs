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

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        if d.is_human_readable() {
            DateTime::<Utc>::deserialize(d)
        } else {
            let micros = i64::deserialize(d)?;
            DateTime::from_timestamp_micros(micros).ok_or_else(|| {
                serde::de::Error::custom(format!("timestamp {micros} is out of range"))
            })
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
