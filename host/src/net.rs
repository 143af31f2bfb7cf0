//! Outbound connections under an address policy, shared by plugins' HTTP
//! and webhook delivery: resolve the name here, keep only the addresses the
//! policy allows, and connect to one of those (never resolving twice, so a
//! rebinding DNS server cannot swap the target after the check).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::runtime::HttpGrant;

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The name did not resolve.
    #[error("DNS lookup of `{host}` failed: {message}")]
    Dns {
        /// The name.
        host: String,
        /// The resolver's message.
        message: String,
    },
    /// Resolution or connection took longer than allowed.
    #[error("timed out connecting to `{0}`")]
    Timeout(String),
    /// Every address the name resolved to is in a blocked range.
    #[error("`{host}` resolves to {address}, which is in a blocked range")]
    Blocked {
        /// The name.
        host: String,
        /// The first address it resolved to.
        address: String,
    },
    /// The connection failed.
    #[error("connecting to `{host}` failed: {source}")]
    Connect {
        /// The name.
        host: String,
        /// The socket error.
        source: std::io::Error,
    },
}

/// Connect to `host:port` if `policy` allows one of its addresses, within `budget`.
pub async fn connect_allowed(
    policy: &HttpGrant,
    host: &str,
    port: u16,
    budget: Duration,
) -> Result<TcpStream, NetError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let deadline = tokio::time::Instant::now() + budget;
    let addresses: Vec<SocketAddr> = timeout(budget, tokio::net::lookup_host((bare, port)))
        .await
        .map_err(|_| NetError::Timeout(bare.to_string()))?
        .map_err(|e| NetError::Dns {
            host: bare.to_string(),
            message: e.to_string(),
        })?
        .collect();
    let Some(first) = addresses.first() else {
        return Err(NetError::Dns {
            host: bare.to_string(),
            message: "no addresses".into(),
        });
    };
    let allowed: Vec<SocketAddr> = addresses
        .iter()
        .copied()
        .filter(|a| policy.allows_address(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(NetError::Blocked {
            host: bare.to_string(),
            address: first.ip().to_string(),
        });
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    timeout(left, TcpStream::connect(&allowed[..]))
        .await
        .map_err(|_| NetError::Timeout(bare.to_string()))?
        .map_err(|source| NetError::Connect {
            host: bare.to_string(),
            source,
        })
}
