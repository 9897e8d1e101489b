//! Strict in-process mocks of the SIEM protocols: they check what PROTOCOLS.md requires, record
//! what they accepted, note every violation, and answer from a script.

pub mod splunk_hec;
pub mod syslog;

use std::io::Read;

/// Undo `Content-Encoding: gzip`; `None` for an encoding the receiver does not take.
pub fn decode_body(encoding: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    match encoding {
        None | Some("identity") => Some(body.to_vec()),
        Some("gzip") => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut plain)
                .ok()?;
            Some(plain)
        }
        Some(_) => None,
    }
}
