//! Webhook secrets, HMAC-SHA256, and the constant-time comparison.
//!
//! A [`Secrets`] is the non-empty, ordered list of secrets a provider accepts: the
//! current one first, then any being rotated out. Each secret is kept as a keyed HMAC
//! state, so a verification never re-derives the key, and nothing here ever formats a
//! secret: `Debug` prints `[redacted]`.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{ConfigError, hex::DIGEST_LEN};

/// An HMAC-SHA256 tag: 32 bytes.
pub type Digest = [u8; DIGEST_LEN];

/// Decodes a hex HMAC-SHA256 tag: exactly 64 hex digits of either case; `None` for
/// anything else (never panics).
pub fn decode_hex_digest(text: &str) -> Option<Digest> {
    crate::hex::decode_digest(text)
}

/// One secret, ready to sign: the HMAC key schedule is computed once.
#[derive(Clone)]
pub(crate) struct SigningKey(Hmac<Sha256>);

impl SigningKey {
    /// Keys HMAC-SHA256 with the secret's bytes, used verbatim. Any length is a valid
    /// HMAC key; refusing empty secrets is [`Secrets`]' job, so a signer can still
    /// produce what a misconfigured sender would.
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self(
            <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length")),
        )
    }

    /// The HMAC of the concatenation of `parts`, without copying them together.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> Digest {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The secrets a provider accepts, in order: the current one first, then older ones
/// kept during a rotation.
///
/// A delivery verifies when any of its signatures matches under any of these secrets;
/// the receiver reports which one matched ([`crate::Verified::secret_index`]), so you
/// can tell when the old secret is no longer in use and drop it.
///
/// Secrets are the UTF-8 bytes of the string the provider shows, used verbatim (no
/// base64 decoding). An empty secret, or an empty list, is a [`ConfigError`].
///
/// ```
/// use hookwise_core::Secrets;
///
/// let secrets = Secrets::new(["new_secret", "old_secret"])?;
/// assert_eq!(secrets.len(), 2);
/// assert_eq!(format!("{secrets:?}"), "Secrets([redacted; 2])");
/// assert!(Secrets::new([""]).is_err());
/// # Ok::<(), hookwise_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Secrets {
    keys: Vec<SigningKey>,
    /// Per secret, what it looks like when it is another kind of key (its prefix
    /// only; nothing of the secret is kept).
    looks_like: Vec<Option<&'static str>>,
}

impl Secrets {
    /// Builds the list from one or more secrets, current first.
    pub fn new<I, S>(secrets: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let (mut keys, mut looks_like) = (Vec::new(), Vec::new());
        for secret in secrets {
            match secret.as_ref() {
                [] => return Err(ConfigError::EmptySecret),
                secret => {
                    keys.push(SigningKey::new(secret));
                    looks_like.push(crate::diagnosis::looks_like(secret));
                }
            }
        }
        if keys.is_empty() {
            return Err(ConfigError::NoSecrets);
        }
        Ok(Self { keys, looks_like })
    }

    /// The secrets that look like another kind of key (a Stripe `sk_` API key, a
    /// GitHub token...), by place, as [`Diagnosis::WrongKindOfSecret`](crate::Diagnosis::WrongKindOfSecret).
    ///
    /// ```
    /// use hookwise_core::{Diagnosis, Secrets};
    ///
    /// let secrets = Secrets::new(["whsec_ok", "sk_live_oops"])?;
    /// let found: Vec<_> = secrets.wrong_kinds().collect();
    /// assert!(matches!(found[..], [Diagnosis::WrongKindOfSecret { secret: 1, .. }]));
    /// # Ok::<(), hookwise_core::ConfigError>(())
    /// ```
    pub fn wrong_kinds(&self) -> impl Iterator<Item = crate::Diagnosis> + '_ {
        self.looks_like
            .iter()
            .enumerate()
            .filter_map(|(secret, looks_like)| {
                looks_like
                    .map(|looks_like| crate::Diagnosis::WrongKindOfSecret { secret, looks_like })
            })
    }

    /// How many secrets are accepted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always `false`: a `Secrets` holds at least one secret.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The index of the first secret under which any of `signatures` is the
    /// HMAC-SHA256 of the concatenation of `signed_parts`; `None` when none matches.
    ///
    /// One HMAC is computed per secret and compared with every signature in constant
    /// time (`subtle`), so the time taken does not depend on where a forged signature
    /// differs. This is the check both built-in providers use; a provider of your own
    /// can use it too.
    ///
    /// ```
    /// use hookwise_core::{Secrets, sign};
    ///
    /// let secrets = Secrets::new(["current", "previous"])?;
    /// // A sender still signing with the previous secret.
    /// let header = sign::mojave(b"previous", b"body");
    /// let signature = hookwise_core::secret::decode_hex_digest(header.value()).unwrap();
    /// assert_eq!(secrets.verify(&[b"body"], &[signature]), Some(1));
    /// assert_eq!(secrets.verify(&[b"tampered"], &[signature]), None);
    /// # Ok::<(), hookwise_core::ConfigError>(())
    /// ```
    pub fn verify(&self, signed_parts: &[&[u8]], signatures: &[Digest]) -> Option<usize> {
        self.keys.iter().position(|key| {
            let expected = key.sign(signed_parts);
            // Fold without short-circuit: every signature is compared.
            signatures
                .iter()
                .fold(subtle::Choice::from(0), |found, signature| {
                    found | expected.ct_eq(signature)
                })
                .into()
        })
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets([redacted; {}])", self.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    #[test]
    fn github_reference_vector() {
        // PROVIDERS.md, body-only hex (GitHub's published example).
        let key = SigningKey::new(b"It's a Secret to Everybody");
        assert_eq!(
            hex::encode(&key.sign(&[b"Hello, World!"])),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn parts_are_signed_as_their_concatenation() {
        let key = SigningKey::new(b"k");
        assert_eq!(key.sign(&[b"12", b".", b"{}"]), key.sign(&[b"12.{}"]));
    }

    #[test]
    fn reports_which_secret_matched() {
        let secrets = Secrets::new(["current", "previous"]).expect("valid");
        let old = SigningKey::new(b"previous").sign(&[b"body"]);
        let other = SigningKey::new(b"other").sign(&[b"body"]);
        assert_eq!(secrets.verify(&[b"body"], &[other, old]), Some(1));
        assert_eq!(secrets.verify(&[b"body"], &[other]), None);
        assert_eq!(secrets.verify(&[b"body"], &[]), None);
    }

    #[test]
    fn empty_secrets_are_refused() {
        assert_eq!(Secrets::new([""]).err(), Some(ConfigError::EmptySecret));
        assert_eq!(
            Secrets::new(Vec::<String>::new()).err(),
            Some(ConfigError::NoSecrets)
        );
        assert_eq!(
            Secrets::new(["ok", ""]).err(),
            Some(ConfigError::EmptySecret)
        );
    }
}
