//! `check-config --connect`: can each sink reach its destination with its credentials?
//!
//! Each sink module owns its check and builds its service the same way as for delivery. No
//! check sends anything that would be indexed: a health endpoint, a token request, a
//! connection that is closed at once.

use super::{elastic, kafka, sentinel, splunk_hec, syslog, SinkConfig};

/// Check one sink; `Ok` says what was confirmed, `Err` what is wrong.
pub async fn check(name: &str, config: &SinkConfig) -> Result<String, String> {
    match config {
        SinkConfig::Stdout(_) => Ok("standard output".into()),
        SinkConfig::File(file) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file.path)
            .map(|_| format!("{} is writable", file.path.display()))
            .map_err(|error| format!("{}: {error}", file.path.display())),
        SinkConfig::SplunkHec(hec) => splunk_hec::check(hec, name).await,
        SinkConfig::Elastic(es) => elastic::check(es, name).await,
        SinkConfig::Sentinel(sentinel) => sentinel::check(sentinel, name).await,
        SinkConfig::Syslog(syslog) => syslog::check(syslog, name).await,
        SinkConfig::Kafka(config) => kafka::check(config).await,
    }
}
