//! Who is cleared for which data classification.
//!
//! ```toml
//! [restricted]
//! users = ["alice@acme.example"]
//! departments = ["legal"]
//! [confidential]
//! users = ["*"]          # everyone
//! ```
//!
//! Clearance for a level covers every lower level, so a user listed under `restricted` is also
//! entitled to `confidential` data. `confidential` and `sensitive` are the same level. Ids and
//! department names compare case-insensitively (mail addresses are). Everyone is entitled to
//! `public`; with no file, nobody is entitled to anything above it.

use super::RuleError;
use crate::record::Classification;
use serde::Deserialize;
use std::collections::HashSet;

/// Who is cleared for which classification.
#[derive(Debug, Default, Clone)]
pub struct Entitlements {
    /// Indexed by [`Classification::level`]; entry 0 (public) is unused.
    levels: [Clearance; 4],
}

/// The users and departments cleared for one level.
#[derive(Debug, Default, Clone)]
struct Clearance {
    users: HashSet<String>,
    departments: HashSet<String>,
    all_users: bool,
    all_departments: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    public: Option<ClearanceDoc>,
    internal: Option<ClearanceDoc>,
    confidential: Option<ClearanceDoc>,
    sensitive: Option<ClearanceDoc>,
    restricted: Option<ClearanceDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearanceDoc {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    departments: Vec<String>,
}

impl Entitlements {
    /// Parse an entitlements file.
    pub fn parse(name: &str, text: &str) -> Result<Entitlements, RuleError> {
        let doc: FileDoc = super::rules::parse_toml(text).map_err(|message| RuleError {
            file: name.to_string(),
            message,
        })?;
        let mut entitlements = Entitlements::default();
        for (class, section) in [
            (Classification::Public, doc.public),
            (Classification::Internal, doc.internal),
            (Classification::Confidential, doc.confidential),
            (Classification::Sensitive, doc.sensitive),
            (Classification::Restricted, doc.restricted),
        ] {
            let Some(section) = section else { continue };
            let clearance = &mut entitlements.levels[usize::from(class.level())];
            for user in section.users {
                match user.trim() {
                    "*" => clearance.all_users = true,
                    "" => return Err(empty(name, class, "users")),
                    user => {
                        clearance.users.insert(user.to_lowercase());
                    }
                }
            }
            for department in section.departments {
                match department.trim() {
                    "*" => clearance.all_departments = true,
                    "" => return Err(empty(name, class, "departments")),
                    department => {
                        clearance.departments.insert(department.to_lowercase());
                    }
                }
            }
        }
        Ok(entitlements)
    }

    /// Whether this user, or their department, is cleared for `level` (or a higher level).
    pub fn is_entitled(
        &self,
        user: Option<&str>,
        department: Option<&str>,
        level: Classification,
    ) -> bool {
        let level = usize::from(level.level());
        if level == 0 {
            return true;
        }
        let user = user.map(str::to_lowercase);
        let department = department.map(str::to_lowercase);
        self.levels[level..].iter().any(|c| {
            user.as_ref()
                .is_some_and(|u| c.all_users || c.users.contains(u))
                || department
                    .as_ref()
                    .is_some_and(|d| c.all_departments || c.departments.contains(d))
        })
    }
}

fn empty(file: &str, class: Classification, list: &str) -> RuleError {
    RuleError {
        file: file.to_string(),
        message: format!("field `{}.{list}`: empty name", class.as_str()),
    }
}
