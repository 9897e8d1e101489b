//! Bearer-token authentication shared by the receivers.

use crate::config::Secret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// `[sources.<name>.auth]`: the tokens clients may present as `Authorization: Bearer <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted tokens, each `{ env = "VAR" }` or `{ file = "/path" }` (several allow rotation).
    pub tokens: Vec<Secret>,
}

/// Resolved tokens; an empty set means no authentication is required.
#[derive(Clone, Default)]
pub struct BearerAuth {
    tokens: Vec<Vec<u8>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BearerAuth({} tokens)", self.tokens.len())
    }
}

impl BearerAuth {
    /// Read the configured tokens (none: open).
    pub fn resolve(config: Option<&AuthConfig>) -> Result<Self, crate::config::SecretError> {
        let tokens = match config {
            None => Vec::new(),
            Some(config) => config
                .tokens
                .iter()
                .map(|secret| secret.resolve().map(String::into_bytes))
                .collect::<Result<_, _>>()?,
        };
        Ok(BearerAuth { tokens })
    }

    /// Whether an `Authorization` value (`Bearer <token>`) carries an accepted token.
    ///
    /// Every configured token is compared in constant time, and all of them are always
    /// compared, so the answer's timing tells nothing about how much of a token was right.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        if self.tokens.is_empty() {
            return true;
        }
        let Some(presented) = authorization.and_then(bearer_token) else {
            return false;
        };
        let mut accepted = subtle::Choice::from(0u8);
        for token in &self.tokens {
            accepted |= token.as_slice().ct_eq(presented);
        }
        accepted.into()
    }
}

fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value[7..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(tokens: &[&str]) -> BearerAuth {
        BearerAuth {
            tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn only_a_configured_bearer_token_passes() {
        let auth = auth(&["s3cret", "next-token"]);
        assert!(auth.allows(Some(b"Bearer s3cret")));
        assert!(auth.allows(Some(b"bearer next-token")));
        assert!(!auth.allows(Some(b"Bearer s3cre")));
        assert!(!auth.allows(Some(b"Bearer s3cret2")));
        assert!(!auth.allows(Some(b"Basic s3cret")));
        assert!(!auth.allows(Some(b"Bearer ")));
        assert!(!auth.allows(None));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn no_tokens_means_open() {
        assert!(BearerAuth::default().allows(None));
    }
}
