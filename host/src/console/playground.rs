//! The sync playground: run a trigger's hooks on a payload, as the platform
//! would, and see the decision, the patch and what each hook did.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde_json::Value;

use super::form::Fields;
use super::layout::{self, page, PageResult, Section};
use super::session::{csrf_field, Session};
use super::Console;
use crate::sync::{Decision, Verdict, MAX_SYNC_DEADLINE_MS};

const SAMPLE: &str =
    "{\n  \"user\": {\n    \"primaryEmail\": \"ada@example.com\",\n    \"name\": \"Ada\"\n  }\n}";

/// What the form was filled with.
struct Input<'a> {
    trigger: &'a str,
    payload: &'a str,
    deadline_ms: &'a str,
}

async fn triggers(console: &Console) -> PageResult<Vec<String>> {
    let mut triggers: Vec<String> = console
        .host
        .hooks()
        .await?
        .into_iter()
        .filter_map(|h| h.spec["sync"]["trigger"].as_str().map(String::from))
        .collect();
    triggers.sort();
    triggers.dedup();
    Ok(triggers)
}

fn playground(
    session: &Session,
    triggers: &[String],
    input: &Input,
    error: Option<(&str, &str)>,
    result: Option<&Decision>,
) -> Markup {
    let error_at = |field: &str| error.filter(|(f, _)| *f == field).map(|(_, m)| m);
    page(
        session,
        Section::Playground,
        "Sync playground",
        None,
        html! {
            h1 { "Sync playground" }
            form method="post" action="/console/playground" class="stack" {
                (csrf_field(session))
                label for="trigger" { "Trigger" }
                input id="trigger" name="trigger" list="triggers" required value=(input.trigger)
                    aria-invalid=[error_at("trigger").map(|_| "true")] aria-describedby=[layout::error_ref("trigger", error_at("trigger"))];
                datalist id="triggers" { @for t in triggers { option value=(t) {} } }
                (layout::error_note("trigger", error_at("trigger")))
                label for="payload" { "Payload (JSON object)" }
                textarea id="payload" name="payload" rows="10" class="mono" spellcheck="false"
                    aria-invalid=[error_at("payload").map(|_| "true")] aria-describedby=[layout::error_ref("payload", error_at("payload"))] { (input.payload) }
                (layout::error_note("payload", error_at("payload")))
                label for="deadline" { "Deadline (ms)" }
                input id="deadline" name="deadline_ms" type="number" min="1" max=(MAX_SYNC_DEADLINE_MS) value=(input.deadline_ms)
                    aria-invalid=[error_at("deadline").map(|_| "true")] aria-describedby=[layout::error_ref("deadline", error_at("deadline"))];
                (layout::error_note("deadline", error_at("deadline")))
                button type="submit" class="primary" { "Run" }
            }
            @if let Some(decision) = result { (outcome(decision)) }
        },
    )
}

fn outcome(decision: &Decision) -> Markup {
    let allowed = decision.decision == Verdict::Allow;
    html! {
        section class="card" aria-labelledby="decision-title" {
            h2 id="decision-title" {
                "Decision: "
                span class={"badge decision " @if allowed { "succeeded" } @else { "failed" }} { @if allowed { "allow" } @else { "deny" } }
            }
            @if !allowed {
                dl class="facts" {
                    @if let Some(code) = &decision.code { dt { "Code" } dd { code { (code) } } }
                    @if let Some(message) = &decision.message { dt { "Message" } dd { (message) } }
                    @if let Some(hook) = &decision.hook { dt { "Denied by" } dd { a href={"/console/hooks/" (hook)} { (hook) } } }
                }
            }
            @if let Some(patch) = &decision.patch {
                h3 { "Patch" }
                (layout::code_block(&serde_json::to_string(patch).unwrap_or_default()))
            }
            @if let Some(payload) = &decision.payload {
                h3 { "Payload after the hooks" }
                (layout::code_block(&payload.to_string()))
            }
            h3 { "Hooks" }
            div class="table-wrap" {
                table class="hook-runs" {
                    thead { tr { th scope="col" { "Hook" } th scope="col" { "Outcome" } th scope="col" { "Time" } th scope="col" { "Error" } } }
                    tbody {
                        @for run in &decision.hooks {
                            tr {
                                td { a href={"/console/hooks/" (run.hook)} { (run.hook) } }
                                td { (run.outcome) }
                                td { (format!("{:.2} ms", run.duration_us as f64 / 1000.0)) }
                                td { (run.error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/playground`.
pub(super) async fn form(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> PageResult {
    let triggers = triggers(&console).await?;
    let input = Input {
        trigger: triggers
            .first()
            .map(String::as_str)
            .unwrap_or("PreRegistration"),
        payload: SAMPLE,
        deadline_ms: "2000",
    };
    Ok(playground(&session, &triggers, &input, None, None))
}

/// `POST /console/playground`: run the trigger.
pub(super) async fn run(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult<Response> {
    let fields = Fields::parse(&body);
    let triggers = triggers(&console).await?;
    let input = Input {
        trigger: fields.text("trigger").unwrap_or_default(),
        payload: fields.get("payload").unwrap_or_default(),
        deadline_ms: fields.get("deadline_ms").unwrap_or_default(),
    };
    let refused = |field: &str, message: String| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            playground(&session, &triggers, &input, Some((field, &message)), None),
        )
            .into_response()
    };
    let payload = match serde_json::from_str::<Value>(input.payload) {
        Ok(payload @ Value::Object(_)) => payload,
        Ok(_) => {
            return Ok(refused(
                "payload",
                "the payload must be a JSON object".into(),
            ))
        }
        Err(e) => return Ok(refused("payload", format!("the payload is not JSON: {e}"))),
    };
    let deadline = match input.deadline_ms.trim() {
        "" => None,
        text => match text.parse::<u64>() {
            Ok(ms @ 1..=MAX_SYNC_DEADLINE_MS) => Some(Duration::from_millis(ms)),
            _ => {
                return Ok(refused(
                    "deadline",
                    format!("the deadline must be 1 to {MAX_SYNC_DEADLINE_MS} ms, not `{text}`"),
                ))
            }
        },
    };
    match console
        .host
        .call_sync(input.trigger, payload, deadline)
        .await
    {
        Ok(decision) => {
            Ok(playground(&session, &triggers, &input, None, Some(&decision)).into_response())
        }
        Err(e) => Ok(refused("trigger", e.to_string())),
    }
}
