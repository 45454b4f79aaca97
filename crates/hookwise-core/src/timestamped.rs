//! The `t=<unix seconds>,v1=<hex>` signature scheme, shared by Hoursmith and Stripe.
//!
//! Both senders sign the same way: a header such as
//! `Stripe-Signature: t=1492774577,v1=5257a869...` whose `v1` items are the hex
//! HMAC-SHA256 of `t` exactly as sent, a `.`, then the raw body, keyed with the
//! secret's bytes verbatim. Only the header's name differs, so the strict parser
//! ([`SignatureHeader`]) and the verification live here once and both providers call
//! them.
//!
//! A delivery verifies when `|now - t|` is within the tolerance, in both directions,
//! and any `v1` matches under any configured secret (rotation); the matching secret
//! and `t` are reported in [`Verified`].

use std::time::Duration;

use http::HeaderMap;

use crate::{
    Rejection, RejectionKind, Secrets, Verified, hex,
    provider::{check_timestamp, malformed, single_header},
    secret::Digest,
};

/// At most this many `v1` signatures are accepted in one header; each one costs a
/// comparison, and a sender rotating secrets needs two.
pub const MAX_SIGNATURES: usize = 16;

/// A parsed `t=...,v1=...` header (`Hoursmith-Signature`, `Stripe-Signature`).
///
/// Rules (PROVIDERS.md): comma-separated `key=value` items; whitespace around items is
/// tolerated; exactly one `t`, all ASCII digits, fitting a `u64`; one or more `v1`, each
/// 64 hex digits of either case (at most [`MAX_SIGNATURES`]); unknown keys such as `v0`
/// are ignored. Anything else (an empty item, an item without `=`, a second `t`,
/// `t=1=2`, a `v1` that is not a digest) is malformed.
///
/// ```
/// use hookwise_core::timestamped::SignatureHeader;
///
/// let value = format!("t=1492774577, v0=abc, v1={}", "0".repeat(64));
/// let header = SignatureHeader::parse(&value)?;
/// assert_eq!(header.timestamp(), 1492774577);
/// assert_eq!(header.signature_count(), 1);
/// assert!(SignatureHeader::parse("t=1,t=2").is_err());
/// # Ok::<(), hookwise_core::Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader<'a> {
    timestamp_text: &'a str,
    timestamp: u64,
    signatures: Vec<Digest>,
}

impl<'a> SignatureHeader<'a> {
    /// Parses a header value. Never panics; every error is
    /// [`RejectionKind::SignatureMalformed`].
    pub fn parse(value: &'a str) -> Result<Self, Rejection> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for item in value.split(',') {
            let item = item.trim();
            let Some((key, val)) = item.split_once('=') else {
                return Err(malformed("an item is not key=value"));
            };
            match key {
                "t" => {
                    if timestamp.is_some() {
                        return Err(malformed("more than one t"));
                    }
                    timestamp = Some((val, parse_unix_secs(val, "t")?));
                }
                "v1" => {
                    if signatures.len() == MAX_SIGNATURES {
                        return Err(malformed("too many v1 signatures"));
                    }
                    let digest = hex::decode_digest(val)
                        .ok_or_else(|| malformed("a v1 is not 64 hex digits"))?;
                    signatures.push(digest);
                }
                // Other schemes (v0, a future v2) are not ours to judge.
                _ => {}
            }
        }
        let (timestamp_text, timestamp) = timestamp.ok_or_else(|| malformed("no t"))?;
        if signatures.is_empty() {
            return Err(malformed("no v1"));
        }
        Ok(Self {
            timestamp_text,
            timestamp,
            signatures,
        })
    }

    /// The signed timestamp `t`, in Unix seconds.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// `t` exactly as sent: the bytes that were signed.
    pub fn timestamp_text(&self) -> &'a str {
        self.timestamp_text
    }

    /// How many `v1` signatures the header carries.
    pub fn signature_count(&self) -> usize {
        self.signatures.len()
    }

    /// The `v1` signatures, decoded.
    pub fn signatures(&self) -> &[Digest] {
        &self.signatures
    }
}

/// Verifies a delivery signed with the `t=...,v1=...` scheme in the header `name`.
///
/// A missing or empty header is [`RejectionKind::SignatureMissing`]; a header that
/// does not parse is [`RejectionKind::SignatureMalformed`]; `t` further than
/// `tolerance` from `now` is a timestamp rejection; no `v1` matching under any secret
/// is [`RejectionKind::SignatureMismatch`]. The timestamp is checked before any MAC is
/// computed.
pub(crate) fn verify(
    name: &str,
    headers: &HeaderMap,
    secrets: &Secrets,
    tolerance: Duration,
    body: &[u8],
    now: Duration,
) -> Result<Verified, Rejection> {
    let value = single_header(headers, name)?.ok_or(RejectionKind::SignatureMissing)?;
    let header = SignatureHeader::parse(value)?;
    check_timestamp(i128::from(header.timestamp()), now, tolerance, tolerance)?;
    let signed = [header.timestamp_text().as_bytes(), b".", body];
    let index = secrets
        .verify(&signed, header.signatures())
        .ok_or(RejectionKind::SignatureMismatch)?;
    Ok(Verified::new(index).signed_at(header.timestamp()))
}

/// `t` must be plain ASCII digits (no sign, no space) and fit in a `u64`. Also the
/// rule for other schemes' signed Unix timestamps (Standard Webhooks').
/// `what` names the field in the rejection's detail.
pub(crate) fn parse_unix_secs(text: &str, what: &'static str) -> Result<u64, Rejection> {
    let malformed = |problem: &str| {
        Rejection::new(RejectionKind::SignatureMalformed).with_detail(format!("{what} {problem}"))
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("is not an unsigned integer"));
    }
    text.parse().map_err(|_| malformed("overflows a u64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    fn kind(value: &str) -> Option<RejectionKind> {
        SignatureHeader::parse(value).err().map(|r| r.kind())
    }

    #[test]
    fn parses_timestamp_and_all_v1() {
        let value = format!("t=42,v1={},v0={},v1={}", sig('a'), sig('b'), sig('C'));
        let header = SignatureHeader::parse(&value).expect("valid");
        assert_eq!(header.timestamp(), 42);
        assert_eq!(header.timestamp_text(), "42");
        assert_eq!(header.signatures(), &[[0xaa; 32], [0xcc; 32]]);
    }

    #[test]
    fn tolerates_whitespace_around_items() {
        let value = format!(" t=42 ,\tv1={} ", sig('a'));
        assert_eq!(
            SignatureHeader::parse(&value).map(|h| h.timestamp()),
            Ok(42)
        );
    }

    #[test]
    fn duplicate_t_is_malformed() {
        assert_eq!(
            kind(&format!("t=1,t=1,v1={}", sig('a'))),
            Some(RejectionKind::SignatureMalformed)
        );
    }

    #[test]
    fn t_with_two_equals_signs_is_malformed() {
        assert_eq!(
            kind(&format!("t=1=2,v1={}", sig('a'))),
            Some(RejectionKind::SignatureMalformed)
        );
    }

    #[test]
    fn overflowing_or_signed_or_empty_t_is_malformed() {
        for t in [
            "18446744073709551616",
            "99999999999999999999999",
            "+5",
            "-5",
            "",
            " 5",
            "1e3",
        ] {
            assert_eq!(
                kind(&format!("t={t},v1={}", sig('a'))),
                Some(RejectionKind::SignatureMalformed),
                "t={t:?}"
            );
        }
        // The largest u64 parses; the tolerance check rejects it later.
        assert!(SignatureHeader::parse(&format!("t=18446744073709551615,v1={}", sig('a'))).is_ok());
    }

    #[test]
    fn missing_t_or_v1_is_malformed() {
        assert_eq!(
            kind(&format!("v1={}", sig('a'))),
            Some(RejectionKind::SignatureMalformed)
        );
        assert_eq!(kind("t=1"), Some(RejectionKind::SignatureMalformed));
        assert_eq!(
            kind(&format!("t=1,v0={}", sig('a'))),
            Some(RejectionKind::SignatureMalformed)
        );
    }

    #[test]
    fn bad_v1_values_are_malformed() {
        for v1 in [
            String::new(),
            sig('a')[..63].to_owned(),
            sig('a') + "a",
            sig('g'),
        ] {
            assert_eq!(
                kind(&format!("t=1,v1={v1}")),
                Some(RejectionKind::SignatureMalformed),
                "v1={v1:?}"
            );
        }
    }

    #[test]
    fn empty_items_and_items_without_equals_are_malformed() {
        assert_eq!(
            kind(&format!("t=1,v1={},", sig('a'))),
            Some(RejectionKind::SignatureMalformed)
        );
        assert_eq!(
            kind(&format!("t=1,,v1={}", sig('a'))),
            Some(RejectionKind::SignatureMalformed)
        );
        assert_eq!(
            kind(&format!("t=1,junk,v1={}", sig('a'))),
            Some(RejectionKind::SignatureMalformed)
        );
    }

    #[test]
    fn signature_count_is_bounded() {
        let many = |n: usize| {
            let mut value = "t=1".to_owned();
            for _ in 0..n {
                value.push_str(",v1=");
                value.push_str(&sig('a'));
            }
            value
        };
        assert!(SignatureHeader::parse(&many(MAX_SIGNATURES)).is_ok());
        assert_eq!(
            kind(&many(MAX_SIGNATURES + 1)),
            Some(RejectionKind::SignatureMalformed)
        );
    }
}
