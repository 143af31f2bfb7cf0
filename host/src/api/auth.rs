//! Bearer tokens: admin tokens reach every route, ingest tokens only the
//! event and sync routes. Tokens are compared by their SHA-256 digests in
//! constant time, so neither content nor length leaks through timing.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Post events and call sync triggers.
    Ingest,
    /// Everything.
    Admin,
}

/// The configured tokens, as digests.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<([u8; 32], Role)>,
}

impl Tokens {
    /// Tokens from the admin and ingest lists.
    pub fn new(admin: &[String], ingest: &[String]) -> Self {
        let digest = |t: &String| -> [u8; 32] { Sha256::digest(t.as_bytes()).into() };
        let tokens = admin
            .iter()
            .map(|t| (digest(t), Role::Admin))
            .chain(ingest.iter().map(|t| (digest(t), Role::Ingest)))
            .collect();
        Tokens { tokens }
    }

    /// The role of `token`, if it is one of ours. Every configured token is
    /// compared, whatever matches first.
    pub fn role(&self, token: &str) -> Option<Role> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (known, role) in &self.tokens {
            if bool::from(known.ct_eq(&digest)) {
                found = found.max(Some(*role));
            }
        }
        found
    }
}

fn role_of(state: &AppState, request: &Request) -> Result<Role, ApiError> {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>` header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
    state
        .tokens
        .role(token.trim())
        .ok_or_else(|| ApiError::unauthorized("the token is not valid"))
}

/// Let through requests with an ingest or admin token.
pub async fn ingest(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    role_of(&state, &request)?;
    Ok(next.run(request).await)
}

/// Let through requests with an admin token.
pub async fn admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match role_of(&state, &request)? {
        Role::Admin => Ok(next.run(request).await),
        Role::Ingest => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "an ingest token may only post events and call sync triggers",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_token_lists() {
        let tokens = Tokens::new(&["a".repeat(40)], &["i".repeat(40)]);
        assert_eq!(tokens.role(&"a".repeat(40)), Some(Role::Admin));
        assert_eq!(tokens.role(&"i".repeat(40)), Some(Role::Ingest));
        assert_eq!(tokens.role("a"), None);
        assert_eq!(tokens.role(""), None);
    }
}
