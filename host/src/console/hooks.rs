//! Hook pages: the list with each hook's last 24 hours, a hook's page
//! (charts, recent deliveries, test, keys, replay, enable, delete), and the
//! create and edit form, which shows the host's validation errors at the
//! field they concern.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde_json::Value;

use super::deliveries::{delivery_rows, replay_form};
use super::form::Fields;
use super::layout::{self, page, Notice, PageResult, Section, DAY_MS};
use super::session::{csrf_field, Session};
use super::{chart, Console};
use crate::host::{HookView, HostError, KeyScheme};
use crate::store::{now_ms, DeliveryQuery, HookStats};

fn success_rate(stats: &HookStats) -> Markup {
    if stats.requests == 0 {
        return html! { span class="muted" { "no attempts" } };
    }
    let rate = stats.successes as f64 * 100.0 / stats.requests as f64;
    let class = if rate >= 99.0 {
        "good"
    } else if rate >= 90.0 {
        "warn"
    } else {
        "bad"
    };
    html! { span class=(class) { (format!("{rate:.1} %")) } " of " (stats.requests) }
}

fn target(hook: &HookView) -> Markup {
    if let Some(url) = hook.spec["webhook"]["url"].as_str() {
        html! { code { (url) } }
    } else if let Some(trigger) = hook.spec["sync"]["trigger"].as_str() {
        html! { "sync: " code { (trigger) } }
    } else {
        html! {}
    }
}

fn state(hook: &HookView) -> Markup {
    html! {
        @if hook.enabled {
            span class="badge succeeded" { "enabled" }
        } @else {
            span class="badge failed" { "disabled" }
            @if let Some(reason) = &hook.disabled_reason { " " span class="muted" { (reason) } }
        }
    }
}

fn events_of(hook: &HookView) -> Vec<&str> {
    hook.spec["events"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `GET /console/hooks`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(notice): Query<Notice>,
) -> PageResult {
    let hooks = console.host.hooks().await?;
    let since = now_ms() - DAY_MS;
    let mut rows = Vec::with_capacity(hooks.len());
    for hook in hooks {
        let stats = console.host.hook_counts(&hook.id, since).await?;
        rows.push((hook, stats));
    }
    Ok(page(
        &session,
        Section::Hooks,
        "Hooks",
        notice.notice.as_deref(),
        html! {
            div class="title-row" {
                h1 { "Hooks" }
                a class="button" href="/console/hooks/new" { "New hook" }
            }
            @if rows.is_empty() {
                p { "No hooks yet. " a href="/console/hooks/new" { "Create the first one" } "." }
            } @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "Hook" } th scope="col" { "Events" } th scope="col" { "Target" } th scope="col" { "State" } th scope="col" { "Success, 24 h" } } }
                        tbody {
                            @for (hook, stats) in &rows {
                                tr {
                                    td {
                                        a href={"/console/hooks/" (hook.id)} { (hook.id) }
                                        @if let Some(name) = hook.spec["name"].as_str().filter(|n| !n.is_empty()) {
                                            br; span class="muted" { (name) }
                                        }
                                    }
                                    td { (events_of(hook).join(", ")) }
                                    td { (target(hook)) }
                                    td { (state(hook)) }
                                    td { (success_rate(stats)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /console/hooks/{id}`.
pub(super) async fn detail(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> PageResult {
    let hook = console.host.hook(&id).await?;
    let now = now_ms();
    // 24 whole hours, the last one the current hour.
    let hour = DAY_MS / 24;
    let since = now - now % hour - 23 * hour;
    let series = console.host.hook_series(&id, since, hour).await?;
    let recent = console
        .host
        .deliveries(&DeliveryQuery {
            hook_id: Some(id.clone()),
            limit: 10,
            ..DeliveryQuery::default()
        })
        .await?;
    let events = events_of(&hook);
    let webhook = hook.spec.get("webhook").is_some();
    let csrf = csrf_field(&session);
    let action = |verb: &str| format!("/console/hooks/{id}/{verb}");
    Ok(page(
        &session,
        Section::Hooks,
        &id,
        notice.notice.as_deref(),
        html! {
            div class="title-row" {
                h1 { "Hook " code { (id) } }
                a class="button" href=(action("edit")) { "Edit" }
            }
            dl class="facts" {
                dt { "State" } dd { (state(&hook)) }
                dt { "Target" } dd { (target(&hook)) }
                @if webhook { dt { "Events" } dd { (events.join(", ")) } }
                dt { "Steps" } dd { (step_summary(&hook.spec)) }
                dt { "Changed" } dd { (layout::time_el(hook.updated_at)) }
            }
            section aria-labelledby="stats-title" {
                h2 id="stats-title" { "Last 24 hours" }
                (chart::attempts(&series))
                (chart::latency(&series))
            }
            section aria-labelledby="recent-title" {
                div class="title-row" {
                    h2 id="recent-title" { "Recent deliveries" }
                    a href={"/console/deliveries?hook=" (layout::query_escape(&id))} { "All deliveries of this hook" }
                }
                (delivery_rows(&recent, false))
            }
            @if webhook {
                section aria-labelledby="test-title" {
                    h2 id="test-title" { "Send a test" }
                    form method="post" action=(action("test")) class="stack" {
                        (csrf)
                        label for="test-event" { "Event" }
                        select id="test-event" name="event" {
                            @for event in &events { option { (event) } }
                        }
                        label for="test-payload" { "Payload (JSON; empty for the event's sample)" }
                        textarea id="test-payload" name="payload" rows="4" spellcheck="false" {}
                        button type="submit" { "Send test" }
                    }
                }
                section aria-labelledby="keys-title" {
                    h2 id="keys-title" { "Signing keys" }
                    form method="post" action=(action("rotate")) class="inline" data-confirm="Rotate the signing keys? The old ones keep signing for 24 hours." {
                        (csrf)
                        label for="scheme" { "Scheme" }
                        select id="scheme" name="scheme" {
                            option value="both" { "Both" }
                            option value="logto" { "Logto (logto-signature-sha-256)" }
                            option value="standard" { "Standard Webhooks" }
                        }
                        button type="submit" { "Rotate keys" }
                    }
                }
                (replay_form(&session, &id, now))
            }
            section aria-labelledby="manage-title" {
                h2 id="manage-title" { "Manage" }
                div class="actions" {
                    @if hook.enabled {
                        form method="post" action=(action("disable")) class="inline" {
                            (csrf)
                            label for="reason" { "Reason" }
                            input id="reason" name="reason" value="disabled in the console";
                            button type="submit" { "Disable" }
                        }
                    } @else {
                        form method="post" action=(action("enable")) class="inline" {
                            (csrf)
                            button type="submit" { "Enable" }
                        }
                    }
                    form method="post" action=(action("delete")) class="inline" data-confirm={"Delete hook " (id) " with its deliveries?"} {
                        (csrf)
                        button type="submit" class="danger" { "Delete hook" }
                    }
                }
            }
        },
    ))
}

fn step_summary(spec: &Value) -> String {
    let steps = spec["steps"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if steps.is_empty() {
        return "none".into();
    }
    steps
        .iter()
        .map(|s| match s["plugin"].as_str() {
            Some(name) => format!("plugin {name}"),
            None => "snippet".into(),
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

/// `POST /console/hooks/{id}/enable`.
pub(super) async fn enable(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    console.host.enable_hook(&id).await?;
    Ok(layout::to_page(
        &format!("/console/hooks/{id}"),
        "Hook enabled.",
    ))
}

/// `POST /console/hooks/{id}/disable`.
pub(super) async fn disable(
    State(console): State<Console>,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult<Response> {
    let fields = Fields::parse(&body);
    let reason = fields.text("reason").unwrap_or("disabled in the console");
    console.host.disable_hook(&id, reason).await?;
    Ok(layout::to_page(
        &format!("/console/hooks/{id}"),
        "Hook disabled.",
    ))
}

/// `POST /console/hooks/{id}/delete`.
pub(super) async fn delete(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    console.host.delete_hook(&id).await?;
    Ok(layout::to_page(
        "/console/hooks",
        &format!("Hook {id} deleted."),
    ))
}

/// `POST /console/hooks/{id}/test`: send a test event now and show what
/// the receiver answered.
pub(super) async fn test(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult<Response> {
    let fields = Fields::parse(&body);
    let events: Vec<String> = fields.text("event").map(String::from).into_iter().collect();
    let payload = match fields.text("payload") {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(value) => Some(value),
            Err(e) => {
                return Err(HostError::Invalid(format!("the test payload is not JSON: {e}")).into())
            }
        },
    };
    let sends = console.host.test_hook(&id, events, payload).await?;
    Ok(page(
        &session,
        Section::Hooks,
        "Test sent",
        None,
        html! {
            h1 { "Test of hook " code { (id) } }
            @for send in &sends {
                section class="card" aria-label={"Test of " (send.event)} {
                    h2 { (send.event) }
                    dl class="facts" {
                        dt { "Answer" }
                        dd class="test-status" {
                            @match send.status {
                                Some(status) => { span class={"badge " @if (200..300).contains(&status) { "succeeded" } @else { "failed" }} { (status) } }
                                None => { span class="badge failed" { "no answer" } }
                            }
                        }
                        dt { "Took" } dd { (send.duration_ms) " ms" }
                        @if let Some(kind) = &send.error_kind { dt { "Error" } dd { (kind) @if let Some(e) = &send.error { ": " (e) } } }
                        @if let Some(reason) = &send.cancelled { dt { "Cancelled" } dd { (reason) } }
                    }
                    @if let Some(body) = &send.body {
                        h3 { "Receiver's body" }
                        (layout::code_block(body))
                    }
                }
            }
            p { a href={"/console/hooks/" (id)} { "Back to the hook" } }
        },
    )
    .into_response())
}

/// `POST /console/hooks/{id}/rotate`: new keys, shown this once.
pub(super) async fn rotate(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult<Response> {
    let fields = Fields::parse(&body);
    let scheme = match fields.get("scheme").unwrap_or("both") {
        "logto" => KeyScheme::Logto,
        "standard" => KeyScheme::Standard,
        _ => KeyScheme::Both,
    };
    let hook = console.host.rotate_signing_key(&id, scheme, None).await?;
    let webhook = &hook.spec["webhook"];
    let logto = webhook["next_signing_key"]["key"]
        .as_str()
        .or(webhook["signing_key"].as_str());
    let standard = webhook["secrets"][0]["secret"].as_str();
    let shown = [
        (KeyScheme::Logto, "Logto signing key", "logto-key", logto),
        (
            KeyScheme::Standard,
            "Standard Webhooks secret",
            "standard-key",
            standard,
        ),
    ];
    Ok(page(
        &session,
        Section::Hooks,
        "Keys rotated",
        None,
        html! {
            h1 { "New keys for " code { (id) } }
            p class="notice" role="status" { "Copy the new keys now: they are shown only once. The old keys keep signing for 24 hours." }
            @for (kind, label, element, key) in shown {
                @if let Some(key) = key.filter(|_| scheme == kind || scheme == KeyScheme::Both) {
                    div class="secret" {
                        label for=(element) { (label) }
                        div class="copy-row" {
                            input id=(element) readonly value=(key) class="mono";
                            button type="button" data-copy=(element) { "Copy" }
                        }
                    }
                }
            }
            p { a href={"/console/hooks/" (id)} { "Back to the hook" } }
        },
    )
    .into_response())
}
