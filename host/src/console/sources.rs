//! Inbound sources: the senders (Logto, or any Standard Webhooks sender)
//! whose signed webhooks become events here. Their keys are write-only:
//! listed masked, set by the form.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::form::Fields;
use super::layout::{self, page, Notice, PageResult, Section};
use super::session::{csrf_field, Session};
use super::Console;
use crate::host::HostError;
use crate::source::{SourceKind, SourceView};

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Logto => "logto",
        SourceKind::StandardWebhooks => "standard-webhooks",
    }
}

fn sources_page(
    session: &Session,
    sources: &[SourceView],
    notice: Option<&str>,
    error: Option<&str>,
) -> Markup {
    page(
        session,
        Section::Sources,
        "Sources",
        notice,
        html! {
            h1 { "Inbound sources" }
            p { "A source's sender posts its signed webhooks to " code { "/v1/inbound/{id}" } "; each one that verifies becomes an event here." }
            @if sources.is_empty() { p class="muted" { "No sources yet." } }
            @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "Source" } th scope="col" { "Kind" } th scope="col" { "Posts to" } th scope="col" { "Keys" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                        tbody {
                            @for source in sources {
                                tr {
                                    td { code { (source.id) } }
                                    td { (kind_name(source.spec.kind)) }
                                    td { code { (source.inbound_path) } }
                                    td {
                                        @if let Some(key) = &source.spec.signing_key { code { (key) } }
                                        @for secret in &source.spec.secrets { code { (secret) } br; }
                                    }
                                    td {
                                        form method="post" action={"/console/sources/" (source.id) "/delete"} class="inline" data-confirm={"Delete source " (source.id) "?"} {
                                            (csrf_field(session))
                                            button type="submit" class="danger" aria-label={"Delete " (source.id)} { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="source-title" {
                h2 id="source-title" { "Add or replace a source" }
                form method="post" action="/console/sources" class="stack" {
                    (csrf_field(session))
                    @if let Some(error) = error { div class="error-summary" role="alert" { p { (error) } } }
                    label for="source-id" { "Id" }
                    input id="source-id" name="id" required autocomplete="off";
                    label for="source-kind" { "Kind" }
                    select id="source-kind" name="kind" {
                        option value="logto" { "Logto (logto-signature-sha-256)" }
                        option value="standard-webhooks" { "Standard Webhooks" }
                    }
                    label for="source-key" { "Logto: the webhook's signing key" }
                    input id="source-key" name="signing_key" autocomplete="off";
                    label for="source-secrets" { "Standard Webhooks: the sender's whsec_ secrets, one per line" }
                    textarea id="source-secrets" name="secrets" rows="2" class="mono" {}
                    label for="source-field" { "Standard Webhooks: the body field holding the event name (default type)" }
                    input id="source-field" name="event_field" autocomplete="off";
                    button type="submit" class="primary" { "Save source" }
                }
            }
        },
    )
}

/// `GET /console/sources`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(notice): Query<Notice>,
) -> PageResult {
    let sources = console.host.sources().await?;
    Ok(sources_page(
        &session,
        &sources,
        notice.notice.as_deref(),
        None,
    ))
}

/// `POST /console/sources`: create or replace a source.
pub(super) async fn save(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult<Response> {
    let fields = Fields::parse(&body);
    let id = fields.text("id").unwrap_or_default();
    let mut spec = json!({"kind": fields.get("kind").unwrap_or("logto")});
    if let Some(key) = fields.text("signing_key") {
        spec["signing_key"] = json!(key);
    }
    let secrets: Vec<Value> = fields
        .get("secrets")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| json!(s))
        .collect();
    if !secrets.is_empty() {
        spec["secrets"] = Value::Array(secrets);
    }
    if let Some(field) = fields.text("event_field") {
        spec["event_field"] = json!(field);
    }
    match console.host.put_source(id, spec).await {
        Ok(source) => Ok(layout::to_page(
            "/console/sources",
            &format!("Source {} saved.", source.id),
        )),
        Err(e @ (HostError::Invalid(_) | HostError::NotFound { .. })) => {
            let sources = console.host.sources().await?;
            let page = sources_page(&session, &sources, None, Some(&e.to_string()));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /console/sources/{id}/delete`.
pub(super) async fn delete(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    console.host.delete_source(&id).await?;
    Ok(layout::to_page(
        "/console/sources",
        &format!("Source {id} deleted."),
    ))
}
