//! The page shell every console page shares (navigation, notices, the
//! sign-out form), and small renderers used across pages: times, statuses,
//! and host errors as pages.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};

use super::assets::{CSS_URL, JS_URL};
use super::session::{csrf_field, Session};
use crate::host::HostError;
use crate::store::{DeliveryStatus, Millis};

/// A day, in milliseconds: the period hook lists and charts show.
pub(super) const DAY_MS: Millis = 24 * 3600 * 1000;

/// The notice a page shows after an action sent it there (`?notice=`).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Notice {
    /// The text.
    pub notice: Option<String>,
}

/// The sections the navigation links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Hooks,
    Deliveries,
    Plugins,
    Playground,
    Sources,
    EventTypes,
}

const SECTIONS: [(Section, &str, &str); 6] = [
    (Section::Hooks, "Hooks", "/console/hooks"),
    (Section::Deliveries, "Deliveries", "/console/deliveries"),
    (Section::Plugins, "Plugins", "/console/plugins"),
    (
        Section::Playground,
        "Sync playground",
        "/console/playground",
    ),
    (Section::Sources, "Sources", "/console/sources"),
    (Section::EventTypes, "Event types", "/console/event-types"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · wasmhooks" }
            link rel="stylesheet" href=(CSS_URL.as_str());
            script src=(JS_URL.as_str()) defer {}
        }
    }
}

/// A page without navigation (sign-in, errors before a session).
pub(super) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { (body) }
        }
    }
}

/// A signed-in page: navigation, an optional notice, then `body`.
pub(super) fn page(
    session: &Session,
    section: Section,
    title: &str,
    notice: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console/hooks" { "wasmhooks" }
                    nav aria-label="Sections" {
                        ul {
                            @for (s, label, href) in SECTIONS {
                                li { a href=(href) aria-current=[(s == section).then_some("page")] { (label) } }
                            }
                        }
                    }
                    form method="post" action="/console/sign-out" class="sign-out" {
                        (csrf_field(session))
                        button type="submit" class="link" { "Sign out" }
                    }
                }
                main id="main" tabindex="-1" {
                    @if let Some(notice) = notice {
                        p class="notice" role="status" { (notice) }
                    }
                    (body)
                }
            }
        }
    }
}

/// A time as `2026-12-03 15:04:05 UTC`.
pub(super) fn time(ms: Millis) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(at).to_string();
    format!("{} UTC", text.trim_end_matches('Z').replace('T', " "))
}

/// A `<time>` element for `ms`.
pub(super) fn time_el(ms: Millis) -> Markup {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    html! { time datetime=(humantime::format_rfc3339_millis(at).to_string()) { (time(ms)) } }
}

/// A time for a `datetime-local` input (UTC, minutes).
pub(super) fn input_time(ms: Millis) -> String {
    time(ms)[..16].replace(' ', "T")
}

/// Parse a `datetime-local` value (taken as UTC) or RFC 3339 time.
pub(super) fn parse_time(text: &str) -> Result<Millis, String> {
    let text = text.trim();
    let full = if text.len() == 16 {
        format!("{text}:00Z")
    } else {
        text.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .map(|t| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as Millis)
        .map_err(|_| format!("`{text}` is not a date and time like 2026-12-03T15:04"))
}

/// A delivery status as a badge.
pub(super) fn status(status: DeliveryStatus) -> Markup {
    let name = status.as_str();
    html! { span class={"badge " (name)} { (name.replace('_', " ")) } }
}

/// Send the browser to console page `path`, showing `notice` there.
pub(super) fn to_page(path: &str, notice: &str) -> Response {
    Redirect::to(&format!("{path}?notice={}", query_escape(notice))).into_response()
}

/// Percent-encode `text` for a query string.
pub(super) fn query_escape(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A host error as a page, with the status the API would give it.
pub(super) struct PageError(pub HostError);

impl From<HostError> for PageError {
    fn from(e: HostError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            HostError::NotFound { .. } => StatusCode::NOT_FOUND,
            HostError::Conflict(_) => StatusCode::CONFLICT,
            HostError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            HostError::Store(_) | HostError::Start(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = bare(
            "Error",
            html! {
                main {
                    h1 { "Something went wrong" }
                    p role="alert" { (self.0.to_string()) }
                    p { a href="/console/hooks" { "Back to the console" } }
                }
            },
        );
        (status, body).into_response()
    }
}

/// What console handlers return.
pub(super) type PageResult<T = Markup> = Result<T, PageError>;

/// A `<pre>` block of `text`, pretty-printed when it is JSON.
pub(super) fn code_block(text: &str) -> Markup {
    let pretty = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    html! { pre class="code" { code { (pretty.as_deref().unwrap_or(text)) } } }
}

/// The note under form control `id` saying what is wrong with it, if
/// anything; the control points at it with [`error_ref`].
pub(super) fn error_note(id: &str, message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p id={(id) "-error"} class="field-error" role="alert" { (message) }
        }
    }
}

/// The `aria-describedby` of control `id` when it has an error.
pub(super) fn error_ref(id: &str, message: Option<&str>) -> Option<String> {
    message.map(|_| format!("{id}-error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_inputs() {
        let ms = 1_764_774_240_000; // 2025-12-03 15:04 UTC
        assert_eq!(time(ms), "2025-12-03 15:04:00 UTC");
        assert_eq!(input_time(ms), "2025-12-03T15:04");
        assert_eq!(parse_time(&input_time(ms)), Ok(ms));
        assert!(parse_time("yesterday").unwrap_err().contains("yesterday"));
    }
}
