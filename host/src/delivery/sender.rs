//! Sends one webhook attempt: a POST of the exact body bytes over a pooled
//! keep-alive client (hyper, rustls), to an address the operator's network
//! policy allows, never following redirects, reading at most a capped
//! response body, all within the hook's timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::net::{connect_allowed, NetError};

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Response status, if a response came.
    pub status: Option<u16>,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body, at most the cap, lossily decoded.
    pub body: Option<String>,
    /// Failure kind: `timeout`, `blocked`, `dns`, `connect`, `tls`, `http`.
    pub error_kind: Option<&'static str>,
    /// Failure detail.
    pub error: Option<String>,
    /// Wall time of the attempt.
    pub duration: Duration,
}

impl Sent {
    /// True when the attempt ran out of time.
    pub fn timed_out(&self) -> bool {
        self.error_kind == Some("timeout")
    }
}

/// Opens TCP connections only to addresses the policy allows.
#[derive(Clone)]
struct PolicedConnector {
    private_networks: Arc<[ipnet::IpNet]>,
    connect_timeout: Duration,
}

impl tower_service::Service<http::Uri> for PolicedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = NetError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, NetError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), NetError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default().to_string();
            let port =
                uri.port_u16()
                    .unwrap_or(if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
                        443
                    } else {
                        80
                    });
            let stream =
                connect_allowed(&this.private_networks, &host, port, this.connect_timeout).await?;
            let _ = stream.set_nodelay(true);
            Ok(TokioIo::new(stream))
        })
    }
}

/// The webhook HTTP client, shared by every delivery.
#[derive(Clone)]
pub struct Sender {
    client: Client<hyper_rustls::HttpsConnector<PolicedConnector>, Full<Bytes>>,
    max_body: usize,
}

impl Sender {
    /// A client that may reach public addresses and the `private_networks`
    /// the operator allows, keeping at most `max_body` bytes of responses.
    pub fn new(private_networks: Vec<ipnet::IpNet>, max_body: usize) -> Self {
        let connector = PolicedConnector {
            private_networks: private_networks.into(),
            connect_timeout: Duration::from_secs(10),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::net::tls_config().as_ref().clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(https);
        Sender { client, max_body }
    }

    /// POST `body` to `url` with `headers`, within `timeout`.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Sent {
        let started = Instant::now();
        let fail = |kind: &'static str, error: String| Sent {
            status: None,
            headers: HeaderMap::new(),
            body: None,
            error_kind: Some(kind),
            error: Some(error),
            duration: started.elapsed(),
        };
        let mut request = Request::post(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = match request.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => return fail("http", format!("building the request: {e}")),
        };
        let exchange = async {
            let response = self.client.request(request).await.map_err(classify)?;
            let (parts, mut body) = response.into_parts();
            let mut kept = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ("http", format!("reading the response: {e}")))?;
                if let Some(data) = frame.data_ref() {
                    let room = self.max_body.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                    if room < data.len() {
                        break; // The rest is not needed; the connection is dropped.
                    }
                }
            }
            Ok::<_, (&'static str, String)>((parts, kept))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => fail(
                "timeout",
                format!("no complete response within {timeout:?}"),
            ),
            Ok(Err((kind, error))) => fail(kind, error),
            Ok(Ok((parts, kept))) => {
                let status = parts.status.as_u16();
                let ok = parts.status.is_success();
                Sent {
                    status: Some(status),
                    headers: parts.headers,
                    body: Some(String::from_utf8_lossy(&kept).into_owned()),
                    error_kind: (!ok).then_some("http_status"),
                    error: (!ok).then(|| format!("receiver answered {status}")),
                    duration: started.elapsed(),
                }
            }
        }
    }
}

/// Name the failure of a request that got no response.
fn classify(error: hyper_util::client::legacy::Error) -> (&'static str, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(net) = e.downcast_ref::<NetError>() {
            let kind = match net {
                NetError::Blocked { .. } => "blocked",
                NetError::Dns { .. } => "dns",
                NetError::Timeout(_) => "timeout",
                NetError::Connect { .. } => "connect",
            };
            return (kind, net.to_string());
        }
        if e.downcast_ref::<rustls::Error>().is_some() {
            return ("tls", e.to_string());
        }
        source = e.source();
    }
    let detail = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    ("http", detail)
}
