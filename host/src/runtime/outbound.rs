//! Outbound HTTP for plugins: `wasi:http/outgoing-handler` requests pass the
//! grant's host list, are resolved here, checked address by address, and sent
//! to the checked address only (no second lookup a rebinding DNS server could
//! answer differently). Redirects are returned to the plugin, whose next
//! request is checked again. Bodies are capped; everything is bounded by the
//! call's deadline.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::uri::Scheme;
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::TokioIo;
use tokio::time::{timeout, Instant};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::error::PluginError;
use super::grants::SharedGrants;
use crate::net::{connect_allowed, NetError};

/// The first policy violation of a call, kept so the call can report it as a
/// typed error even when the plugin turns the refusal into its own error.
pub(crate) type Violation = Arc<Mutex<Option<PluginError>>>;

/// The per-call `WasiHttpHooks`: policy, caps and deadline of one call.
pub(crate) struct Outbound {
    pub(crate) grants: SharedGrants,
    pub(crate) violation: Violation,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) max_response_bytes: usize,
    pub(crate) deadline: Instant,
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let request_ctx = Request {
            grants: self.grants.clone(),
            violation: self.violation.clone(),
            tls: self.tls.clone(),
            max_response_bytes: self.max_response_bytes,
            deadline: self.deadline,
        };
        Box::new(request_ctx.send(request, options))
    }
}

/// Everything one request needs, detached from the store.
struct Request {
    grants: SharedGrants,
    violation: Violation,
    tls: Arc<rustls::ClientConfig>,
    max_response_bytes: usize,
    deadline: Instant,
}

impl Request {
    fn refuse(&self, violation: PluginError, code: Error) -> Error {
        tracing::debug!(%violation, "outbound request refused");
        let mut slot = self.violation.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(violation);
        code
    }

    /// Time left, capped by the plugin's own option when it set one.
    fn budget(&self, requested: Option<Duration>) -> Duration {
        let left = self.deadline.saturating_duration_since(Instant::now());
        requested.map_or(left, |r| r.min(left))
    }

    async fn send(
        self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> SendResult {
        let uri = request.uri().clone();
        let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let tls = uri.scheme() == Some(&Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = format!("{host}:{port}");

        if !self.grants.http.allows_host(host, port) {
            return Err(self.refuse(
                PluginError::ForbiddenHost(authority),
                Error::HttpRequestDenied,
            ));
        }

        let connect_budget = self.budget(options.and_then(|o| o.connect_timeout));
        let stream = match connect_allowed(
            &self.grants.http.private_networks,
            host,
            port,
            connect_budget,
        )
        .await
        {
            Ok(stream) => stream,
            Err(NetError::Blocked { host, address }) => {
                return Err(self.refuse(
                    PluginError::BlockedAddress { host, address },
                    Error::DestinationIpProhibited,
                ))
            }
            Err(NetError::Dns { message, .. }) => {
                return Err(Error::DnsError {
                    rcode: Some(message),
                    info_code: None,
                })
            }
            Err(NetError::Timeout(_)) => return Err(Error::ConnectionTimeout),
            Err(NetError::Connect { source, .. }) => return Err(Error::Connect(source)),
        };

        // The request line carries only the path; the host header is set.
        *request.uri_mut() = uri.path_and_query().map_or_else(
            || http::Uri::from_static("/"),
            |p| p.as_str().parse().unwrap_or_default(),
        );

        let first_byte = self.budget(options.and_then(|o| o.first_byte_timeout));
        let response = if tls {
            let name = rustls::pki_types::ServerName::try_from(bare_host.to_string())
                .map_err(|_| Error::HttpRequestUriInvalid)?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let stream = timeout(connect_budget, connector.connect(name, stream))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            exchange(stream, request, first_byte).await?
        } else {
            exchange(stream, request, first_byte).await?
        };

        let cap = self.max_response_bytes;
        let response = response.map(move |body| {
            Limited::new(body, cap)
                .map_err(move |e| match e.downcast::<hyper::Error>() {
                    Ok(hyper) => Error::from(*hyper),
                    Err(_) => Error::HttpResponseBodySize(Some(cap as u64)),
                })
                .boxed_unsync()
        });
        let done: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
        Ok((response, done))
    }
}

/// One HTTP/1.1 exchange on a connected stream; the connection is driven by
/// its own task until the body is read or dropped.
async fn exchange<S>(
    stream: S,
    request: http::Request<WasiBody>,
    first_byte: Duration,
) -> Result<http::Response<hyper::body::Incoming>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(Error::from)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "plugin outbound connection ended with an error");
        }
    });
    timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(Error::from)
}
