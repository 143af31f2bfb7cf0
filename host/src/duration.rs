//! Durations written as text — `5s`, `30m`, `2h`, `1h 30m`, `5days` — in
//! hook definitions and the configuration, for `#[serde(with = ...)]`.

use std::time::Duration;

fn parse<E: serde::de::Error>(text: &str) -> Result<Duration, E> {
    humantime::parse_duration(text).map_err(|e| E::custom(format!("`{text}`: {e}")))
}

fn format(d: &Duration) -> String {
    humantime::format_duration(*d).to_string()
}

/// One duration.
pub(crate) mod text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::parse(&String::deserialize(d)?)
    }
}

/// An optional duration (absent or `null` is none).
pub(crate) mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| super::parse(&t))
            .transpose()
    }
}

/// A list of durations.
pub(crate) mod list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ds: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ds.iter().map(super::format))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| super::parse(t))
            .collect()
    }
}
