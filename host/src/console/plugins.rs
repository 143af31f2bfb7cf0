//! Plugin pages: upload a component (file picker or drag and drop; the
//! script sends its bytes as the API would), see it validated, list what is
//! stored and which hooks use it, delete what no hook uses.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::html;
use serde::Deserialize;

use super::layout::{self, page, Notice, PageResult, Section};
use super::session::{csrf_field, Session};
use super::Console;
use crate::host::HostError;
use crate::pipeline::PluginState;

/// `GET /console/plugins`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(notice): Query<Notice>,
) -> PageResult {
    let plugins = console.host.plugins().await?;
    let hooks = console.host.hooks().await?;
    let users = |name: &str| -> Vec<String> {
        hooks
            .iter()
            .filter(|h| crate::hook::uses_plugin(&h.spec, name))
            .map(|h| h.id.clone())
            .collect()
    };
    Ok(page(
        &session,
        Section::Plugins,
        "Plugins",
        notice.notice.as_deref(),
        html! {
            h1 { "Plugins" }
            section aria-labelledby="upload-title" {
                h2 id="upload-title" { "Upload a component" }
                form id="upload" class="stack" data-csrf=(session.csrf) action="/console/plugins" method="post" {
                    label for="plugin-name" { "Name" }
                    input id="plugin-name" name="name" required pattern="[A-Za-z0-9_.-]+" autocomplete="off";
                    div class="drop" data-drop="plugin-file" {
                        label for="plugin-file" { "Component (.wasm): choose a file or drop it here" }
                        input id="plugin-file" name="file" type="file" accept=".wasm,application/wasm" required;
                    }
                    button type="submit" { "Upload" }
                    p id="upload-status" class="field-error" role="status" aria-live="polite" {}
                }
            }
            section aria-labelledby="stored-title" {
                h2 id="stored-title" { "Stored" }
                @if plugins.is_empty() { p class="muted" { "No plugins yet." } }
                @else {
                    div class="table-wrap" {
                        table {
                            thead { tr { th scope="col" { "Name" } th scope="col" { "Size" } th scope="col" { "SHA-256" } th scope="col" { "Status" } th scope="col" { "Used by" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                            tbody {
                                @for plugin in &plugins {
                                    @let used = users(&plugin.record.name);
                                    tr {
                                        td { code { (plugin.record.name) } }
                                        td { (format!("{:.1} KB", plugin.record.size as f64 / 1024.0)) }
                                        td { code title=(plugin.record.hash) { (&plugin.record.hash[..12.min(plugin.record.hash.len())]) "…" } }
                                        td {
                                            (state_name(plugin.state))
                                            @if let Some(error) = &plugin.error { br; span class="field-error" { (error) } }
                                        }
                                        td {
                                            @if used.is_empty() { span class="muted" { "no hook" } }
                                            @for (i, hook) in used.iter().enumerate() {
                                                @if i > 0 { ", " }
                                                a href={"/console/hooks/" (hook)} { (hook) }
                                            }
                                        }
                                        td {
                                            form method="post" action={"/console/plugins/" (plugin.record.name) "/delete"} class="inline" data-confirm={"Delete plugin " (plugin.record.name) "?"} {
                                                (csrf_field(&session))
                                                button type="submit" class="danger" aria-label={"Delete " (plugin.record.name)} { "Delete" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

fn state_name(state: PluginState) -> &'static str {
    match state {
        PluginState::Ready => "ready",
        PluginState::Compiling => "compiling",
        PluginState::Failed => "failed",
        PluginState::Stored => "stored",
    }
}

/// Where an upload goes.
#[derive(Debug, Deserialize)]
pub(super) struct Upload {
    name: String,
}

/// `POST /console/plugins?name=...`: the component's bytes as the body.
/// Answers with the list page, or the validation error as text for the
/// script to show beside the form.
pub(super) async fn upload(
    State(console): State<Console>,
    Query(upload): Query<Upload>,
    body: Bytes,
) -> Response {
    match console
        .host
        .put_plugin(upload.name.trim(), body.to_vec())
        .await
    {
        Ok(plugin) => layout::to_page(
            "/console/plugins",
            &format!(
                "Plugin {} uploaded: {}.",
                plugin.record.name,
                state_name(plugin.state)
            ),
        ),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// `POST /console/plugins/{name}/delete`: refused, and explained, while a
/// hook uses it.
pub(super) async fn delete(
    State(console): State<Console>,
    Path(name): Path<String>,
) -> PageResult<Response> {
    match console.host.delete_plugin(&name).await {
        Ok(()) => Ok(layout::to_page(
            "/console/plugins",
            &format!("Plugin {name} deleted."),
        )),
        Err(HostError::Conflict(message)) => Ok(layout::to_page(
            "/console/plugins",
            &format!("Not deleted: {message}. Remove it from their steps first."),
        )),
        Err(e) => Err(e.into()),
    }
}
