//! Standard Webhooks signatures (the spec's `standardwebhooks` crate): signing with every
//! secret of an endpoint (rotation), and verification for receivers.
//!
//! The signed content is `webhook-id.webhook-timestamp.body`; the `webhook-signature`
//! header is `v1,<base64 HMAC-SHA256>`, one per secret, separated by spaces. A receiver
//! accepts a request when any signature matches any of its secrets.

use standardwebhooks::{Webhook, WebhookError};

/// The secret prefix the spec asks for.
pub const SECRET_PREFIX: &str = "whsec_";

/// The spec's bounds on a symmetric secret, in bytes after base64 decoding.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// An endpoint's secrets, parsed once. Signing costs one HMAC-SHA256 per secret.
pub struct Signer {
    keys: Vec<Webhook>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} secret(s))", self.keys.len())
    }
}

/// Parses whitespace-separated `whsec_<base64>` secrets. Errors say which secret (by
/// position) is wrong and why, never its value.
fn parse_secrets(text: &str, check_length: bool) -> Result<Vec<Webhook>, String> {
    let mut keys = Vec::new();
    for (i, secret) in text.split_whitespace().enumerate() {
        let n = i + 1;
        let Some(b64) = secret.strip_prefix(SECRET_PREFIX) else {
            return Err(format!(
                "secret {n} does not start with \"{SECRET_PREFIX}\""
            ));
        };
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| format!("secret {n} is not valid base64 after \"{SECRET_PREFIX}\""))?;
        if check_length && !SECRET_BYTES.contains(&bytes.len()) {
            return Err(format!(
                "secret {n} has {} bytes; the spec asks for 24 to 64",
                bytes.len()
            ));
        }
        keys.push(Webhook::from_bytes(bytes).map_err(|_| format!("secret {n} is unusable"))?);
    }
    if keys.is_empty() {
        return Err("no secret: expected one or more whsec_… values".into());
    }
    Ok(keys)
}

impl Signer {
    /// Parses one or more whitespace-separated `whsec_…` secrets (24–64 bytes each).
    pub fn new(secrets: &str) -> Result<Signer, String> {
        Ok(Signer {
            keys: parse_secrets(secrets, true)?,
        })
    }

    /// The `webhook-signature` header value for `id` sent at `timestamp` (Unix seconds):
    /// `v1,<sig>` per secret, space-separated, in the order the secrets were given.
    ///
    /// Fails only if `body` is not UTF-8 (the crate signs text; JSON always is).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, WebhookError> {
        let mut header = String::with_capacity(48 * self.keys.len());
        for key in &self.keys {
            if !header.is_empty() {
                header.push(' ');
            }
            header.push_str(&key.sign(id, timestamp, body)?);
        }
        Ok(header)
    }
}

/// A receiver's secrets: a request is authentic when one of its signatures matches one of
/// these (several during a rotation).
pub struct Verifier {
    keys: Vec<Webhook>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({} secret(s))", self.keys.len())
    }
}

impl Verifier {
    /// Parses one or more whitespace-separated `whsec_…` secrets.
    pub fn new(secrets: &str) -> Result<Verifier, String> {
        Ok(Verifier {
            keys: parse_secrets(secrets, false)?,
        })
    }

    /// Verifies the three `webhook-*` headers and the raw body with the crate, which also
    /// refuses a timestamp more than 5 minutes from now (replays). The first error is
    /// returned when no secret matches.
    pub fn verify(&self, body: &[u8], headers: &http::HeaderMap) -> Result<(), WebhookError> {
        let mut first = None;
        for key in &self.keys {
            match key.verify(body, headers) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.unwrap_or(WebhookError::InvalidSignature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec libraries' published vector (Go, Python, JavaScript `TestWebhookSign`).
    #[test]
    fn signs_the_spec_libraries_test_vector() {
        let s = Signer::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            )
            .unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    /// The Rust library's own vector (`test_sign`).
    #[test]
    fn signs_the_rust_library_test_vector() {
        let s = Signer::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            s.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            )
            .unwrap(),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    fn headers(id: &str, ts: i64, sig: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn rotation_signs_with_every_secret_and_verifies_with_any() {
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let new = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let s = Signer::new(&format!("{new}  {old}\n")).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let body = br#"{"type":"case.opened"}"#;
        let sig = s.sign("c-1:1", now, body).unwrap();
        assert_eq!(sig.split(' ').count(), 2);
        for secret in [old, new] {
            let v = Verifier::new(secret).unwrap();
            v.verify(body, &headers("c-1:1", now, &sig)).unwrap();
            assert!(v.verify(b"{}", &headers("c-1:1", now, &sig)).is_err());
            assert!(v.verify(body, &headers("c-1:2", now, &sig)).is_err());
            let stale = s.sign("c-1:1", now - 600, body).unwrap();
            assert!(matches!(
                v.verify(body, &headers("c-1:1", now - 600, &stale)),
                Err(WebhookError::TimestampTooOldError)
            ));
        }
        // The Go library's wrong signature for a valid request.
        let v = Verifier::new(old).unwrap();
        let bad = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        assert!(v.verify(body, &headers("c-1:1", now, bad)).is_err());
        assert!(v.verify(body, &http::HeaderMap::new()).is_err());
    }

    #[test]
    fn bad_secrets_are_named_by_position_never_by_value() {
        let e = Signer::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw hunter2").unwrap_err();
        assert!(e.contains("secret 2") && !e.contains("hunter2"), "{e}");
        let e = Signer::new("whsec_!!!").unwrap_err();
        assert!(e.contains("base64"), "{e}");
        let e = Signer::new("whsec_AAAA").unwrap_err();
        assert!(e.contains("24 to 64"), "{e}");
        assert!(Signer::new("  ").is_err());
    }
}
