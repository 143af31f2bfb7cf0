//! [`Script`]: a webhook receiver that records every request and answers
//! from a script of responses (the last one repeats).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::Receiver;

/// What a receiver saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Request path.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
}

/// A scripted answer: status, headers, delay before answering.
pub type Answer = (u16, Vec<(&'static str, String)>, Duration);

/// `200 OK` at once.
pub fn ok() -> Answer {
    (200, vec![], Duration::ZERO)
}

/// `code` at once.
pub fn status(code: u16) -> Answer {
    (code, vec![], Duration::ZERO)
}

/// Records requests and answers from its script.
#[derive(Clone)]
pub struct Script {
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
}

impl Script {
    /// A receiver that will answer `answers` in turn, repeating the last.
    pub fn new(answers: Vec<Answer>) -> Self {
        assert!(!answers.is_empty(), "a script needs at least one answer");
        Script {
            seen: Arc::default(),
            answers: Arc::new(Mutex::new(answers)),
        }
    }

    /// The requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Wait until `count` requests have arrived, or panic after `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen = self.seen();
            if seen.len() >= count {
                return seen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {count} requests arrived within {within:?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Serve on a free loopback port (call inside a tokio runtime).
    pub async fn start(&self) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        self.start_on(listener)
    }

    /// Serve on a listener the caller bound (a port chosen in advance).
    pub fn start_on(&self, listener: tokio::net::TcpListener) -> Receiver {
        async fn answer(
            State(script): State<Script>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            script.seen.lock().unwrap().push(Seen {
                path: uri.path().to_string(),
                headers,
                body,
            });
            let (status, headers, delay) = {
                let mut answers = script.answers.lock().unwrap();
                if answers.len() > 1 {
                    answers.remove(0)
                } else {
                    answers[0].clone()
                }
            };
            tokio::time::sleep(delay).await;
            let mut response =
                (StatusCode::from_u16(status).unwrap(), "receiver says hi").into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        let router = Router::new()
            .route("/{*path}", post(answer))
            .with_state(self.clone());
        Receiver::start_on(listener, router)
    }
}
