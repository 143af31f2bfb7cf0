//! What a hook grants a plugin: config values, secrets, and outbound hosts.
//! Nothing is ambient: a plugin gets exactly this and no more.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The capabilities one hook step gives its plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Plain configuration values, readable through `config.get`.
    pub config: BTreeMap<String, String>,
    /// Secrets, readable through `secrets.get`; masked in logs and listings.
    pub secrets: BTreeMap<String, String>,
    /// Where the plugin may send HTTP requests.
    pub http: HttpGrant,
}

/// Outbound HTTP allowed to a plugin.
///
/// A request goes out only when its host matches one of `hosts` and every
/// address it connects to is public, or lies in one of `private_networks`.
/// Private, loopback, link-local, unspecified and other special ranges are
/// refused otherwise, so a granted name that resolves (or redirects) to an
/// internal address is still refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpGrant {
    /// Host patterns: `api.example.com`, `*.example.com` (any subdomain),
    /// `api.example.com:8443` (that port only), `*` (any public host).
    #[schema(value_type = Vec<String>)]
    pub hosts: Vec<HostPattern>,
    /// Non-public networks the plugin may reach anyway, for example
    /// `127.0.0.1/32` for a service on the same machine.
    #[schema(value_type = Vec<String>)]
    pub private_networks: Vec<IpNet>,
}

impl HttpGrant {
    /// Whether a request to `host:port` is granted by name.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|p| p.matches(&host, port))
    }

    /// Whether connecting to `ip` is allowed.
    pub fn allows_address(&self, ip: IpAddr) -> bool {
        crate::net::allows_address(&self.private_networks, ip)
    }
}

/// One allowed host, as written in a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    text: String,
    host: String,
    any_subdomain: bool,
    port: Option<u16>,
}

impl HostPattern {
    fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        if self.host == "*" {
            return true;
        }
        if self.any_subdomain {
            return host
                .strip_suffix(self.host.as_str())
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1);
        }
        host == self.host
    }
}

/// Why a host pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern `{pattern}`: {reason}")]
pub struct HostPatternError {
    pattern: String,
    reason: &'static str,
}

impl FromStr for HostPattern {
    type Err = HostPatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| HostPatternError {
            pattern: text.to_string(),
            reason,
        };
        if text.contains("://") || text.contains('/') {
            return Err(fail("write a host, not a URL"));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (addr, after) = rest.split_once(']').ok_or(fail("unclosed `[`"))?;
            (addr, after.strip_prefix(':'))
        } else if text.matches(':').count() > 1 {
            (text, None)
        } else {
            match text.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            }
        };
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| fail("port is not a number")))
            .transpose()?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let (host, any_subdomain) = match host.strip_prefix("*.") {
            Some(base) => (base.to_string(), true),
            None => (host, false),
        };
        if host.is_empty() {
            return Err(fail("empty host"));
        }
        if host != "*" && host.contains('*') {
            return Err(fail("`*` may only stand alone or lead as `*.`"));
        }
        Ok(HostPattern {
            text: text.to_string(),
            host,
            any_subdomain,
            port,
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Grants shared by every call of a step, cheap to clone per call.
pub(crate) type SharedGrants = Arc<Grants>;

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(hosts: &[&str], nets: &[&str]) -> HttpGrant {
        HttpGrant {
            hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
            private_networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn host_patterns() {
        let g = grant(
            &["api.example.com", "*.example.org", "local.test:8080"],
            &[],
        );
        assert!(g.allows_host("api.example.com", 443));
        assert!(g.allows_host("API.Example.com.", 80));
        assert!(!g.allows_host("example.com", 443));
        assert!(g.allows_host("a.example.org", 443));
        assert!(!g.allows_host("example.org", 443));
        assert!(!g.allows_host("badexample.org", 443));
        assert!(g.allows_host("local.test", 8080));
        assert!(!g.allows_host("local.test", 8081));
        assert!(grant(&["*"], &[]).allows_host("anything.at.all", 1));
        assert!(grant(&["[::1]:80"], &[]).allows_host("[::1]", 80));
        assert!("http://x".parse::<HostPattern>().is_err());
        assert!("a*.b".parse::<HostPattern>().is_err());
        assert!("a:b".parse::<HostPattern>().is_err());
    }

    #[test]
    fn blocked_ranges() {
        let g = grant(&["*"], &[]);
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(
                !g.allows_address(ip.parse().unwrap()),
                "{ip} must be blocked"
            );
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(
                g.allows_address(ip.parse().unwrap()),
                "{ip} must be allowed"
            );
        }
        let local = grant(&["*"], &["127.0.0.1/32"]);
        assert!(local.allows_address("127.0.0.1".parse().unwrap()));
        assert!(local.allows_address("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!local.allows_address("127.0.0.2".parse().unwrap()));
    }
}
