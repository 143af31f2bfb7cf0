//! The hook create and edit form: every setting of a definition, steps
//! as an ordered list, and the host's validation errors shown at the field
//! they concern (a snippet's syntax error at its line and column).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::form::Fields;
use super::layout::{self, page, PageResult, Section};
use super::session::{csrf_field, Session};
use super::Console;
use crate::host::HostError;

/// Where a validation error is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Id,
    Events,
    Url,
    Headers,
    Timeout,
    Retry,
    Concurrency,
    RateLimit,
    Trigger,
    Step(usize),
    Form,
}

/// The field a host validation message concerns, from how it begins.
fn field_of(message: &str) -> Field {
    let message = message.strip_prefix("invalid hook: ").unwrap_or(message);
    if let Some(rest) = message.strip_prefix("steps[") {
        if let Some(index) = rest.split(']').next().and_then(|i| i.parse().ok()) {
            return Field::Step(index);
        }
    }
    let has = |word: &str| message.contains(word);
    if has("webhook url") {
        Field::Url
    } else if has("header") {
        Field::Headers
    } else if has("retry") || has("schedule") || has("jitter") {
        Field::Retry
    } else if has("concurrency") {
        Field::Concurrency
    } else if has("rate_limit") {
        Field::RateLimit
    } else if has("sync trigger") {
        Field::Trigger
    } else if has("event") {
        Field::Events
    } else if has("already exists") {
        Field::Id
    } else {
        Field::Form
    }
}

/// The line and column a snippet's syntax error names.
fn line_and_column(message: &str) -> Option<(usize, usize)> {
    let at = message.find("line ")?;
    let rest = &message[at + 5..];
    let (line, rest) = rest.split_once(", col ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// A form's errors, each at its field.
#[derive(Debug, Default)]
struct Errors(Vec<(Field, String)>);

impl Errors {
    fn at(&self, field: &Field) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    fn push(&mut self, field: Field, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }
}

/// What the form needs besides the hook: the choices it offers.
struct Choices {
    events: Vec<String>,
    plugins: Vec<String>,
}

async fn choices(console: &Console) -> PageResult<Choices> {
    Ok(Choices {
        events: console.host.event_types(),
        plugins: console
            .host
            .plugins()
            .await?
            .into_iter()
            .map(|p| p.record.name)
            .collect(),
    })
}

fn lines_of(map: &Value, separator: &str) -> String {
    map.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}{separator}{}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn list_of(value: &Value) -> String {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One step's fields; `index` is `None` in the template new steps copy.
fn step_fields(index: Option<usize>, step: &Value, choices: &Choices, errors: &Errors) -> Markup {
    let n = index.map_or("new".to_string(), |i| i.to_string());
    let id = |name: &str| format!("step-{n}-{name}");
    let is_plugin = step["plugin"].is_string();
    let error = index.and_then(|i| errors.at(&Field::Step(i)));
    let position = error.and_then(line_and_column);
    let snippet = step["snippet"].as_str().unwrap_or_default();
    html! {
        fieldset class="step" aria-invalid=[error.map(|_| "true")] {
            legend { "Step " span class="step-number" { (index.map_or(0, |i| i + 1)) } }
            div class="step-tools" {
                button type="button" data-step="up" { "Move up" }
                button type="button" data-step="down" { "Move down" }
                button type="button" data-step="remove" class="danger" { "Remove" }
            }
            label for=(id("kind")) { "Kind" }
            select id=(id("kind")) name="step_kind" data-step-kind {
                option value="snippet" selected[!is_plugin] { "JavaScript snippet" }
                option value="plugin" selected[is_plugin] { "Plugin" }
            }
            div data-kind="plugin" hidden[!is_plugin] {
                label for=(id("plugin")) { "Plugin" }
                select id=(id("plugin")) name="step_plugin" {
                    @for name in &choices.plugins {
                        option selected[step["plugin"].as_str() == Some(name.as_str())] { (name) }
                    }
                }
            }
            div data-kind="snippet" hidden[is_plugin] {
                label for=(id("snippet")) { "Snippet" }
                textarea id=(id("snippet")) name="step_snippet" rows="8" spellcheck="false" class="mono"
                    data-error-line=[position.map(|p| p.0)] data-error-column=[position.map(|p| p.1)]
                    aria-describedby=[layout::error_ref(&id("step"), error)]
                    placeholder="export default function (event, ctx) {\n  return event;\n}" { (snippet) }
                @if let Some((line, column)) = position {
                    (snippet_excerpt(snippet, line, column))
                }
            }
            (layout::error_note(&id("step"), error))
            details {
                summary { "Config, secrets and outbound HTTP" }
                label for=(id("config")) { "Config (one key=value per line)" }
                textarea id=(id("config")) name="step_config" rows="2" class="mono" { (lines_of(&step["config"], "=")) }
                label for=(id("secrets")) { "Secrets (one key=value per line; shown masked)" }
                textarea id=(id("secrets")) name="step_secrets" rows="2" class="mono" { (lines_of(&step["secrets"], "=")) }
                label for=(id("hosts")) { "Hosts it may call (comma-separated, e.g. api.example.com, *.example.org)" }
                input id=(id("hosts")) name="step_hosts" value=(list_of(&step["http"]["hosts"]));
                label for=(id("networks")) { "Private networks it may reach (comma-separated CIDRs)" }
                input id=(id("networks")) name="step_networks" value=(list_of(&step["http"]["private_networks"]));
            }
        }
    }
}

/// The lines around a snippet's syntax error, the line marked and a caret
/// under the column.
fn snippet_excerpt(source: &str, line: usize, column: usize) -> Markup {
    let lines: Vec<&str> = source.lines().collect();
    let first = line.saturating_sub(3);
    let last = (line + 1).min(lines.len());
    html! {
        pre class="excerpt" aria-label={"Line " (line) ", column " (column)} {
            @for (i, text) in lines.iter().enumerate().take(last).skip(first) {
                @if i + 1 == line {
                    mark { (format!("{:>4} | {text}", i + 1)) }
                    "\n" (format!("     | {}^", " ".repeat(column.saturating_sub(1)))) "\n"
                } @else {
                    (format!("{:>4} | {text}", i + 1)) "\n"
                }
            }
        }
    }
}

/// The create or edit form for `spec`, with `errors` at their fields.
fn hook_form(
    session: &Session,
    id: Option<&str>,
    spec: &Value,
    choices: &Choices,
    errors: &Errors,
) -> Markup {
    let action = id.map_or("/console/hooks/new".to_string(), |id| {
        format!("/console/hooks/{id}/edit")
    });
    let is_sync = spec.get("sync").is_some_and(|s| !s.is_null());
    let webhook = &spec["webhook"];
    let retry = &webhook["retry"];
    let sync = &spec["sync"];
    let chosen: Vec<&str> = spec["events"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let steps = spec["steps"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let input = |name: &str, label: &str, value: String, field: Field| {
        html! {
            label for=(name) { (label) }
            input id=(name) name=(name) value=(value) aria-invalid=[errors.at(&field).map(|_| "true")]
                aria-describedby=[layout::error_ref(name, errors.at(&field))];
            (layout::error_note(name, errors.at(&field)))
        }
    };
    html! {
        form method="post" action=(action) class="hook-form" novalidate {
            (csrf_field(session))
            @if !errors.0.is_empty() {
                div class="error-summary" role="alert" tabindex="-1" {
                    h2 { "The hook was not saved" }
                    ul { @for (_, message) in &errors.0 { li { (message) } } }
                }
            }
            @if id.is_none() {
                (input("id", "Id (letters, digits, - and _; empty for a generated one)", spec["id"].as_str().unwrap_or_default().to_string(), Field::Id))
            }
            (input("name", "Name", spec["name"].as_str().unwrap_or_default().to_string(), Field::Form))
            fieldset {
                legend { "Kind" }
                label class="choice" { input type="radio" name="kind" value="webhook" checked[!is_sync] data-hook-kind; " Webhook: events delivered to an endpoint" }
                label class="choice" { input type="radio" name="kind" value="sync" checked[is_sync] data-hook-kind; " Synchronous: answers a trigger while the user waits" }
            }
            fieldset data-hook="webhook" hidden[is_sync] {
                legend { "Events" }
                label for="event-search" { "Search events" }
                input id="event-search" type="search" data-filter="event-list" autocomplete="off";
                div id="event-list" class="checks" aria-invalid=[errors.at(&Field::Events).map(|_| "true")] aria-describedby=[layout::error_ref("events", errors.at(&Field::Events))] {
                    @for event in &choices.events {
                        label class="choice" data-filter-item=(event) {
                            input type="checkbox" name="events" value=(event) checked[chosen.contains(&event.as_str())];
                            " " (event)
                        }
                    }
                }
                (layout::error_note("events", errors.at(&Field::Events)))
            }
            fieldset data-hook="webhook" hidden[is_sync] {
                legend { "Webhook" }
                (input("url", "Endpoint URL", text_of(&webhook["url"]), Field::Url))
                label for="headers" { "Extra headers (one Name: value per line)" }
                textarea id="headers" name="headers" rows="2" class="mono" aria-describedby=[layout::error_ref("headers", errors.at(&Field::Headers))] { (lines_of(&webhook["headers"], ": ")) }
                (layout::error_note("headers", errors.at(&Field::Headers)))
                div class="grid" {
                    div { (input("timeout", "Timeout (e.g. 10s)", text_of(&webhook["timeout"]), Field::Timeout)) }
                    div { (input("concurrency", "Concurrency", text_of(&webhook["concurrency"]), Field::Concurrency)) }
                    div { (input("rate_limit", "Rate limit (requests per second; empty for none)", text_of(&webhook["rate_limit"]), Field::RateLimit)) }
                }
                label class="choice" { input type="checkbox" name="ordered" value="on" checked[webhook["ordered"] == true]; " Deliver in order" }
            }
            fieldset data-hook="webhook" hidden[is_sync] {
                legend { "Retry policy" }
                (input("retry_schedule", "Delays between attempts (comma-separated, e.g. 5s, 5m, 30m)", list_of(&retry["schedule"]), Field::Retry))
                div class="grid" {
                    div { label for="retry_jitter" { "Jitter (fraction, e.g. 0.2)" } input id="retry_jitter" name="retry_jitter" value=(text_of(&retry["jitter"])); }
                    div { label for="retry_max_retry_after" { "Longest Retry-After honoured" } input id="retry_max_retry_after" name="retry_max_retry_after" value=(text_of(&retry["max_retry_after"])); }
                    div { label for="retry_disable_after" { "Disable after failing for" } input id="retry_disable_after" name="retry_disable_after" value=(text_of(&retry["disable_after"])); }
                }
            }
            fieldset data-hook="sync" hidden[!is_sync] {
                legend { "Trigger" }
                (input("trigger", "Trigger (e.g. PreRegistration)", text_of(&sync["trigger"]), Field::Trigger))
                div class="grid" {
                    div { label for="order" { "Order among the trigger's hooks" } input id="order" name="order" type="number" value=(text_of(&sync["order"])); }
                    div {
                        label for="on_error" { "On error" }
                        select id="on_error" name="on_error" {
                            option value="deny" selected[sync["on_error"] != "allow"] { "Deny (fail closed)" }
                            option value="allow" selected[sync["on_error"] == "allow"] { "Allow (fail open)" }
                        }
                    }
                }
            }
            fieldset {
                legend { "Steps, run in order" }
                div id="steps" {
                    @for (i, step) in steps.iter().enumerate() { (step_fields(Some(i), step, choices, errors)) }
                }
                template id="step-template" { (step_fields(None, &json!({}), choices, errors)) }
                button type="button" data-step="add" { "Add step" }
                label for="on_step_error" { "When a step fails" }
                select id="on_step_error" name="on_step_error" {
                    option value="fail" selected[spec["on_step_error"] != "skip"] { "Fail the attempt (and retry it)" }
                    option value="skip" selected[spec["on_step_error"] == "skip"] { "Skip the step" }
                }
            }
            (layout::error_note("form", errors.at(&Field::Form)))
            button type="submit" class="primary" { "Save hook" }
        }
    }
}

fn form_page(
    session: &Session,
    id: Option<&str>,
    spec: &Value,
    choices: &Choices,
    errors: &Errors,
) -> Markup {
    let title = id.map_or("New hook".to_string(), |id| format!("Edit hook {id}"));
    page(
        session,
        Section::Hooks,
        &title,
        None,
        html! {
            h1 { (title) }
            (hook_form(session, id, spec, choices, errors))
        },
    )
}

/// `GET /console/hooks/new`.
pub(super) async fn new(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> PageResult {
    let spec = json!({"webhook": {"url": "", "timeout": "10s", "concurrency": 4}});
    Ok(form_page(
        &session,
        None,
        &spec,
        &choices(&console).await?,
        &Errors::default(),
    ))
}

/// `GET /console/hooks/{id}/edit`.
pub(super) async fn edit(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> PageResult {
    let hook = console.host.hook(&id).await?;
    Ok(form_page(
        &session,
        Some(&id),
        &hook.spec,
        &choices(&console).await?,
        &Errors::default(),
    ))
}

/// `POST /console/hooks/new`.
pub(super) async fn create(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult<Response> {
    submit(&console, &session, None, body).await
}

/// `POST /console/hooks/{id}/edit`.
pub(super) async fn save(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult<Response> {
    submit(&console, &session, Some(id), body).await
}

async fn submit(
    console: &Console,
    session: &Session,
    id: Option<String>,
    body: Bytes,
) -> PageResult<Response> {
    let fields = Fields::parse(&body);
    let base = match &id {
        Some(id) => console.host.hook(id).await?.spec,
        None => json!({}),
    };
    let (spec, mut errors) = spec_from(&fields, base);
    if errors.0.is_empty() {
        let saved = match &id {
            Some(id) => console.host.put_hook(id, spec.clone()).await,
            None => {
                let new_id = fields.text("id").map(String::from);
                console.host.create_hook(new_id, spec.clone()).await
            }
        };
        match saved {
            Ok(hook) => {
                return Ok(layout::to_page(
                    &format!("/console/hooks/{}", hook.id),
                    "Hook saved.",
                ))
            }
            Err(
                e @ (HostError::InvalidHook(_)
                | HostError::Invalid(_)
                | HostError::Conflict(_)
                | HostError::UnknownEvent(_)),
            ) => {
                let message = e.to_string();
                errors.push(field_of(&message), message);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut shown = spec;
    if id.is_none() {
        shown["id"] = json!(fields.get("id").unwrap_or_default());
    }
    let body = form_page(
        session,
        id.as_deref(),
        &shown,
        &choices(console).await?,
        &errors,
    );
    Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
}

fn key_values(text: &str, separator: char) -> Map<String, Value> {
    text.lines()
        .filter_map(|line| line.split_once(separator))
        .map(|(k, v)| (k.trim().to_string(), Value::String(v.trim().to_string())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn comma_list(text: &str) -> Value {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.into()))
        .collect()
}

/// The definition a submitted form describes, on top of `base` (the stored
/// definition, so what the form does not show is kept), and the errors
/// found in the form itself.
fn spec_from(fields: &Fields, base: Value) -> (Value, Errors) {
    let mut errors = Errors::default();
    let mut spec = match base {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    spec.insert(
        "name".into(),
        json!(fields.text("name").unwrap_or_default()),
    );
    if fields.get("kind") == Some("sync") {
        spec.remove("webhook");
        spec.remove("events");
        let order = match fields.text("order").map(str::parse::<i32>) {
            None => 0,
            Some(Ok(order)) => order,
            Some(Err(_)) => {
                errors.push(Field::Trigger, "the order must be a whole number");
                0
            }
        };
        spec.insert(
            "sync".into(),
            json!({
                "trigger": fields.text("trigger").unwrap_or_default(),
                "order": order,
                "on_error": fields.get("on_error").unwrap_or("deny"),
            }),
        );
    } else {
        spec.remove("sync");
        let events: Vec<&str> = fields.all("events").collect();
        spec.insert("events".into(), json!(events));
        let mut webhook = match spec.remove("webhook") {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        webhook.insert("url".into(), json!(fields.text("url").unwrap_or_default()));
        webhook.insert(
            "headers".into(),
            Value::Object(key_values(fields.get("headers").unwrap_or_default(), ':')),
        );
        let mut number = |name: &str, field: Field, what: &str| -> Option<Value> {
            let text = fields.text(name)?;
            match text.parse::<u32>() {
                Ok(n) => Some(json!(n)),
                Err(_) => {
                    errors.push(
                        field,
                        format!("{what} must be a whole number, not `{text}`"),
                    );
                    None
                }
            }
        };
        let concurrency = number("concurrency", Field::Concurrency, "webhook concurrency");
        let rate_limit = number("rate_limit", Field::RateLimit, "webhook rate_limit");
        webhook.insert("concurrency".into(), concurrency.unwrap_or(json!(4)));
        webhook.insert("rate_limit".into(), rate_limit.unwrap_or(Value::Null));
        webhook.insert(
            "timeout".into(),
            json!(fields.text("timeout").unwrap_or("10s")),
        );
        webhook.insert("ordered".into(), json!(fields.get("ordered") == Some("on")));
        let mut retry = match webhook.remove("retry") {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        if let Some(schedule) = fields.get("retry_schedule") {
            retry.insert("schedule".into(), comma_list(schedule));
        }
        if let Some(jitter) = fields.text("retry_jitter") {
            match jitter.parse::<f64>() {
                Ok(j) => {
                    retry.insert("jitter".into(), json!(j));
                }
                Err(_) => errors.push(
                    Field::Retry,
                    format!("retry jitter must be a number, not `{jitter}`"),
                ),
            }
        }
        for key in ["max_retry_after", "disable_after"] {
            if let Some(value) = fields.text(&format!("retry_{key}")) {
                retry.insert(key.into(), json!(value));
            }
        }
        webhook.insert("retry".into(), Value::Object(retry));
        spec.insert("webhook".into(), Value::Object(webhook));
    }
    let kinds = fields.all("step_kind");
    let mut plugins = fields.all("step_plugin");
    let mut snippets = fields.all("step_snippet");
    let mut configs = fields.all("step_config");
    let mut secrets = fields.all("step_secrets");
    let mut hosts = fields.all("step_hosts");
    let mut networks = fields.all("step_networks");
    let steps: Vec<Value> = kinds
        .map(|kind| {
            let (plugin, snippet) = (plugins.next(), snippets.next());
            let mut step = Map::new();
            if kind == "plugin" {
                step.insert("plugin".into(), json!(plugin.unwrap_or_default()));
            } else {
                step.insert("snippet".into(), json!(snippet.unwrap_or_default()));
            }
            step.insert(
                "config".into(),
                Value::Object(key_values(configs.next().unwrap_or_default(), '=')),
            );
            step.insert(
                "secrets".into(),
                Value::Object(key_values(secrets.next().unwrap_or_default(), '=')),
            );
            step.insert(
                "http".into(),
                json!({
                    "hosts": comma_list(hosts.next().unwrap_or_default()),
                    "private_networks": comma_list(networks.next().unwrap_or_default()),
                }),
            );
            Value::Object(step)
        })
        .collect();
    spec.insert("steps".into(), Value::Array(steps));
    spec.insert(
        "on_step_error".into(),
        json!(fields.get("on_step_error").unwrap_or("fail")),
    );
    (Value::Object(spec), errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_find_their_fields() {
        assert_eq!(
            field_of("invalid hook: steps[2]: SyntaxError"),
            Field::Step(2)
        );
        assert_eq!(
            field_of("invalid hook: webhook url `x` must be an absolute http(s) URL"),
            Field::Url
        );
        assert_eq!(
            field_of("invalid hook: `events` must list at least one event"),
            Field::Events
        );
        assert_eq!(field_of("hook `a` already exists"), Field::Id);
        assert_eq!(
            line_and_column("SyntaxError: unexpected token at line 2, col 24"),
            Some((2, 24))
        );
        assert_eq!(line_and_column("no position"), None);
    }

    #[test]
    fn a_form_becomes_a_definition_over_the_stored_one() {
        let body = Bytes::from(
            "name=n&kind=webhook&events=PostSignIn&events=PostRegister&url=https%3A%2F%2Fe.example%2Fh\
             &headers=X-A%3A+1&timeout=5s&concurrency=2&rate_limit=&retry_schedule=1s%2C+2s\
             &step_kind=plugin&step_plugin=enrich&step_snippet=&step_config=a%3D1&step_secrets=&step_hosts=&step_networks=\
             &step_kind=snippet&step_plugin=enrich&step_snippet=export+default+e%3D%3Ee&step_config=&step_secrets=&step_hosts=api.example.com&step_networks=",
        );
        let base = json!({"webhook": {"signing_key": "kept", "retry": {"jitter": 0.5}}});
        let (spec, errors) = spec_from(&Fields::parse(&body), base);
        assert!(errors.0.is_empty(), "{errors:?}");
        assert_eq!(spec["events"], json!(["PostSignIn", "PostRegister"]));
        assert_eq!(spec["webhook"]["signing_key"], "kept");
        assert_eq!(
            spec["webhook"]["retry"],
            json!({"jitter": 0.5, "schedule": ["1s", "2s"]})
        );
        assert_eq!(spec["webhook"]["headers"], json!({"X-A": "1"}));
        assert_eq!(spec["webhook"]["rate_limit"], Value::Null);
        assert_eq!(spec["steps"][0]["plugin"], "enrich");
        assert_eq!(spec["steps"][0]["config"], json!({"a": "1"}));
        assert_eq!(spec["steps"][1]["snippet"], "export default e=>e");
        assert_eq!(
            spec["steps"][1]["http"]["hosts"],
            json!(["api.example.com"])
        );
    }

    #[test]
    fn a_sync_form_drops_the_webhook() {
        let body = Bytes::from(
            "kind=sync&trigger=PreRegistration&order=2&on_error=allow&events=PostSignIn",
        );
        let base = json!({"events": ["PostSignIn"], "webhook": {"url": "https://e.example"}});
        let (spec, errors) = spec_from(&Fields::parse(&body), base);
        assert!(errors.0.is_empty(), "{errors:?}");
        assert_eq!(
            spec["sync"],
            json!({"trigger": "PreRegistration", "order": 2, "on_error": "allow"})
        );
        assert!(spec.get("webhook").is_none() && spec.get("events").is_none());
    }

    #[test]
    fn numbers_that_are_not_are_errors_at_their_field() {
        let body = Bytes::from("kind=webhook&url=https%3A%2F%2Fe.example&concurrency=many");
        let (_, errors) = spec_from(&Fields::parse(&body), json!({}));
        assert!(errors.at(&Field::Concurrency).unwrap().contains("`many`"));
    }
}
