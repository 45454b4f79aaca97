//! The keys a Standard Webhooks receiver verifies with: HMAC secrets for `v1`
//! signatures and ed25519 public keys for `v1a` ones (the asymmetric scheme), and the
//! sender's side of `v1a`.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::decode_secret;
use crate::{ConfigError, Secrets, secret::Digest};

/// The prefix of a Standard Webhooks ed25519 public key (`v1a`): what a receiver
/// verifies with.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// The prefix of a Standard Webhooks ed25519 signing key (`v1a`): the sender's
/// private key, the base64 of a 32-byte seed.
pub const SIGNING_KEY_PREFIX: &str = "whsk_";

/// The `whpk_` public key of a `whsk_` signing key (the prefix may be left out).
///
/// ```
/// use hookwise_core::standard_webhooks::public_key;
///
/// let signing = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=";
/// assert!(public_key(signing)?.starts_with("whpk_"));
/// assert!(public_key("whsk_short").is_err());
/// # Ok::<(), hookwise_core::ConfigError>(())
/// ```
pub fn public_key(signing_key: &str) -> Result<String, ConfigError> {
    let key = decode_signing_key(signing_key)?;
    Ok(format!(
        "{PUBLIC_KEY_PREFIX}{}",
        BASE64.encode(key.verifying_key().as_bytes())
    ))
}

/// Decodes a `whsk_<base64 of a 32-byte seed>` signing key; the prefix is optional.
pub(crate) fn decode_signing_key(key: &str) -> Result<SigningKey, ConfigError> {
    let encoded = key.strip_prefix(SIGNING_KEY_PREFIX).unwrap_or(key);
    let seed: [u8; 32] = decode_32(encoded).ok_or(ConfigError::InvalidSecret(
        "a Standard Webhooks signing key is whsk_ followed by the base64 of 32 bytes",
    ))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Decodes a `whpk_<base64 of 32 bytes>` public key; the prefix is required, since a
/// bare base64 string is taken for a `whsec_` secret.
fn decode_public_key(key: &str) -> Result<VerifyingKey, ConfigError> {
    let invalid = ConfigError::InvalidSecret(
        "a Standard Webhooks public key is whpk_ followed by the base64 of an ed25519 key",
    );
    let bytes = key
        .strip_prefix(PUBLIC_KEY_PREFIX)
        .and_then(decode_32)
        .ok_or(invalid.clone())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| invalid)
}

fn decode_32(encoded: &str) -> Option<[u8; 32]> {
    BASE64.decode(encoded).ok()?.try_into().ok()
}

/// The `v1a,<base64>` entry of the ed25519 signature of `parts`, concatenated.
pub(crate) fn sign_v1a(signing_key: &str, parts: &[&[u8]]) -> Result<String, ConfigError> {
    let key = decode_signing_key(signing_key)?;
    let signature = key.sign(&parts.concat());
    Ok(format!("v1a,{}", BASE64.encode(signature.to_bytes())))
}

/// Decodes the base64 of a 64-byte ed25519 signature (88 characters, padded).
pub(crate) fn decode_v1a(text: &str) -> Option<Signature> {
    if text.len() != 88 {
        return None;
    }
    let bytes: [u8; 64] = BASE64.decode(text).ok()?.try_into().ok()?;
    Some(Signature::from_bytes(&bytes))
}

/// A receiver's keys, each with its place in the list it was given (the index a
/// match reports, for rotation).
#[derive(Clone)]
pub(crate) struct Keys {
    /// HMAC secrets for `v1`, and where each was in the list.
    hmac: Option<(Secrets, Vec<usize>)>,
    /// Public keys for `v1a`, and where each was in the list.
    public: Vec<(usize, VerifyingKey)>,
}

impl Keys {
    /// From `whsec_` secrets (or bare base64) and `whpk_` public keys, in any mix.
    /// A `whsk_` signing key is refused: it is the sender's private key.
    pub(crate) fn decode<I, S>(encoded: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let (mut hmac, mut places, mut public) = (Vec::new(), Vec::new(), Vec::new());
        for (place, key) in encoded.into_iter().enumerate() {
            let key = key.as_ref();
            if key.starts_with(PUBLIC_KEY_PREFIX) {
                public.push((place, decode_public_key(key)?));
            } else if key.starts_with(SIGNING_KEY_PREFIX) {
                return Err(ConfigError::InvalidSecret(
                    "a whsk_ key is the sender's private signing key: give the receiver \
                     its whpk_ public key",
                ));
            } else {
                hmac.push(decode_secret(key)?);
                places.push(place);
            }
        }
        if hmac.is_empty() && public.is_empty() {
            return Err(ConfigError::NoSecrets);
        }
        let hmac = match hmac.is_empty() {
            true => None,
            false => Some((Secrets::new(hmac)?, places)),
        };
        Ok(Self { hmac, public })
    }

    /// Decoded HMAC keys only, in order.
    pub(crate) fn hmac(secrets: Secrets) -> Self {
        let places = (0..secrets.len()).collect();
        Self {
            hmac: Some((secrets, places)),
            public: Vec::new(),
        }
    }

    /// The HMAC secrets, if any.
    pub(crate) fn hmac_secrets(&self) -> Option<&Secrets> {
        self.hmac.as_ref().map(|(secrets, _)| secrets)
    }

    /// Whether `v1` entries can be checked.
    pub(crate) fn has_hmac(&self) -> bool {
        self.hmac.is_some()
    }

    /// Whether `v1a` entries can be checked.
    pub(crate) fn has_public(&self) -> bool {
        !self.public.is_empty()
    }

    /// The place of the first key under which a signature of `signed` verifies:
    /// each HMAC secret against every `v1` digest in constant time, then each public
    /// key against every `v1a` signature (strict verification: no malleable
    /// signatures, no weak keys).
    pub(crate) fn verify(
        &self,
        signed: &[&[u8]],
        v1: &[Digest],
        v1a: &[Signature],
    ) -> Option<usize> {
        if let Some((secrets, places)) = &self.hmac
            && !v1.is_empty()
            && let Some(index) = secrets.verify(signed, v1)
        {
            return Some(places[index]);
        }
        if v1a.is_empty() {
            return None;
        }
        let message = signed.concat();
        self.public
            .iter()
            .find(|(_, key)| {
                v1a.iter()
                    .any(|signature| key.verify_strict(&message, signature).is_ok())
            })
            .map(|(place, _)| *place)
    }
}
