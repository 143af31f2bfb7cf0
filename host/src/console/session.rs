//! Console sessions: an admin token signs in once; the browser then holds
//! a random session id in an HttpOnly, SameSite=Strict cookie. Every
//! request that changes something must also carry the session's CSRF token,
//! in the form's `csrf` field or the `x-csrf-token` header.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::form::Fields;
use super::Console;

/// The session cookie's name.
const COOKIE: &str = "wasmhooks_console";
/// How long a session lasts after signing in.
pub(super) const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The form field and header that carry the CSRF token.
const CSRF_FIELD: &str = "csrf";
const CSRF_HEADER: &str = "x-csrf-token";

/// The signed-in sessions of this process, by the digest of their id (so a
/// memory dump does not hold usable ids).
#[derive(Default)]
pub(super) struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(super) struct Session {
    /// The token every changing request must carry.
    pub csrf: String,
    expires: Instant,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// A new session; returns its id, for the cookie.
    pub(super) fn open(&self) -> String {
        let id = random_token();
        let session = Session {
            csrf: random_token(),
            expires: Instant::now() + LIFETIME,
        };
        let mut live = self.live.lock().expect("sessions lock");
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        live.insert(digest(&id), session);
        id
    }

    fn find(&self, id: &str) -> Option<Session> {
        let live = self.live.lock().expect("sessions lock");
        live.get(&digest(id))
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    pub(super) fn close(&self, id: &str) {
        self.live.lock().expect("sessions lock").remove(&digest(id));
    }
}

/// The session id the request's cookie carries.
pub(super) fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

pub(super) fn cookie(value: &str, max_age: u64) -> String {
    format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

/// Let through requests of a signed-in browser; send others to sign in.
/// A request that changes something must carry the session's CSRF token.
pub(super) async fn require(
    State(console): State<Console>,
    request: Request,
    next: Next,
) -> Response {
    let Some(session) = session_id(request.headers()).and_then(|id| console.sessions.find(id))
    else {
        let back = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/console");
        let target = if request.method() == Method::GET {
            format!(
                "/console/sign-in?next={}",
                form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
            )
        } else {
            "/console/sign-in".to_string()
        };
        return Redirect::to(&target).into_response();
    };
    let mut request = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
    } else {
        match with_csrf_checked(request, &session.csrf, console.form_limit).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    };
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// The request, if its CSRF token is the session's: from the header, or
/// from the form body (read, then put back for the handler).
async fn with_csrf_checked(
    request: Request,
    expected: &str,
    limit: usize,
) -> Result<Request, Response> {
    use subtle::ConstantTimeEq;
    let matches = |token: &str| bool::from(token.as_bytes().ct_eq(expected.as_bytes()));
    if let Some(token) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return if matches(token) {
            Ok(request)
        } else {
            Err(forbidden())
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(forbidden());
    }
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    let fields = Fields::parse(&bytes);
    if !fields.get(CSRF_FIELD).is_some_and(matches) {
        return Err(forbidden());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "This form has expired: its security token does not match your session. \
         Reload the page and try again.",
    )
        .into_response()
}

/// The hidden field every console form carries.
pub(super) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_id_until_closed() {
        let sessions = Sessions::default();
        let id = sessions.open();
        assert!(sessions.find(&id).is_some());
        assert!(sessions.find("other").is_none());
        sessions.close(&id);
        assert!(sessions.find(&id).is_none());
    }
}
