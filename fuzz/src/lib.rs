//! The checks behind the fuzz targets: one function per target.
//!
//! Each function takes the fuzzer's bytes, runs them through hookwise-core's public
//! API and panics when an invariant breaks; a panic is what libFuzzer reports as a
//! finding. `crates/hookwise-core/tests/fuzz_corpus.rs` includes this very file and
//! runs every committed corpus input (`fuzz/corpus/<target>/`) through the same
//! functions, so `cargo test` replays the corpus and every regression input in it.
//!
//! This file is included as a module by that test: no crate-level attributes here.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::Bytes;
use hookwise_core::{
    Hoursmith, ManualClock, MemoryStore, Mojave, Outcome, Provider, Receiver, RejectionKind,
    Secrets,
    hoursmith::{MAX_SIGNATURES, SignatureHeader},
    secret::decode_hex_digest,
    sign,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The secrets the receivers under test accept: the current one, then one being
/// rotated out.
pub const SECRETS: [&str; 2] = ["whsec_fuzz_current", "whsec_fuzz_previous"];

/// The receivers' clock, in Unix seconds (2024-06-05T16:00:00Z).
pub const NOW: u64 = 1_717_603_200;

/// A small body limit, so that short inputs reach `413` too.
pub const BODY_LIMIT: usize = 2048;

/// Target `hoursmith_header`: the input, as UTF-8, is a `Hoursmith-Signature` value.
///
/// Parsing never panics; an error is always `signature_malformed`; a parsed header
/// has a `t` of plain digits that fits a `u64`, 1 to 16 signatures each found in the
/// input, and survives a round trip through its canonical form.
pub fn hoursmith_header(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let header = match SignatureHeader::parse(value) {
        Ok(header) => header,
        Err(rejection) => {
            assert_eq!(rejection.kind(), RejectionKind::SignatureMalformed);
            return;
        }
    };
    let t = header.timestamp_text();
    assert!(
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()),
        "t = {t:?}"
    );
    assert_eq!(t.parse::<u64>().ok(), Some(header.timestamp()));
    assert!((1..=MAX_SIGNATURES).contains(&header.signature_count()));
    let lower = value.to_ascii_lowercase();
    let mut canonical = format!("t={t}");
    for signature in header.signatures() {
        let hex = hex(signature);
        assert!(
            lower.contains(&format!("v1={hex}")),
            "v1={hex} not in input"
        );
        canonical.push_str(",v1=");
        canonical.push_str(&hex);
    }
    assert_eq!(SignatureHeader::parse(&canonical).as_ref(), Ok(&header));
}

/// Target `mojave_signature`: the input up to the first `\n` is the
/// `X-Mojave-Signature` value, the rest is the body.
///
/// `Mojave::verify` never panics, and its answer matches an independent reading of
/// PROVIDERS.md: missing when absent or blank, malformed unless visible ASCII of the
/// form `[sha256=]<64 hex digits>`, valid exactly when those digits are the HMAC of
/// the body, a mismatch otherwise.
pub fn mojave_signature(data: &[u8]) {
    let (value, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    let sent = HeaderValue::from_bytes(value).ok();
    if let Some(sent) = &sent {
        headers.insert(hookwise_core::mojave::SIGNATURE_HEADER, sent.clone());
    }
    let mojave = Mojave::new(SECRETS[0]).expect("a valid secret");
    let got = mojave
        .verify(&headers, body, Duration::from_secs(NOW))
        .map(|verified| verified.secret_index())
        .map_err(|rejection| rejection.kind());

    let expected = match sent.as_ref().map(HeaderValue::as_bytes) {
        None => Err(RejectionKind::SignatureMissing),
        Some(bytes)
            if bytes
                .iter()
                .any(|b| !(b' '..=b'~').contains(b) && *b != b'\t') =>
        {
            Err(RejectionKind::SignatureMalformed)
        }
        Some(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let text = text.trim_matches([' ', '\t']);
            let digits = text.strip_prefix("sha256=").unwrap_or(text);
            let is_digest = digits.len() == 64 && digits.bytes().all(|b| b.is_ascii_hexdigit());
            assert_eq!(decode_hex_digest(digits).is_some(), is_digest, "{digits:?}");
            if text.is_empty() {
                Err(RejectionKind::SignatureMissing)
            } else if !is_digest {
                Err(RejectionKind::SignatureMalformed)
            } else if digits.eq_ignore_ascii_case(sign::mojave(SECRETS[0].as_bytes(), body).value())
            {
                Ok(0)
            } else {
                Err(RejectionKind::SignatureMismatch)
            }
        }
    };
    assert_eq!(got, expected, "value {:?}", String::from_utf8_lossy(value));
}

/// Target `receive`: one delivery, end to end through `Receiver::receive`.
///
/// The input is a mode byte, then header lines (`name: value\n`) up to an empty line,
/// then the body, like an HTTP/1 request without its request line. The mode byte:
///
/// - bit 0: the provider, Hoursmith (0) or Mojave (1);
/// - bit 1: sign the body like the provider would (else only the input's headers,
///   which cannot carry a valid signature);
/// - bit 2: sign with the rotated-out secret instead of the current one;
/// - bits 3–7: the signed Hoursmith `t`, from 640 s before to 600 s after now.
///
/// Invariants: no panic; a rejection has the contract's status, code and body, and
/// never carries a secret or the expected signature; nothing rejected, skipped or
/// unsigned touches the dedupe store; an accepted delivery was signed in tolerance,
/// reports the secret that signed it, keeps the raw body, and its redelivery is a
/// duplicate (in flight, then processed after commit).
pub fn receive(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (head, body) = split_head(rest);
    let mut headers = parse_headers(head);
    let body = Bytes::copy_from_slice(body);
    let signed = mode & 0b10 != 0;
    let secret_index = usize::from(mode & 0b100 != 0);
    let secret = SECRETS[secret_index].as_bytes();
    let skew = i64::from(mode >> 3) * 40 - 640;
    let t = NOW.saturating_add_signed(skew);

    if mode & 1 == 0 {
        if signed {
            sign::hoursmith(secret, t, &body).insert_into(&mut headers);
        }
        let provider = Hoursmith::with_secrets(secrets()).drop_test_events(true);
        let expected = (signed && skew.abs() <= 300).then_some(secret_index);
        check_receive(provider, &headers, body, expected, Some(t));
    } else {
        if signed {
            sign::mojave(secret, &body).insert_into(&mut headers);
        }
        let expected = signed.then_some(secret_index);
        check_receive(
            Mojave::with_secrets(secrets()),
            &headers,
            body,
            expected,
            None,
        );
    }
}

/// `expected_secret`: `Some(i)` when the delivery is signed with secret `i` (within
/// tolerance), `None` when it must not verify.
fn check_receive<P: Provider>(
    provider: P,
    headers: &HeaderMap,
    body: Bytes,
    expected_secret: Option<usize>,
    signed_at: Option<u64>,
) {
    let clock = ManualClock::at_unix_secs(NOW);
    let store = MemoryStore::new().clock(clock.clone());
    let receiver = Receiver::new(provider, store)
        .expect("retention covers the replay window")
        .body_limit(BODY_LIMIT)
        .expect("a positive limit")
        .clock(clock);

    let outcome = match block_on(receiver.receive(headers, body.clone())) {
        Ok(outcome) => outcome,
        Err(rejection) => {
            let kind = rejection.kind();
            let status = rejection.status().as_u16();
            assert!(
                matches!(status, 400 | 401 | 413),
                "{kind} answered {status}"
            );
            assert_eq!(status == 413, body.len() > BODY_LIMIT, "{kind}");
            if expected_secret.is_some() && body.len() <= BODY_LIMIT {
                // Signed in tolerance: only the envelope (or Mojave's payload
                // timestamp) can be refused.
                assert!(
                    matches!(
                        kind,
                        RejectionKind::InvalidPayload
                            | RejectionKind::TimestampTooOld
                            | RejectionKind::TimestampTooNew
                    ),
                    "a signed delivery refused with {kind}"
                );
            }
            assert_eq!(
                rejection.body(),
                format!(r#"{{"error":"{}"}}"#, kind.code())
            );
            // What an adapter logs: no secret, and no digest (expected or sent).
            let logged = rejection.to_string();
            for secret in SECRETS {
                assert!(!logged.contains(secret), "a secret in {logged:?}");
            }
            let longest_hex_run = logged
                .split(|c: char| !c.is_ascii_hexdigit())
                .map(str::len)
                .max();
            assert!(longest_hex_run < Some(64), "a digest in {logged:?}");
            assert_eq!(
                receiver.store().stats().keys,
                0,
                "a rejected delivery was stored"
            );
            return;
        }
    };
    let Some(secret_index) = expected_secret else {
        panic!("an unsigned delivery was answered {}", outcome.label());
    };
    let delivery = match &outcome {
        Outcome::Accepted { delivery, .. } | Outcome::Skipped(delivery) => delivery,
        Outcome::Duplicate { .. } => panic!("a first delivery was a duplicate"),
    };
    assert_eq!(delivery.verified().secret_index(), secret_index);
    assert_eq!(delivery.verified().signed_timestamp(), signed_at);
    assert_eq!(delivery.raw_body(), &body);
    let Outcome::Accepted { claim, .. } = &outcome else {
        assert_eq!(
            receiver.store().stats().keys,
            0,
            "a skipped event was stored"
        );
        return;
    };
    let again = |receiver: &Receiver<P, MemoryStore>| match block_on(
        receiver.receive(headers, body.clone()),
    ) {
        Ok(Outcome::Duplicate { state, .. }) => state,
        other => panic!("a redelivery was {other:?}"),
    };
    assert_eq!(again(&receiver), hookwise_core::Duplicate::InFlight);
    block_on(receiver.commit(claim)).expect("the memory store does not fail");
    assert_eq!(again(&receiver), hookwise_core::Duplicate::Processed);
    let stats = receiver.store().stats();
    assert_eq!((stats.keys, stats.claims, stats.duplicates), (1, 1, 2));
}

fn secrets() -> Secrets {
    Secrets::new(SECRETS).expect("valid secrets")
}

/// Splits at the first empty line (`\n\n` or `\r\n\r\n`): header lines, then body.
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for (separator, len) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
        if let Some(at) = data.windows(len).position(|w| w == separator) {
            return (&data[..at], &data[at + len..]);
        }
    }
    (data, &[])
}

/// `name: value` lines; a line that is not a valid header is skipped, a repeated
/// name is appended (so repeated signature headers are reachable).
fn parse_headers(head: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii_start();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls a future that never waits (every `MemoryStore` operation is ready at once).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
