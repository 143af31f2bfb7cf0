//! Console sessions: an admin token signs in once; the browser then holds
//! a random session id in an HttpOnly, SameSite=Strict cookie. Every
//! request that changes something must also carry the session's CSRF token,
//! in the form's `csrf` field or the `x-csrf-token` header.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::form::Fields;
use super::layout;
use super::Console;
use crate::api::Role;

/// The session cookie's name.
const COOKIE: &str = "wasmhooks_console";
/// How long a session lasts after signing in.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The form field and header that carry the CSRF token.
const CSRF_FIELD: &str = "csrf";
const CSRF_HEADER: &str = "x-csrf-token";

/// The signed-in sessions of this process, by the digest of their id (so a
/// memory dump does not hold usable ids).
#[derive(Default)]
pub struct Sessions {
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
    fn open(&self) -> String {
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

    fn close(&self, id: &str) {
        self.live.lock().expect("sessions lock").remove(&digest(id));
    }
}

/// The session id the request's cookie carries.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn cookie(value: &str, max_age: u64) -> String {
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
            format!("/console/sign-in?next={}", layout::query_escape(back))
        } else {
            "/console/sign-in".to_string()
        };
        return Redirect::to(&target).into_response();
    };
    let mut request = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
    } else {
        match with_csrf_checked(request, &session.csrf).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    };
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// The request, if its CSRF token is the session's: from the header, or
/// from the form body (read, then put back for the handler).
async fn with_csrf_checked(request: Request, expected: &str) -> Result<Request, Response> {
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
    let bytes: Bytes = axum::body::to_bytes(body, usize::MAX)
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
        layout::bare(
            "Form expired",
            html! {
                h1 { "This form has expired" }
                p { "Its security token does not match your session. "
                    a href="/console/hooks" { "Reload the console" } " and try again." }
            },
        ),
    )
        .into_response()
}

/// The hidden field every console form carries.
pub(super) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

/// Where to go after signing in.
#[derive(Debug, Deserialize)]
pub(super) struct SignInQuery {
    next: Option<String>,
}

/// Only a console path is a place to return to.
fn return_to(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with("/console") && !n.starts_with("//"))
        .unwrap_or("/console/hooks")
}

fn sign_in_form(next: &str, error: Option<&str>) -> Markup {
    layout::bare(
        "Sign in",
        html! {
            main class="sign-in" {
                h1 { "wasmhooks" }
                form method="post" action="/console/sign-in" {
                    input type="hidden" name="next" value=(next);
                    label for="token" { "Admin token" }
                    input id="token" name="token" type="password" autocomplete="current-password"
                        required autofocus aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[layout::error_ref("token", error)];
                    (layout::error_note("token", error))
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// `GET /console/sign-in`.
pub(super) async fn sign_in_page(Query(next): Query<SignInQuery>) -> Markup {
    sign_in_form(return_to(next.next.as_deref()), None)
}

/// `POST /console/sign-in`: an admin token opens a session.
pub(super) async fn sign_in(State(console): State<Console>, body: Bytes) -> Response {
    let fields = Fields::parse(&body);
    let next = return_to(fields.get("next")).to_string();
    let token = fields.get("token").unwrap_or("").trim();
    match console.tokens.role(token) {
        Some(Role::Admin) => {
            let id = console.sessions.open();
            (
                [(header::SET_COOKIE, cookie(&id, LIFETIME.as_secs()))],
                Redirect::to(&next),
            )
                .into_response()
        }
        Some(Role::Ingest) => (
            StatusCode::FORBIDDEN,
            sign_in_form(
                &next,
                Some("That is an ingest token; the console needs an admin token."),
            ),
        )
            .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            sign_in_form(&next, Some("That token is not valid.")),
        )
            .into_response(),
    }
}

/// `POST /console/sign-out`: end the session and clear its cookie.
pub(super) async fn sign_out(State(console): State<Console>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        console.sessions.close(id);
    }
    (
        [(header::SET_COOKIE, cookie("", 0))],
        Redirect::to("/console/sign-in"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_returned_to() {
        assert_eq!(return_to(Some("/console/plugins")), "/console/plugins");
        assert_eq!(return_to(Some("https://evil.example")), "/console/hooks");
        assert_eq!(return_to(Some("//evil.example")), "/console/hooks");
        assert_eq!(return_to(None), "/console/hooks");
    }

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
