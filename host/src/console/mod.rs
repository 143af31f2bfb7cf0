//! The operators' web console at `/console`: server-rendered HTML pages over
//! the [`Host`] API, signed in with an admin token, kept in an HttpOnly
//! cookie session, every form carrying a CSRF token. The pages load nothing
//! from other hosts; their stylesheet and script are compiled in.

mod assets;
mod chart;
mod deliveries;
mod events;
mod form;
mod hook_form;
mod hooks;
mod layout;
mod playground;
mod plugins;
mod session;
mod sign_in;
mod sources;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::{BodyLimits, Tokens};
use crate::host::Host;

use self::session::Sessions;

/// What every console handler shares.
#[derive(Clone)]
struct Console {
    host: Host,
    tokens: Tokens,
    sessions: Arc<Sessions>,
    /// Largest form body read, in bytes.
    form_limit: usize,
}

/// What every console response carries: pages load only from this server,
/// may not be framed by another site, and are not cached (some show keys).
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
             form-action 'self'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The console's routes, to be merged beside the API's.
pub fn router(host: Host, tokens: Tokens, limits: BodyLimits) -> Router {
    let console = Console {
        host,
        tokens,
        sessions: Arc::new(Sessions::default()),
        form_limit: limits.json,
    };
    let signed_in = Router::new()
        .route("/console", get(|| async { Redirect::to("/console/hooks") }))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/hooks", get(hooks::list))
        .route(
            "/console/hooks/new",
            get(hook_form::new).post(hook_form::create),
        )
        .route("/console/hooks/{id}", get(hooks::detail))
        .route(
            "/console/hooks/{id}/edit",
            get(hook_form::edit).post(hook_form::save),
        )
        .route("/console/hooks/{id}/enable", post(hooks::enable))
        .route("/console/hooks/{id}/disable", post(hooks::disable))
        .route("/console/hooks/{id}/delete", post(hooks::delete))
        .route("/console/hooks/{id}/test", post(hooks::test))
        .route("/console/hooks/{id}/rotate", post(hooks::rotate))
        .route("/console/hooks/{id}/replay", post(deliveries::replay))
        .route("/console/replays/{id}", get(deliveries::replay_progress))
        .route("/console/deliveries", get(deliveries::list))
        .route("/console/deliveries/{id}", get(deliveries::detail))
        .route("/console/deliveries/{id}/retry", post(deliveries::retry))
        .route(
            "/console/plugins",
            get(plugins::list)
                .post(plugins::upload)
                .layer(DefaultBodyLimit::max(limits.plugin)),
        )
        .route("/console/plugins/{name}/delete", post(plugins::delete))
        .route(
            "/console/playground",
            get(playground::form).post(playground::run),
        )
        .route("/console/sources", get(sources::list).post(sources::save))
        .route("/console/sources/{id}/delete", post(sources::delete))
        .route(
            "/console/event-types",
            get(events::list).post(events::register),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            session::require,
        ));
    Router::new()
        .route(
            "/console/sign-in",
            get(sign_in::sign_in_page).post(sign_in::sign_in),
        )
        .route("/console/assets/{file}", get(assets::serve))
        .merge(signed_in)
        .layer(DefaultBodyLimit::max(limits.json))
        .layer(axum::middleware::map_response(secure_headers))
        .layer(axum::middleware::map_response(
            crate::api::close_after_unread_body,
        ))
        .with_state(console)
}
