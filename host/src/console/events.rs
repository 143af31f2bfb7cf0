//! The event catalogue: Logto's events and the registered custom ones, and
//! the form that registers another.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

use super::form::Fields;
use super::layout::{self, page, Notice, PageResult, Section};
use super::session::{csrf_field, Session};
use super::Console;

fn catalogue(
    console: &Console,
    session: &Session,
    notice: Option<&str>,
    name: &str,
    error: Option<&str>,
) -> Markup {
    let events = console.host.event_types();
    page(
        session,
        Section::EventTypes,
        "Event types",
        notice,
        html! {
            h1 { "Event types" }
            section aria-labelledby="register-title" {
                h2 id="register-title" { "Register a custom type" }
                form method="post" action="/console/event-types" class="inline" {
                    (csrf_field(session))
                    label for="event-name" { "Name" }
                    input id="event-name" name="name" value=(name) required
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[layout::error_ref("event-name", error)];
                    button type="submit" { "Register" }
                }
                (layout::error_note("event-name", error))
            }
            section aria-labelledby="catalogue-title" {
                h2 id="catalogue-title" { "Catalogue (" (events.len()) ")" }
                label for="event-filter" { "Search" }
                input id="event-filter" type="search" data-filter="event-catalogue" autocomplete="off";
                ul id="event-catalogue" class="columns" {
                    @for event in &events { li data-filter-item=(event) { code { (event) } } }
                }
            }
        },
    )
}

/// `GET /console/event-types`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(notice): Query<Notice>,
) -> Markup {
    catalogue(&console, &session, notice.notice.as_deref(), "", None)
}

/// `POST /console/event-types`.
pub(super) async fn register(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult<Response> {
    let fields = Fields::parse(&body);
    let name = fields.text("name").unwrap_or_default();
    match console.host.register_event_type(name).await {
        Ok(()) => Ok(layout::to_page(
            "/console/event-types",
            &format!("Event type {name} registered."),
        )),
        Err(e) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            catalogue(&console, &session, None, name, Some(&e.to_string())),
        )
            .into_response()),
    }
}
