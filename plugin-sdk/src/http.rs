//! Outbound HTTP over the standard `wasi:http/outgoing-handler`.
//!
//! The host lets a plugin reach only the hosts its hook grants; every request,
//! including each redirect hop this helper follows, is checked again after DNS
//! resolution. A refused request fails with an error mentioning the policy,
//! and the host reports the call as a policy violation.
//!
//! ```no_run
//! # fn main() -> Result<(), wasmhooks_sdk::Error> {
//! let answer = wasmhooks_sdk::http::get("https://api.example.com/geo?ip=203.0.113.7")?;
//! let body: serde_json::Value = answer.json()?;
//! # Ok(()) }
//! ```

use std::fmt;

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;

/// How many redirects [`Request::send`] follows before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// An outbound request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    follow_redirects: bool,
}

/// A response, with its body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why an outbound request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

fn fail(message: impl Into<String>) -> HttpError {
    HttpError(message.into())
}

/// `GET url`, following redirects.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new("GET", url).send()
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, body: &serde_json::Value) -> Result<Response, HttpError> {
    Request::new("POST", url)
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .send()
}

impl Request {
    /// A request with this method (`GET`, `POST`, ...) and absolute URL.
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            follow_redirects: true,
        }
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Return 3xx responses as they are instead of following them.
    pub fn no_redirects(mut self) -> Self {
        self.follow_redirects = false;
        self
    }

    /// Send the request and read the whole response.
    pub fn send(mut self) -> Result<Response, HttpError> {
        for _ in 0..=MAX_REDIRECTS {
            let response = send_once(&self)?;
            let location = response.header("location").map(str::to_string);
            match (self.follow_redirects, response.status, location) {
                (true, 301 | 302 | 303 | 307 | 308, Some(location)) => {
                    if matches!(response.status, 301..=303) && self.method != "HEAD" {
                        self.method = "GET".into();
                        self.body.clear();
                    }
                    self.url = resolve(&self.url, &location)?;
                }
                _ => return Ok(response),
            }
        }
        Err(fail(format!("more than {MAX_REDIRECTS} redirects")))
    }
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| fail(format!("response body is not the JSON expected: {e}")))
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The parts of an absolute http(s) URL that wasi:http wants separately.
struct Target<'a> {
    scheme: Scheme,
    authority: &'a str,
    path_and_query: &'a str,
}

fn split_url(url: &str) -> Result<Target<'_>, HttpError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| fail(format!("`{url}` is not an absolute URL")))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(fail(format!("unsupported URL scheme `{other}`"))),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(split);
    if authority.is_empty() {
        return Err(fail(format!("`{url}` has no host")));
    }
    let path_and_query = if path_and_query.is_empty() {
        "/"
    } else {
        path_and_query
    };
    Ok(Target {
        scheme,
        authority,
        path_and_query,
    })
}

/// Resolve a `Location` header against the URL that answered it.
fn resolve(base: &str, location: &str) -> Result<String, HttpError> {
    if location.contains("://") {
        return Ok(location.to_string());
    }
    let target = split_url(base)?;
    let scheme = match target.scheme {
        Scheme::Https => "https",
        _ => "http",
    };
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{}{location}", target.authority));
    }
    let dir = match target.path_and_query.rfind('/') {
        Some(i) => &target.path_and_query[..=i],
        None => "/",
    };
    Ok(format!("{scheme}://{}{dir}{location}", target.authority))
}

fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => "request denied by the host's outbound policy".into(),
        ErrorCode::DestinationIpProhibited => {
            "destination address blocked by the host's outbound policy".into()
        }
        other => format!("{other:?}"),
    }
}

fn send_once(request: &Request) -> Result<Response, HttpError> {
    let target = split_url(&request.url)?;
    let headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
        .collect();
    let fields = Fields::from_list(&headers).map_err(|e| fail(format!("bad header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match request.method.as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    };
    let invalid = |what: &str| fail(format!("invalid {what} in `{}`", request.url));
    outgoing
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    outgoing
        .set_scheme(Some(&target.scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(target.authority))
        .map_err(|()| invalid("host"))?;
    outgoing
        .set_path_with_query(Some(target.path_and_query))
        .map_err(|()| invalid("path"))?;

    let body = outgoing
        .body()
        .map_err(|()| fail("request body taken twice"))?;
    if !request.body.is_empty() {
        let stream = body.write().map_err(|()| fail("request body stream"))?;
        for chunk in request.body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| fail(format!("writing request body: {e:?}")))?;
        }
    }
    let future = outgoing_handler::handle(outgoing, None).map_err(|e| fail(describe(&e)))?;
    OutgoingBody::finish(body, None).map_err(|e| fail(describe(&e)))?;

    future.subscribe().block();
    let incoming = future
        .get()
        .ok_or_else(|| fail("response not ready"))?
        .map_err(|()| fail("response taken twice"))?
        .map_err(|e| fail(describe(&e)))?;

    let status = incoming.status();
    let headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    let body = incoming
        .consume()
        .map_err(|()| fail("response body taken twice"))?;
    let stream = body.stream().map_err(|()| fail("response body stream"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(fail(format!(
                    "reading response body: {}",
                    e.to_debug_string()
                )))
            }
        }
    }
    drop(stream);
    IncomingBody::finish(body);
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn resolves_locations() {
        let base = "http://a.example:8080/x/y?q=1";
        assert_eq!(resolve(base, "https://b/").unwrap(), "https://b/");
        assert_eq!(resolve(base, "/z").unwrap(), "http://a.example:8080/z");
        assert_eq!(resolve(base, "//c/d").unwrap(), "http://c/d");
        assert_eq!(resolve(base, "w").unwrap(), "http://a.example:8080/x/w");
    }
}
