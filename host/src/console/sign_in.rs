//! Signing in and out of the console: an admin token opens a session,
//! whose cookie the browser then holds; signing out ends it.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::form::Fields;
use super::layout;
use super::session::{cookie, session_id, LIFETIME};
use super::Console;
use crate::api::Role;

/// Where to go after signing in.
#[derive(Debug, Deserialize)]
pub(super) struct SignInQuery {
    next: Option<String>,
}

/// Only a console path is a place to return to.
fn return_to(next: Option<&str>) -> &str {
    next.filter(|n| {
        n.starts_with("/console") && !n.starts_with("//") && !n.chars().any(char::is_control)
    })
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
        assert_eq!(
            return_to(Some("/console\r\nSet-Cookie: x")),
            "/console/hooks"
        );
    }
}
