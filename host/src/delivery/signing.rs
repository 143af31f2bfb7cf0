//! Webhook signatures: Logto's `logto-signature-sha-256` and the Standard
//! Webhooks `webhook-signature`, over the exact body bytes sent.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Logto's signature: lowercase hex HMAC-SHA256 of `body`, keyed with the
/// signing key's UTF-8 bytes.
pub fn logto_signature(signing_key: &str, body: &[u8]) -> String {
    hex::encode(hmac(signing_key.as_bytes(), &[body]))
}

/// A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid webhook secret: {0}")]
pub struct SecretError(&'static str);

impl WebhookSecret {
    /// Parse `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix("whsec_")
            .ok_or(SecretError("it must start with `whsec_`"))?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError("the part after `whsec_` is not base64"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError("it must hold 24 to 64 bytes"));
        }
        Ok(WebhookSecret { key })
    }

    /// A new random secret of 32 bytes.
    pub fn generate() -> Self {
        WebhookSecret {
            key: rand::random::<[u8; 32]>().to_vec(),
        }
    }

    /// The `whsec_...` form.
    pub fn to_text(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.key))
    }

    /// One `v1,<base64>` signature of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let ts = timestamp.to_string();
        let mac = hmac(
            &self.key,
            &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body],
        );
        format!("v1,{}", STANDARD.encode(mac))
    }
}

/// The `webhook-signature` header: one `v1,` entry per active secret.
pub fn standard_signature(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Verify a `webhook-signature` header as a receiver does: any `v1` entry
/// matching `secret` passes (constant-time comparison).
pub fn verify_standard(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let ts = timestamp.to_string();
    header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .any(|sig| {
            let Ok(sig) = STANDARD.decode(sig) else {
                return false;
            };
            let mut mac = HmacSha256::new_from_slice(&secret.key).expect("any key length");
            for part in [msg_id.as_bytes(), b".", ts.as_bytes(), b".", body] {
                mac.update(part);
            }
            mac.verify_slice(&sig).is_ok()
        })
}

/// A new Logto-style signing key: 32 characters of `[0-9A-Za-z]`.
pub fn generate_signing_key() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_test_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify_standard(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &sig
        ));
        let wrong = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        assert!(!verify_standard(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            wrong
        ));
        assert!(!verify_standard(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
            body,
            &sig
        ));
    }

    #[test]
    fn rotation_signs_with_every_active_secret() {
        let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
        let header = standard_signature(&[new.clone(), old.clone()], "msg_1", 1700000000, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify_standard(&old, "msg_1", 1700000000, b"{}", &header));
        assert!(verify_standard(&new, "msg_1", 1700000000, b"{}", &header));
        assert!(!verify_standard(
            &WebhookSecret::generate(),
            "msg_1",
            1700000000,
            b"{}",
            &header
        ));
        assert_eq!(WebhookSecret::parse(&old.to_text()).unwrap(), old);
    }

    #[test]
    fn secrets_are_checked() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
    }

    #[test]
    fn logto_signature_is_hex_hmac_of_the_body() {
        // HMAC-SHA256(key = "key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            logto_signature("key", b"The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        let key = generate_signing_key();
        assert_eq!(key.len(), 32);
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
