//! Outbound connections under an address policy, shared by plugins' HTTP
//! and webhook delivery: resolve the name here, keep only the addresses the
//! policy allows, and connect to one of those (never resolving twice, so a
//! rebinding DNS server cannot swap the target after the check).
//!
//! The policy: public unicast addresses are allowed; private, loopback,
//! link-local, unspecified and other special ranges only when they lie in
//! one of the networks the caller explicitly allows. The TLS settings for
//! every outbound connection live here too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::net::TcpStream;
use tokio::time::timeout;

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

/// Whether connecting to `ip` is allowed: it is public, or lies in one of
/// `private_networks`.
pub fn allows_address(private_networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    is_public(ip) || private_networks.iter().any(|n| n.contains(&ip))
}

/// The named non-public range `ip` lies in, or `None` for a public address:
/// what an error shows when the policy refuses it.
pub fn blocked_range(ip: IpAddr) -> Option<&'static str> {
    let ip = canonical(ip);
    if is_public(ip) {
        return None;
    }
    let ranges: [(&str, &str); 14] = [
        ("127.0.0.0/8", "loopback 127.0.0.0/8"),
        ("10.0.0.0/8", "private 10.0.0.0/8"),
        ("172.16.0.0/12", "private 172.16.0.0/12"),
        ("192.168.0.0/16", "private 192.168.0.0/16"),
        ("169.254.0.0/16", "link-local 169.254.0.0/16"),
        ("100.64.0.0/10", "shared address space 100.64.0.0/10"),
        ("0.0.0.0/8", "unspecified 0.0.0.0/8"),
        ("224.0.0.0/4", "multicast 224.0.0.0/4"),
        ("240.0.0.0/4", "reserved 240.0.0.0/4"),
        ("::1/128", "loopback ::1"),
        ("::/128", "unspecified ::"),
        ("fc00::/7", "unique local fc00::/7"),
        ("fe80::/10", "link-local fe80::/10"),
        ("ff00::/8", "multicast ff00::/8"),
    ];
    Some(
        ranges
            .iter()
            .find(|(net, _)| net.parse::<IpNet>().is_ok_and(|n| n.contains(&ip)))
            .map_or("a non-public range", |(_, name)| *name),
    )
}

/// TLS settings shared by every outbound connection: Mozilla's roots.
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// Connect to `host:port` if one of its addresses is allowed (public, or in
/// `private_networks`), within `budget`.
pub async fn connect_allowed(
    private_networks: &[IpNet],
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
        .filter(|a| allows_address(private_networks, a.ip()))
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

/// IPv4 addresses hidden in IPv6 form are judged as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its low 32 bits.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4([a, b, c, d].into());
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// True for globally routable unicast addresses.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local
                || first == 0x2001 && v6.segments()[1] == 0xdb8 // documentation
                || v6.to_ipv4().is_some()) // IPv4-compatible, deprecated
        }
    }
}
