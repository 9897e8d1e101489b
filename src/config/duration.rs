//! Human-readable durations in configuration (`"250ms"`, `"10m"`, `"30d"`).

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Deserialise a duration written as text, e.g. `"1s"` or `"10m"`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// Serialise a duration as text, e.g. `"10m"`.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

/// Parse `"250ms"`, `"10m"`, `"1h 30m"`, `"30d"`.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|error| {
        format!("invalid duration `{text}`: {error} (write e.g. \"500ms\", \"10m\", \"1d\")")
    })
}

/// Format a duration the way it is written in configuration.
pub fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_round_trip() {
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse(" 250ms "), Ok(Duration::from_millis(250)));
        assert_eq!(format(Duration::from_secs(86_400)), "1day");
        assert!(parse("ten minutes").is_err());
    }
}
