//! Delivery pages: every hook's deliveries (or one hook's), filtered by
//! status and time, newest first and paged; a delivery's attempts with
//! what was sent and answered; retry now; replaying a time range, with the
//! job's progress.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

use super::form::Fields;
use super::layout::{self, page, Notice, PageResult, Section, DAY_MS};
use super::session::{csrf_field, Session};
use super::Console;
use crate::delivery::replay::ReplayStatus;
use crate::host::HostError;
use crate::store::{Attempt, Delivery, DeliveryQuery, DeliveryStatus, Millis};

/// Deliveries per page.
const PAGE: usize = 50;

const STATUSES: [DeliveryStatus; 6] = [
    DeliveryStatus::Pending,
    DeliveryStatus::InFlight,
    DeliveryStatus::Succeeded,
    DeliveryStatus::Failed,
    DeliveryStatus::Cancelled,
    DeliveryStatus::Dead,
];

/// The list's filters, from its query string.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    hook: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<String>,
    notice: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A table of deliveries, linking each to its page.
pub(super) fn delivery_rows(deliveries: &[Delivery], with_hook: bool) -> Markup {
    html! {
        @if deliveries.is_empty() {
            p class="muted" { "No deliveries." }
        } @else {
            div class="table-wrap" {
                table class="deliveries" {
                    thead { tr {
                        th scope="col" { "Delivery" }
                        @if with_hook { th scope="col" { "Hook" } }
                        th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Created" } th scope="col" { "Last error" }
                    } }
                    tbody {
                        @for d in deliveries {
                            tr {
                                td { a href={"/console/deliveries/" (d.id)} { code { (d.id) } } }
                                @if with_hook { td { a href={"/console/hooks/" (d.hook_id)} { (d.hook_id) } } }
                                td { (layout::status(d.status)) }
                                td { (d.attempts) }
                                td { (layout::time_el(d.created_at)) }
                                td class="error-cell" { (d.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/deliveries`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(filter): Query<Filter>,
) -> PageResult {
    let status = match non_empty(&filter.status) {
        None => None,
        Some(name) => Some(
            STATUSES
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| HostError::Invalid(format!("`{name}` is not a delivery status")))?,
        ),
    };
    let time = |text: Option<&str>| text.map(layout::parse_time).transpose();
    let query = DeliveryQuery {
        hook_id: non_empty(&filter.hook).map(String::from),
        status,
        since: time(non_empty(&filter.since)).map_err(HostError::Invalid)?,
        until: time(non_empty(&filter.until)).map_err(HostError::Invalid)?,
        limit: PAGE,
        after: non_empty(&filter.after).map(String::from),
    };
    let deliveries = console.host.deliveries(&query).await?;
    let hooks = console.host.hooks().await?;
    let next = (deliveries.len() == PAGE)
        .then(|| deliveries.last())
        .flatten()
        .map(|last| {
            let mut pairs = form_urlencoded::Serializer::new(String::new());
            for (name, value) in [
                ("hook", &filter.hook),
                ("status", &filter.status),
                ("since", &filter.since),
                ("until", &filter.until),
            ] {
                if let Some(value) = non_empty(value) {
                    pairs.append_pair(name, value);
                }
            }
            pairs.append_pair("after", &last.id);
            format!("/console/deliveries?{}", pairs.finish())
        });
    let selected = |value: &Option<String>, option: &str| non_empty(value) == Some(option);
    Ok(page(
        &session,
        Section::Deliveries,
        "Deliveries",
        filter.notice.as_deref(),
        html! {
            h1 { "Deliveries" }
            form method="get" action="/console/deliveries" class="filters" aria-label="Filter deliveries" {
                div {
                    label for="hook" { "Hook" }
                    select id="hook" name="hook" {
                        option value="" { "Every hook" }
                        @for hook in &hooks { option value=(hook.id) selected[selected(&filter.hook, &hook.id)] { (hook.id) } }
                    }
                }
                div {
                    label for="status" { "Status" }
                    select id="status" name="status" {
                        option value="" { "Any" }
                        @for s in STATUSES { option value=(s.as_str()) selected[selected(&filter.status, s.as_str())] { (s.as_str().replace('_', " ")) } }
                    }
                }
                div {
                    label for="since" { "Created from (UTC)" }
                    input id="since" name="since" type="datetime-local" value=(non_empty(&filter.since).unwrap_or_default());
                }
                div {
                    label for="until" { "Created before (UTC)" }
                    input id="until" name="until" type="datetime-local" value=(non_empty(&filter.until).unwrap_or_default());
                }
                button type="submit" { "Filter" }
            }
            (delivery_rows(&deliveries, true))
            nav class="pager" aria-label="Pages" {
                @if filter.after.is_some() { a href="/console/deliveries" { "Newest" } }
                @if let Some(next) = next { a href=(next) rel="next" { "Older deliveries" } }
            }
        },
    ))
}

fn headers_table(headers: &[(String, String)]) -> Markup {
    html! {
        table class="headers" {
            tbody {
                @for (name, value) in headers {
                    tr { th scope="row" { (name) } td { code { (value) } } }
                }
            }
        }
    }
}

fn attempt_card(attempt: &Attempt) -> Markup {
    let a = &attempt.detail;
    html! {
        details class="attempt" open[attempt.number == 1] {
            summary {
                "Attempt " (attempt.number) " · "
                @match a.response_status {
                    Some(status) => span class={"badge " @if a.success { "succeeded" } @else { "failed" }} { (status) },
                    None => span class="badge failed" { (a.error_kind.as_deref().unwrap_or("no answer")) },
                }
                " · " (a.duration_ms) " ms · " (layout::time(a.started_at))
            }
            @if let Some(kind) = &a.error_kind {
                p class="field-error" { (kind) @if let Some(m) = &a.error_message { ": " (m) } }
            }
            div class="exchange" {
                section {
                    h3 { "Request" }
                    (headers_table(&a.request_headers))
                    (layout::code_block(&a.request_body))
                }
                section {
                    h3 { "Response" }
                    (headers_table(&a.response_headers))
                    @if let Some(body) = &a.response_body { (layout::code_block(body)) }
                }
            }
        }
    }
}

/// `GET /console/deliveries/{id}`.
pub(super) async fn detail(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> PageResult {
    let (delivery, attempts) = console.host.delivery(&id).await?;
    Ok(page(
        &session,
        Section::Deliveries,
        &id,
        notice.notice.as_deref(),
        html! {
            div class="title-row" {
                h1 { "Delivery " code { (id) } }
                @if delivery.status != DeliveryStatus::InFlight {
                    form method="post" action={"/console/deliveries/" (id) "/retry"} class="inline" {
                        (csrf_field(&session))
                        button type="submit" { "Retry now" }
                    }
                }
            }
            dl class="facts" {
                dt { "Status" } dd { (layout::status(delivery.status)) }
                dt { "Hook" } dd { a href={"/console/hooks/" (delivery.hook_id)} { (delivery.hook_id) } }
                dt { "Event" } dd { code { (delivery.event_id) } }
                dt { "Created" } dd { (layout::time_el(delivery.created_at)) }
                @if let Some(due) = delivery.due_at { dt { "Due" } dd { (layout::time_el(due)) } }
                @if let Some(error) = &delivery.last_error { dt { "Last error" } dd { (error) } }
            }
            h2 { "Attempts" }
            @if attempts.is_empty() { p class="muted" { "No attempt yet." } }
            @for attempt in attempts.iter().rev() { (attempt_card(attempt)) }
        },
    ))
}

/// `POST /console/deliveries/{id}/retry`.
pub(super) async fn retry(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    console.host.retry_delivery(&id).await?;
    Ok(layout::to_page(
        &format!("/console/deliveries/{id}"),
        "Queued for an attempt now.",
    ))
}

/// The form that replays a hook's events of a time range.
pub(super) fn replay_form(session: &Session, hook: &str, now: Millis) -> Markup {
    html! {
        section aria-labelledby="replay-title" {
            h2 id="replay-title" { "Replay events" }
            form method="post" action={"/console/hooks/" (hook) "/replay"} class="filters" {
                (csrf_field(session))
                div {
                    label for="replay-since" { "From (UTC)" }
                    input id="replay-since" name="since" type="datetime-local" required value=(layout::input_time(now - DAY_MS));
                }
                div {
                    label for="replay-until" { "Until (UTC)" }
                    input id="replay-until" name="until" type="datetime-local" required value=(layout::input_time(now + 60_000));
                }
                button type="submit" { "Replay" }
            }
        }
    }
}

/// `POST /console/hooks/{id}/replay`: start the job and watch it.
pub(super) async fn replay(
    State(console): State<Console>,
    Path(hook): Path<String>,
    body: Bytes,
) -> PageResult<Response> {
    let fields = Fields::parse(&body);
    let time = |name: &str| {
        layout::parse_time(fields.get(name).unwrap_or_default()).map_err(HostError::Invalid)
    };
    let job = console
        .host
        .replay(&hook, time("since")?, time("until")?)
        .await?;
    Ok(Redirect::to(&format!("/console/replays/{}", job.id)).into_response())
}

/// `GET /console/replays/{id}`: a replay's progress; the page reloads
/// itself while the job runs.
pub(super) async fn replay_progress(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let job = console.host.replay_job(&id)?;
    let running = job.status == ReplayStatus::Running;
    let body = page(
        &session,
        Section::Deliveries,
        "Replay",
        None,
        html! {
            @if running { meta http-equiv="refresh" content="1"; }
            h1 { "Replay " code { (job.id) } }
            dl class="facts" {
                dt { "Hook" } dd { a href={"/console/hooks/" (job.hook_id)} { (job.hook_id) } }
                dt { "Range" } dd { (layout::time(job.since)) " – " (layout::time(job.until)) }
                dt { "Status" } dd class="replay-status" { (format!("{:?}", job.status).to_lowercase()) }
                dt { "Events looked at" } dd { (job.scanned) }
                dt { "Deliveries made" } dd class="replay-enqueued" { (job.enqueued) }
                @if let Some(error) = &job.error { dt { "Error" } dd { (error) } }
            }
            @if running { progress aria-label="Replaying" {} }
            p { a href={"/console/deliveries?hook=" (layout::query_escape(&job.hook_id))} { "The hook's deliveries" } }
        },
    );
    Ok(body.into_response())
}
