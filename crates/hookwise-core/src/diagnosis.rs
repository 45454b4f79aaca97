//! Why a delivery failed verification (or only just passed it), for the operator:
//! logs, [`Stats`](https://docs.rs/hookwise-runtime) and the CLI, never the response.
//!
//! The usual causes of "the signature does not match" (stripe-node #356 lists them)
//! are on the receiving side: a framework or proxy that parsed the JSON and handed
//! on a re-encoded body, an API key configured where the webhook secret belongs, a
//! clock that drifted, a sender still signing with a secret being retired. A
//! [`Receiver`](crate::Receiver) with [`diagnostics`](crate::Receiver::diagnostics)
//! on looks for them and attaches what it finds to the rejection
//! ([`Rejection::diagnoses`](crate::Rejection::diagnoses)); the runtime logs them
//! and counts them.

use std::fmt;

/// One finding about a delivery's verification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnosis {
    /// The body does not verify as received, but does once re-encoded `how`: it
    /// parses as JSON, and something between the sender and here (a body parser, a
    /// proxy) re-serialised it, so the bytes differ from those signed. Verify the raw
    /// bytes, before any JSON parsing.
    ReencodedBody {
        /// The re-encoding that verifies (`"without whitespace"`, ...).
        how: &'static str,
    },
    /// A configured secret looks like another kind of key (e.g. a Stripe `sk_` API
    /// key where the `whsec_` webhook signing secret belongs).
    WrongKindOfSecret {
        /// Its place among the secrets (0: the first).
        secret: usize,
        /// What it looks like.
        looks_like: &'static str,
    },
    /// Only a secret after the first matched: the sender still signs with a secret
    /// you are retiring.
    RetiredSecret {
        /// Its place among the secrets.
        secret: usize,
    },
    /// The signed (or payload) timestamp is this many seconds behind this server's
    /// clock (ahead when negative).
    ClockSkew {
        /// `now - timestamp`, in seconds.
        seconds: i64,
    },
}

impl Diagnosis {
    /// A short, stable name: `reencoded_body`, `wrong_kind_of_secret`,
    /// `retired_secret`, `clock_skew`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ReencodedBody { .. } => "reencoded_body",
            Self::WrongKindOfSecret { .. } => "wrong_kind_of_secret",
            Self::RetiredSecret { .. } => "retired_secret",
            Self::ClockSkew { .. } => "clock_skew",
        }
    }

    /// This kind's position among [`LABELS`](Self::LABELS), for counters.
    pub fn index(&self) -> usize {
        match self {
            Self::ReencodedBody { .. } => 0,
            Self::WrongKindOfSecret { .. } => 1,
            Self::RetiredSecret { .. } => 2,
            Self::ClockSkew { .. } => 3,
        }
    }

    /// Every kind's label, in [`index`](Self::index) order.
    pub const LABELS: [&'static str; 4] = [
        "reencoded_body",
        "wrong_kind_of_secret",
        "retired_secret",
        "clock_skew",
    ];
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReencodedBody { how } => write!(
                f,
                "the body verifies once re-encoded {how}: something re-serialised the JSON \
                 before it reached the receiver; verify the raw bytes"
            ),
            Self::WrongKindOfSecret { secret, looks_like } => write!(
                f,
                "secret #{} looks like {looks_like}, not a webhook signing secret",
                secret + 1
            ),
            Self::RetiredSecret { secret } => write!(
                f,
                "only secret #{} matched: the sender still signs with a secret being retired",
                secret + 1
            ),
            Self::ClockSkew { seconds } if *seconds >= 0 => {
                write!(f, "the timestamp is {seconds} s behind this server's clock")
            }
            Self::ClockSkew { seconds } => write!(
                f,
                "the timestamp is {} s ahead of this server's clock",
                seconds.unsigned_abs()
            ),
        }
    }
}

/// What a secret looks like when it is another kind of key, from its prefix; `None`
/// for anything else. Only the prefix is read, and nothing of the secret is kept.
pub(crate) fn looks_like(secret: &[u8]) -> Option<&'static str> {
    const KINDS: [(&[u8], &str); 7] = [
        (b"sk_", "a Stripe secret API key (sk_)"),
        (b"rk_", "a Stripe restricted API key (rk_)"),
        (b"pk_", "a Stripe publishable key (pk_)"),
        (b"whpk_", "a Standard Webhooks ed25519 public key (whpk_)"),
        (b"whsk_", "a Standard Webhooks ed25519 signing key (whsk_)"),
        (b"ghp_", "a GitHub personal access token (ghp_)"),
        (
            b"github_pat_",
            "a GitHub personal access token (github_pat_)",
        ),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| secret.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

/// The re-encodings of a JSON `body` that a re-serialising layer commonly produces,
/// each with its name; only those that differ from `body`. At most five, so a
/// mismatch costs at most five more verifications.
pub(crate) fn reencodings(body: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let mut candidates = vec![
        ("without whitespace", minify(body)),
        ("with Python's separators (\", \" and \": \")", spaced(body)),
        (
            "with sorted keys",
            serde_json::to_vec(&value).unwrap_or_default(),
        ),
        (
            "indented",
            serde_json::to_vec_pretty(&value).unwrap_or_default(),
        ),
    ];
    let trimmed = body.trim_ascii_end();
    candidates.push(if trimmed.len() < body.len() {
        ("without its trailing newline", trimmed.to_vec())
    } else {
        ("with a trailing newline", [body, b"\n"].concat())
    });
    candidates.retain(|(_, candidate)| !candidate.is_empty() && candidate != body);
    candidates
}

/// `body` without the whitespace outside strings.
fn minify(body: &[u8]) -> Vec<u8> {
    relayout(body, b"")
}

/// `body` without the whitespace outside strings, and a space after each `,` and
/// `:` outside them (Python's `json.dumps` layout).
fn spaced(body: &[u8]) -> Vec<u8> {
    relayout(body, b" ")
}

/// `body` with the whitespace outside strings dropped and `after` put after each
/// `,` and `:` outside them; strings are copied as they are.
fn relayout(body: &[u8], after: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 8);
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !b.is_ascii_whitespace() {
            out.push(b);
            match b {
                b'"' => in_string = true,
                b',' | b':' => out.extend_from_slice(after),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reencodings_keep_strings_and_change_only_the_layout() {
        let body = br#"{"b": 1, "a": "x, y: \"z\" ", "c": [1, 2]}"#;
        let found = reencodings(body);
        let named = |how: &str| {
            found
                .iter()
                .find(|(name, _)| name.starts_with(how))
                .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        };
        assert_eq!(
            named("without whitespace").as_deref(),
            Some(r#"{"b":1,"a":"x, y: \"z\" ","c":[1,2]}"#)
        );
        assert_eq!(named("with Python"), None, "it is the body itself");
        assert_eq!(
            named("with sorted keys").as_deref(),
            Some(r#"{"a":"x, y: \"z\" ","b":1,"c":[1,2]}"#)
        );
        assert!(named("with a trailing newline").is_some());
        assert!(reencodings(b"not json").is_empty());
    }

    #[test]
    fn secrets_that_are_other_keys_are_named_by_their_prefix_only() {
        assert_eq!(
            looks_like(b"sk_live_123"),
            Some("a Stripe secret API key (sk_)")
        );
        assert_eq!(looks_like(b"whsec_123"), None);
        assert_eq!(looks_like(b"my secret"), None);
    }
}
