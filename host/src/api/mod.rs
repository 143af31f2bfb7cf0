//! The HTTP API: axum routes over the [`Host`] embedding API. JSON in and
//! out, bearer-token auth, request bodies capped, unknown fields refused,
//! errors as `{"error": {"code", "message", "details"}}`. The OpenAPI
//! document is generated from these handlers (`GET /openapi.json`).

mod auth;
mod error;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use self::auth::{Role, Tokens};
pub use self::error::{ApiError, ErrorBody, ErrorDetail};
use crate::delivery::dispatcher::TestSend;
use crate::delivery::replay::Replay;
use crate::host::{EmitEvent, HookView, Host, KeyScheme, PluginView};
use crate::pipeline::PluginState;
use crate::source::{SourceSpec, SourceView};
use crate::store::{
    now_ms, Attempt, Delivery, DeliveryQuery, DeliveryStatus, HookStats, Ingested, Millis,
};
use crate::sync::Decision;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    host: Host,
    tokens: Tokens,
}

/// Request size caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Largest JSON body, in bytes.
    pub json: usize,
    /// Largest plugin upload, in bytes.
    pub plugin: usize,
}

/// The API's routes over `host`, authorising with `tokens`.
pub fn router(host: Host, tokens: Tokens, limits: BodyLimits) -> Router {
    let state = AppState { host, tokens };
    let ingest = Router::new()
        .route("/v1/events", post(emit))
        .route("/v1/events/batch", post(emit_batch))
        .route("/v1/sync/{trigger}", post(call_sync))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::ingest,
        ));
    let admin = Router::new()
        .route(
            "/v1/event-types",
            get(event_types).post(register_event_type),
        )
        .route("/v1/hooks", get(list_hooks).post(create_hook))
        .route(
            "/v1/hooks/{id}",
            get(get_hook).patch(update_hook).delete(delete_hook),
        )
        .route("/v1/hooks/{id}/test", post(test_hook))
        .route("/v1/hooks/{id}/signing-key", post(rotate_signing_key))
        .route("/v1/hooks/{id}/secrets", get(reveal_secrets))
        .route("/v1/hooks/{id}/enable", post(enable_hook))
        .route("/v1/hooks/{id}/deliveries", get(list_deliveries))
        .route("/v1/hooks/{id}/replay", post(replay))
        .route("/v1/replays/{id}", get(get_replay))
        .route("/v1/hooks/{id}/stats", get(hook_stats))
        .route("/v1/deliveries/{id}", get(get_delivery))
        .route("/v1/deliveries/{id}/retry", post(retry_delivery))
        .route(
            "/v1/plugins",
            get(list_plugins)
                .post(upload_plugin)
                .layer(DefaultBodyLimit::max(limits.plugin)),
        )
        .route("/v1/plugins/{name}", axum::routing::delete(delete_plugin))
        .route("/v1/sources", get(list_sources))
        .route(
            "/v1/sources/{id}",
            get(get_source).put(put_source).delete(delete_source),
        )
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::admin,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        // A sender's signature is its authentication.
        .route("/v1/inbound/{source}", post(receive))
        .merge(ingest)
        .merge(admin)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.json))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::map_response(close_after_unread_body))
        .layer(axum::middleware::from_fn(stamp_arrival))
        .with_state(state)
}

/// A body refused for its size was left unread, so its connection cannot
/// carry another request: say so, rather than close it unannounced.
pub(crate) async fn close_after_unread_body(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The OpenAPI document of this API.
pub fn openapi_document() -> Value {
    let mut document =
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    document_links(&mut document);
    document
}

#[derive(OpenApi)]
#[openapi(
    info(title = "wasmhooks", description = "Hook host for auth platforms: events in, signed webhooks and synchronous decisions out."),
    paths(
        emit, emit_batch, call_sync, event_types, register_event_type,
        list_hooks, create_hook, get_hook, update_hook, delete_hook, test_hook,
        rotate_signing_key, reveal_secrets, enable_hook, list_deliveries, replay, get_replay, hook_stats,
        get_delivery, retry_delivery, list_plugins, upload_plugin, delete_plugin,
        list_sources, get_source, put_source, delete_source, receive,
        metrics, healthz, readyz
    ),
    components(schemas(crate::hook::HookSpec, crate::store::Latency)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        document_plugin_upload(openapi);
        document_common_errors(openapi);
    }
}

/// A plugin upload's body is the component's bytes, sent as
/// `application/wasm` or `application/octet-stream`.
fn document_plugin_upload(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{ContentBuilder, Required};
    let Some(upload) = openapi
        .paths
        .paths
        .get_mut("/v1/plugins")
        .and_then(|item| item.post.as_mut())
    else {
        return;
    };
    let bytes = || {
        ContentBuilder::new()
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))),
            ))
            .build()
    };
    upload.request_body = Some(
        RequestBodyBuilder::new()
            .description(Some("The component's bytes"))
            .content("application/wasm", bytes())
            .content("application/octet-stream", bytes())
            .required(Some(Required::True))
            .build(),
    );
}

/// Link each operation that creates something to the operations that take
/// its id, so a client (or a contract test) can follow them. Written as
/// JSON: utoipa 5 names a link's `operationId` field `operation_id`.
fn document_links(document: &mut Value) {
    let hook = [
        "get_hook",
        "update_hook",
        "delete_hook",
        "test_hook",
        "rotate_signing_key",
        "reveal_secrets",
        "enable_hook",
        "list_deliveries",
        "replay",
        "hook_stats",
    ];
    let created: [(&str, &str, &str, &str, &[&str]); 4] = [
        ("/v1/hooks", "201", "id", "$response.body#/id", &hook),
        (
            "/v1/hooks/{id}/replay",
            "202",
            "id",
            "$response.body#/id",
            &["get_replay"],
        ),
        (
            "/v1/events",
            "202",
            "id",
            "$response.body#/deliveries/0/id",
            &["get_delivery", "retry_delivery"],
        ),
        (
            "/v1/plugins",
            "201",
            "name",
            "$response.body#/name",
            &["delete_plugin"],
        ),
    ];
    for (path, status, parameter, value, targets) in created {
        let pointer = format!(
            "/paths/{}/post/responses/{status}",
            path.replace('~', "~0").replace('/', "~1")
        );
        let Some(Value::Object(response)) = document.pointer_mut(&pointer) else {
            continue;
        };
        let links = targets
            .iter()
            .map(|target| {
                let link = serde_json::json!({
                    "operationId": target,
                    "parameters": {parameter: value},
                });
                (target.to_string(), link)
            })
            .collect();
        response.insert("links".into(), Value::Object(links));
    }
}

/// Paths that answer without a token.
const OPEN_PATHS: [&str; 4] = [
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/v1/inbound/{source}",
];

/// Add the answers every operation can give to each one that does not
/// list them: 401 and 403 (tokens), 400 (parameters and bodies), 413 and
/// 415 (bodies), 500 and 503.
fn document_common_errors(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, ResponseBuilder};
    let error = |what: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let secured = !OPEN_PATHS.contains(&path.as_str());
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let mut common = vec![
                ("500", "The server failed; the body holds a correlation id"),
                ("503", "Busy: try again after `Retry-After`"),
            ];
            if secured {
                common.push(("401", "No valid bearer token"));
                common.push(("403", "The token's role may not call this"));
            }
            // A required JSON body is refused without its content type; an
            // optional one is read whatever it is sent as.
            let json_body = operation.request_body.as_ref().is_some_and(|body| {
                body.content.contains_key("application/json")
                    && matches!(body.required, Some(utoipa::openapi::Required::True))
            });
            if operation.request_body.is_some() || operation.parameters.is_some() {
                common.push(("400", "The request is malformed or breaks a rule"));
            }
            if operation.request_body.is_some() {
                common.push(("413", "The body is over its size cap"));
            }
            if json_body {
                common.push(("415", "The body is not sent as `application/json`"));
            }
            for (status, what) in common {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(what));
            }
        }
    }
}

// Extractors whose refusals are API errors.

/// A JSON body; malformed JSON, unknown fields and oversized bodies are
/// refused with a JSON error.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
struct Json<T>(T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
struct Path<T>(T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
struct Query<T>(T);

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body that may be left out or `null` (then the defaults apply).
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_field",
            _ => "malformed_json",
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, format!("request body: {e}"))
    })
}

/// A point in time: milliseconds since the epoch, or RFC 3339 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Time(Millis);

impl utoipa::PartialSchema for Time {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0))
                    .description(Some("Milliseconds since the epoch")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("RFC 3339")),
            )
            .examples(["2026-11-28T12:00:00Z"])
            .into()
    }
}

impl utoipa::ToSchema for Time {}

impl Time {
    fn from_millis<E: serde::de::Error>(ms: i64) -> Result<Self, E> {
        if ms < 0 {
            return Err(E::custom("times before 1970 are not accepted"));
        }
        Ok(Time(ms))
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Time::from_millis(ms),
            Raw::Text(text) => {
                if let Ok(ms) = text.parse::<i64>() {
                    return Time::from_millis(ms);
                }
                let at = humantime::parse_rfc3339_weak(&text).map_err(|e| {
                    serde::de::Error::custom(format!(
                        "`{text}` is not an RFC 3339 time or milliseconds: {e}"
                    ))
                })?;
                let ms = at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|_| serde::de::Error::custom("times before 1970 are not accepted"))?
                    .as_millis();
                Ok(Time(ms as Millis))
            }
        }
    }
}

// Events.

/// An event to ingest.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EmitRequest {
    /// Event name: one of Logto's or a registered custom name.
    #[schema(min_length = 1, max_length = 128)]
    event: String,
    /// The payload, a JSON object.
    #[schema(value_type = Object)]
    payload: Value,
    /// Idempotency id: posting the same event again under it changes
    /// nothing and answers with the first result; another event under it is
    /// a 409.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    id: Option<String>,
    /// When it happened (default: now).
    #[serde(default, rename = "createdAt")]
    created_at: Option<Time>,
}

impl From<EmitRequest> for EmitEvent {
    fn from(r: EmitRequest) -> Self {
        EmitEvent {
            name: r.event,
            payload: r.payload,
            id: r.id,
            created_at: r.created_at.map(|t| t.0),
        }
    }
}

/// Ingest one event. Answers once the event and its deliveries are durable.
#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = EmitRequest,
    responses((status = 202, body = Ingested), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The id names a stored event with another payload")))]
async fn emit(State(s): State<AppState>, Json(request): Json<EmitRequest>) -> ApiResult<Response> {
    let ingested = s.host.emit(request.into()).await?;
    Ok((StatusCode::ACCEPTED, Json(ingested)).into_response())
}

/// Several events to ingest.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    /// The events, stored in order.
    #[schema(min_items = 1, max_items = 1000)]
    events: Vec<EmitRequest>,
}

/// What a batch stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct BatchResponse {
    /// One result per event, in order.
    events: Vec<Ingested>,
}

/// Ingest up to 1,000 events. Every event is checked first; if any is
/// invalid, nothing is stored and the error names it (`events[i]`).
#[utoipa::path(post, path = "/v1/events/batch", tag = "events", request_body = BatchRequest,
    responses((status = 202, body = BatchResponse), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "An event's id names a stored event with another payload; the error names it, and the batch's other events are stored")))]
async fn emit_batch(
    State(s): State<AppState>,
    Json(request): Json<BatchRequest>,
) -> ApiResult<Response> {
    if request.events.is_empty() || request.events.len() > 1000 {
        return Err(ApiError::bad_request("a batch holds 1 to 1,000 events"));
    }
    let events = request.events.into_iter().map(EmitEvent::from).collect();
    let results = s.host.emit_batch(events).await?;
    let events = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((StatusCode::ACCEPTED, Json(BatchResponse { events })).into_response())
}

/// The accepted event names.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EventTypes {
    /// Logto's names, then registered custom names.
    events: Vec<String>,
}

/// List the accepted event names.
#[utoipa::path(get, path = "/v1/event-types", tag = "events", responses((status = 200, body = EventTypes)))]
async fn event_types(State(s): State<AppState>) -> Json<EventTypes> {
    Json(EventTypes {
        events: s.host.event_types(),
    })
}

/// A custom event name to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EventTypeRequest {
    /// 1 to 128 letters, digits, `.`, `_` or `-`, starting with a letter.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z][A-Za-z0-9._-]*$"
    )]
    name: String,
}

/// Register a custom event name.
#[utoipa::path(post, path = "/v1/event-types", tag = "events", request_body = EventTypeRequest,
    responses((status = 201, body = EventTypes), (status = 400, body = ErrorBody)))]
async fn register_event_type(
    State(s): State<AppState>,
    Json(request): Json<EventTypeRequest>,
) -> ApiResult<Response> {
    s.host.register_event_type(&request.name).await?;
    let events = s.host.event_types();
    Ok((StatusCode::CREATED, Json(EventTypes { events })).into_response())
}

// Sync triggers.

/// A synchronous call.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SyncRequest {
    /// The payload the hooks decide on, a JSON object.
    #[schema(value_type = Object)]
    payload: Value,
    /// Deadline in milliseconds, at most a minute (default: the trigger's).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 60000)]
    deadline_ms: Option<u64>,
}

/// The longest deadline a sync caller may ask for: a user is waiting.
use crate::sync::MAX_SYNC_DEADLINE_MS;

/// Run the sync hooks bound to a trigger and answer allow (with the
/// patched payload and the patch) or deny (code, message, hook).
#[utoipa::path(post, path = "/v1/sync/{trigger}", tag = "sync", request_body = SyncRequest,
    params(("trigger" = String, Path, description = "Trigger name, e.g. PreRegistration")),
    responses((status = 200, body = Decision), (status = 400, body = ErrorBody)))]
async fn call_sync(
    State(s): State<AppState>,
    axum::Extension(Arrived(arrived)): axum::Extension<Arrived>,
    Path(trigger): Path<String>,
    Json(request): Json<SyncRequest>,
) -> ApiResult<Json<Decision>> {
    let deadline = match request.deadline_ms {
        Some(ms @ 1..=MAX_SYNC_DEADLINE_MS) => Some(Duration::from_millis(ms)),
        Some(ms) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                format!("deadline_ms: {ms} is not between 1 and {MAX_SYNC_DEADLINE_MS}"),
            ))
        }
        None => None,
    };
    Ok(Json(
        s.host
            .call_sync_from(arrived, &trigger, request.payload, deadline)
            .await?,
    ))
}

/// When a request arrived, stamped before anything else runs, so a sync
/// call's deadline counts reading and checking the request too.
#[derive(Debug, Clone, Copy)]
struct Arrived(tokio::time::Instant);

async fn stamp_arrival(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    request
        .extensions_mut()
        .insert(Arrived(tokio::time::Instant::now()));
    next.run(request).await
}

// Hooks.

/// Every hook.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct HookList {
    /// By id.
    hooks: Vec<HookView>,
}

/// List hooks.
#[utoipa::path(get, path = "/v1/hooks", tag = "hooks", responses((status = 200, body = HookList)))]
async fn list_hooks(State(s): State<AppState>) -> ApiResult<Json<HookList>> {
    Ok(Json(HookList {
        hooks: s.host.hooks().await?,
    }))
}

/// Create a hook. The body is a hook definition (`HookSpec`) with an
/// optional `id`. A webhook without keys gets a signing key and a
/// Standard Webhooks secret.
#[utoipa::path(post, path = "/v1/hooks", tag = "hooks", request_body = crate::hook::HookSpec,
    responses((status = 201, body = HookView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_hook(
    State(s): State<AppState>,
    Json(mut spec): Json<serde_json::Map<String, Value>>,
) -> ApiResult<Response> {
    let id = match spec.remove("id") {
        None => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => return Err(ApiError::bad_request("`id` must be a string")),
    };
    let hook = s.host.create_hook(id, Value::Object(spec)).await?;
    Ok((StatusCode::CREATED, Json(hook)).into_response())
}

/// Get a hook.
#[utoipa::path(get, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = HookView), (status = 404, body = ErrorBody)))]
async fn get_hook(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<HookView>> {
    Ok(Json(s.host.hook(&id).await?))
}

/// Change a hook: the body is a JSON merge patch on its definition.
#[utoipa::path(patch, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)),
    request_body(content = Object, description = "RFC 7396 merge patch on the hook definition"),
    responses((status = 200, body = HookView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_hook(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(changes): Json<serde_json::Map<String, Value>>,
) -> ApiResult<Json<HookView>> {
    Ok(Json(s.host.update_hook(&id, Value::Object(changes)).await?))
}

/// Delete a hook with its deliveries.
#[utoipa::path(delete, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_hook(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.host.delete_hook(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to test.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
struct TestRequest {
    /// Events to send (default: every event the hook subscribes to).
    events: Vec<String>,
    /// Payload to send instead of the sample, a JSON object.
    #[schema(value_type = Option<Object>)]
    payload: Option<serde_json::Map<String, Value>>,
}

/// What the receiver answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TestResponse {
    /// One result per event.
    results: Vec<TestSend>,
}

/// Send sample payloads to the hook's endpoint now, through its steps and
/// signed, and answer with what the receiver said. Nothing is stored.
#[utoipa::path(post, path = "/v1/hooks/{id}/test", tag = "hooks", params(("id" = String, Path)),
    request_body = Option<TestRequest>, responses((status = 200, body = TestResponse), (status = 404, body = ErrorBody)))]
async fn test_hook(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TestResponse>> {
    let request: TestRequest = optional_json(&body)?;
    let results = s
        .host
        .test_hook(&id, request.events, request.payload.map(Value::Object))
        .await?;
    Ok(Json(TestResponse { results }))
}

/// How to rotate.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
struct RotateRequest {
    /// Which keys: `logto`, `standard`, or `both` (the default).
    scheme: KeyScheme,
    /// How long the old secrets keep signing, e.g. `24h` (the default).
    /// For Logto, the old key signs alone until then, and the new key after.
    #[serde(with = "crate::duration::option")]
    #[schema(value_type = Option<String>, pattern = "^\\s*[0-9]+\\s*[A-Za-z]+(\\s*[0-9]+\\s*[A-Za-z]+)*\\s*$")]
    grace: Option<std::time::Duration>,
}

/// Rotate a webhook's keys, per scheme: a new Logto signing key, which
/// takes over when the grace period ends (the old one signs until then),
/// and/or a new Standard Webhooks secret, which signs beside the old one
/// through the grace period.
#[utoipa::path(post, path = "/v1/hooks/{id}/signing-key", tag = "hooks", params(("id" = String, Path)),
    request_body = Option<RotateRequest>, responses((status = 200, body = HookView), (status = 404, body = ErrorBody)))]
async fn rotate_signing_key(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<HookView>> {
    let request: RotateRequest = optional_json(&body)?;
    Ok(Json(
        s.host
            .rotate_signing_key(&id, request.scheme, request.grace)
            .await?,
    ))
}

/// A hook with its secrets in full (every other read masks them).
#[utoipa::path(get, path = "/v1/hooks/{id}/secrets", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = HookView), (status = 404, body = ErrorBody)))]
async fn reveal_secrets(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<HookView>> {
    Ok(Json(s.host.reveal_secrets(&id).await?))
}

/// Enable a hook again (after a 410, a failing window, or an operator).
#[utoipa::path(post, path = "/v1/hooks/{id}/enable", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = HookView), (status = 404, body = ErrorBody)))]
async fn enable_hook(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<HookView>> {
    Ok(Json(s.host.enable_hook(&id).await?))
}

// Deliveries.

/// Filters for listing deliveries.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeliveryFilter {
    /// Only this status.
    status: Option<DeliveryStatus>,
    /// Created at or after (RFC 3339 or ms).
    since: Option<Time>,
    /// Created before (RFC 3339 or ms).
    until: Option<Time>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DeliveryPage {
    /// Newest first.
    deliveries: Vec<Delivery>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// List a hook's deliveries, newest first.
#[utoipa::path(get, path = "/v1/hooks/{id}/deliveries", tag = "deliveries",
    params(("id" = String, Path), DeliveryFilter),
    responses((status = 200, body = DeliveryPage), (status = 404, body = ErrorBody)))]
async fn list_deliveries(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(filter): Query<DeliveryFilter>,
) -> ApiResult<Json<DeliveryPage>> {
    let limit = filter.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be 1 to 500"));
    }
    let query = DeliveryQuery {
        hook_id: Some(id),
        status: filter.status,
        since: filter.since.map(|t| t.0),
        until: filter.until.map(|t| t.0),
        limit,
        after: filter.after,
    };
    let deliveries = s.host.deliveries(&query).await?;
    let next = (deliveries.len() == limit)
        .then(|| deliveries.last().map(|d| d.id.clone()))
        .flatten();
    Ok(Json(DeliveryPage { deliveries, next }))
}

/// A delivery and its attempts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DeliveryDetail {
    /// The delivery.
    delivery: Delivery,
    /// Its attempts, oldest first.
    attempts: Vec<Attempt>,
}

/// Get a delivery with its attempts.
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries", params(("id" = String, Path)),
    responses((status = 200, body = DeliveryDetail), (status = 404, body = ErrorBody)))]
async fn get_delivery(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryDetail>> {
    let (delivery, attempts) = s.host.delivery(&id).await?;
    Ok(Json(DeliveryDetail { delivery, attempts }))
}

/// Make a delivery due now.
#[utoipa::path(post, path = "/v1/deliveries/{id}/retry", tag = "deliveries", params(("id" = String, Path)),
    responses((status = 202, body = Delivery), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn retry_delivery(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let delivery = s.host.retry_delivery(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}

/// A time range to replay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    /// From (inclusive), RFC 3339 or ms.
    since: Time,
    /// To (exclusive), RFC 3339 or ms; default now.
    #[serde(default)]
    until: Option<Time>,
}

/// Deliver again every stored event in the range the hook subscribes to, as
/// a background job: 202 with the job, whose progress `GET
/// /v1/replays/{id}` reads.
#[utoipa::path(post, path = "/v1/hooks/{id}/replay", tag = "deliveries", params(("id" = String, Path)),
    request_body = ReplayRequest, responses((status = 202, body = Replay), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn replay(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<ReplayRequest>,
) -> ApiResult<Response> {
    let until = request.until.map_or_else(|| now_ms() + 1, |t| t.0);
    let job = s.host.replay(&id, request.since.0, until).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// A replay job's progress: events looked at, deliveries made, and whether
/// it is running, done or failed.
#[utoipa::path(get, path = "/v1/replays/{id}", tag = "deliveries", params(("id" = String, Path)),
    responses((status = 200, body = Replay), (status = 404, body = ErrorBody)))]
async fn get_replay(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Replay>> {
    Ok(Json(s.host.replay_job(&id)?))
}

/// A hook's last 24 hours.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct StatsResponse {
    /// Start of the window (ms since epoch).
    since: Millis,
    /// Counts and latency.
    #[serde(flatten)]
    stats: HookStats,
}

/// Requests, successes, failures and latency percentiles over the last 24 h.
#[utoipa::path(get, path = "/v1/hooks/{id}/stats", tag = "deliveries", params(("id" = String, Path)),
    responses((status = 200, body = StatsResponse), (status = 404, body = ErrorBody)))]
async fn hook_stats(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<StatsResponse>> {
    let since = now_ms() - 24 * 3600 * 1000;
    let stats = s.host.hook_stats(&id, since).await?;
    Ok(Json(StatsResponse { since, stats }))
}

// Plugins.

/// Every plugin.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PluginList {
    /// By name.
    plugins: Vec<PluginView>,
}

/// List plugins.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", responses((status = 200, body = PluginList)))]
async fn list_plugins(State(s): State<AppState>) -> ApiResult<Json<PluginList>> {
    Ok(Json(PluginList {
        plugins: s.host.plugins().await?,
    }))
}

/// The name to upload under.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadParams {
    /// Name hooks refer to the plugin by.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    name: String,
}

/// Upload a component (`application/wasm` body) under a name. It is
/// validated and type-checked against the hook world before it is stored; a
/// bad upload is a 400 that says why (`wrong_world` names the mismatch) and
/// changes nothing. A component that compiles within 1.5 s answers 201,
/// `ready`; a larger one answers 202, `compiling`, and compiles in the
/// background (its status is in the plugin list; calls wait for it).
// Its body is documented by `document_plugin_upload`.
#[utoipa::path(post, path = "/v1/plugins", tag = "plugins", params(UploadParams),
    responses((status = 201, body = PluginView), (status = 202, body = PluginView),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn upload_plugin(
    State(s): State<AppState>,
    Query(params): Query<UploadParams>,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    let bytes = axum::body::Bytes::from_request(request, &())
        .await
        .map_err(ApiError::from)?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the body must be the component's bytes (application/wasm)",
        ));
    }
    let view = s.host.put_plugin(&params.name, bytes.to_vec()).await?;
    let status = match view.state {
        PluginState::Compiling => StatusCode::ACCEPTED,
        _ => StatusCode::CREATED,
    };
    Ok((status, Json(view)).into_response())
}

/// Every inbound source, keys masked.
#[utoipa::path(get, path = "/v1/sources", tag = "sources",
    responses((status = 200, body = Vec<SourceView>)))]
async fn list_sources(State(s): State<AppState>) -> ApiResult<Json<Vec<SourceView>>> {
    Ok(Json(s.host.sources().await?))
}

/// One inbound source, keys masked.
#[utoipa::path(get, path = "/v1/sources/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = SourceView), (status = 404, body = ErrorBody)))]
async fn get_source(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(s.host.source(&id).await?))
}

/// Create an inbound source, or replace its definition: a Logto webhook
/// (`kind: logto` with its `signing_key`) or a Standard Webhooks sender
/// (`kind: standard-webhooks` with its `secrets` and the `event_field`
/// holding the event name, `type` by default). This answer shows the keys;
/// reads mask them, and a key sent back masked keeps the stored one.
#[utoipa::path(put, path = "/v1/sources/{id}", tag = "sources",
    params(("id" = String, Path, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    request_body = SourceSpec, responses((status = 200, body = SourceView), (status = 400, body = ErrorBody)))]
async fn put_source(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(spec): Json<Value>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(s.host.put_source(&id, spec).await?))
}

/// Delete an inbound source; its sender's requests are refused after.
#[utoipa::path(delete, path = "/v1/sources/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_source(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.host.delete_source(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A sender's webhook, taken as an event: no bearer token, the signature
/// is checked instead (`logto-signature-sha-256` for a Logto source;
/// `webhook-id`, `webhook-timestamp` within 5 minutes and
/// `webhook-signature` for a Standard Webhooks one). The event is durable
/// before the 202, as with `POST /v1/events`; a repeated `webhook-id` is a
/// duplicate. A missing or wrong signature or a stale timestamp is a 401,
/// and nothing is stored.
#[utoipa::path(post, path = "/v1/inbound/{source}", tag = "sources", params(("source" = String, Path)),
    request_body(content = Object, description = "The sender's body, as signed"),
    responses((status = 202, body = Ingested), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody, description = "Missing or wrong signature, or a stale timestamp"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(()))]
async fn receive(
    State(s): State<AppState>,
    Path(source): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let ingested = s.host.receive(&source, &headers, &body).await?;
    Ok((StatusCode::ACCEPTED, Json(ingested)).into_response())
}

/// Delete a plugin; refused (409) while a hook uses it.
#[utoipa::path(delete, path = "/v1/plugins/{name}", tag = "plugins", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_plugin(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.host.delete_plugin(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// Operations.

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
async fn metrics(State(s): State<AppState>) -> ApiResult<Response> {
    let text = s.host.metrics().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = Object)))]
async fn healthz() -> Json<Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Object), (status = 503, body = ErrorBody)))]
async fn readyz(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    s.host
        .ready()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string()))?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

async fn openapi() -> Response {
    axum::Json(openapi_document()).into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no route for `{}`; see /openapi.json", uri.path()),
    )
}
