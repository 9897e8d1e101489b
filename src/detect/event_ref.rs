//! The id of an event kept as evidence in detection state, stored compactly.
//!
//! Windows and baselines remember the ids of the events they counted so an alert can name them.
//! Most sources use UUIDs: as text each costs a 16-byte pointer plus a 48-byte allocation; as
//! bytes it costs 16 inline. Any other id is kept as written. Either way it reads back exactly as
//! it arrived, and snapshots store it as the same string.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An event id as detection state keeps it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum EventRef {
    /// A lowercase hyphenated UUID, as its 16 bytes.
    Uuid([u8; 16]),
    /// Any other id, verbatim.
    Text(Box<str>),
}

impl EventRef {
    /// Keep `id`: as bytes when it is a lowercase hyphenated UUID (so that it prints back
    /// identically), as text otherwise.
    pub fn new(id: &str) -> EventRef {
        if is_lower_hyphenated_uuid(id) {
            if let Ok(uuid) = uuid::Uuid::try_parse(id) {
                return EventRef::Uuid(uuid.into_bytes());
            }
        }
        EventRef::Text(id.into())
    }
}

fn is_lower_hyphenated_uuid(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
}

impl fmt::Display for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventRef::Uuid(bytes) => {
                let mut buf = uuid::Uuid::encode_buffer();
                f.write_str(
                    uuid::Uuid::from_bytes(*bytes)
                        .hyphenated()
                        .encode_lower(&mut buf),
                )
            }
            EventRef::Text(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl Serialize for EventRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(EventRef::new(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::EventRef;

    #[test]
    fn a_lowercase_uuid_is_kept_as_bytes_and_prints_back_identically() {
        let id = "0192f3c4-7a1b-7c2d-8e3f-4a5b6c7d8e9f";
        let kept = EventRef::new(id);
        assert!(matches!(kept, EventRef::Uuid(_)));
        assert_eq!(kept.to_string(), id);
    }

    #[test]
    fn other_ids_are_kept_verbatim() {
        for id in [
            "0192F3C4-7A1B-7C2D-8E3F-4A5B6C7D8E9F",
            "0192f3c47a1b7c2d8e3f4a5b6c7d8e9f",
            "{0192f3c4-7a1b-7c2d-8e3f-4a5b6c7d8e9f}",
            "urn:uuid:0192f3c4-7a1b-7c2d-8e3f-4a5b6c7d8e9f",
            "0192f3c4-7a1b-7c2d-8e3f-4a5b6c7d8e9g",
            "0192f3c4_7a1b-7c2d-8e3f-4a5b6c7d8e9f",
            "req_011CUz",
            "",
            "ümlaut-0192f3c4-7a1b-7c2d-8e3f-4a5b",
        ] {
            let kept = EventRef::new(id);
            assert!(matches!(kept, EventRef::Text(_)), "{id}");
            assert_eq!(kept.to_string(), id);
        }
    }

    #[test]
    fn snapshots_hold_the_id_as_the_same_string() {
        let ids = [
            EventRef::new("0192f3c4-7a1b-7c2d-8e3f-4a5b6c7d8e9f"),
            EventRef::new("req_011CUz"),
        ];
        let json = serde_json::to_string(&ids).unwrap();
        assert_eq!(
            json,
            r#"["0192f3c4-7a1b-7c2d-8e3f-4a5b6c7d8e9f","req_011CUz"]"#
        );
        let back: Vec<EventRef> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ids);
    }

    #[test]
    fn a_uuid_costs_no_more_than_a_boxed_str() {
        assert!(std::mem::size_of::<EventRef>() <= 24);
    }
}
