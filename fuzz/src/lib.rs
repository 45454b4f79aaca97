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
    GitHub, Hoursmith, ManualClock, MemoryStore, Mojave, Outcome, Provider, Receiver,
    RejectionKind, Secrets, StandardWebhooks, Stripe,
    hoursmith::{MAX_SIGNATURES, SignatureHeader},
    secret::decode_hex_digest,
    sign, standard_webhooks,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The secrets the receivers under test accept: the current one, then one being
/// rotated out.
pub const SECRETS: [&str; 2] = ["whsec_fuzz_current", "whsec_fuzz_previous"];

/// The receivers' clock, in Unix seconds (2024-06-05T16:00:00Z).
pub const NOW: u64 = 1_717_603_200;

/// The Standard Webhooks HMAC keys, current then previous: what the `whsec_` secrets
/// ([`sw_secret`]) decode to.
pub const SW_KEYS: [&[u8]; 2] = [b"hookwise fuzz current key", b"hookwise fuzz previous key"];

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
    let (value, sent, headers, body) = one_header(data, hookwise_core::mojave::SIGNATURE_HEADER);
    let mojave = Mojave::new(SECRETS[0]).expect("a valid secret");
    let got = mojave
        .verify(&headers, body, Duration::from_secs(NOW))
        .map(|verified| verified.secret_index())
        .map_err(|rejection| rejection.kind());

    let expected = match sent.as_ref().map(HeaderValue::as_bytes) {
        None => Err(RejectionKind::SignatureMissing),
        Some(bytes) if !is_header_text(bytes) => Err(RejectionKind::SignatureMalformed),
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
/// reports the secret that signed it, keeps the raw body, and its redelivery is
/// asked to come back while the claim is provisional (`409 in_progress`), then a
/// duplicate (in flight once confirmed, processed after commit).
pub fn receive(data: &[u8]) {
    let Some((mode, mut headers, body)) = delivery(data) else {
        return;
    };
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

/// Target `standard_webhooks_signature`: a mode byte, then the `webhook-id`, the
/// `webhook-timestamp` and the `webhook-signature` values, one line each (`\n`), then
/// the body. A line that is not a valid header value leaves its header out; a missing
/// line leaves it out too. Mode bit 0 sends the `svix-*` names instead; bit 1 picks
/// the secret for the signer check.
///
/// `StandardWebhooks::verify` (secrets current and previous) never panics, answers 401
/// when it refuses, and agrees with an independent reading of the scheme: signature
/// header absent or blank → missing; anything not visible ASCII, an id or timestamp
/// absent or blank, a timestamp that is not plain digits fitting a `u64`, no usable
/// `v1` (entries without `,`, of another version, or not the canonical padded base64
/// of 32 bytes are skipped) or more than 16 → malformed; then `|now − timestamp| > 300 s` → too old / too new;
/// then valid (first matching secret) exactly when some `v1` is the base64 HMAC of
/// `id.timestamp.body` under a secret's decoded key, else a mismatch. Also: the
/// headers `sign::standard_webhooks` makes for the input's id, timestamp (or now) and
/// body verify under the secret that signed them, when the id can travel as a header.
pub fn standard_webhooks_signature(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut lines = rest.splitn(4, |&b| b == b'\n');
    let id = lines.next();
    let timestamp = lines.next();
    let signature = lines.next();
    let body = lines.next().unwrap_or_default();
    let svix = mode & 1 != 0;
    let names = if svix {
        ["svix-id", "svix-timestamp", "svix-signature"]
    } else {
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
    };
    let mut headers = HeaderMap::new();
    let mut sent = [None, None, None];
    for ((name, value), slot) in names
        .into_iter()
        .zip([id, timestamp, signature])
        .zip(&mut sent)
    {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            *slot = Some(value.as_bytes().to_vec());
            headers.insert(name, value);
        }
    }
    let secrets = sw_secrets();
    let provider = StandardWebhooks::with_encoded_secrets(&secrets).expect("valid secrets");
    let got = provider
        .verify(&headers, body, Duration::from_secs(NOW))
        .map(|verified| {
            assert!(verified.signed_timestamp().is_some());
            verified.secret_index()
        })
        .map_err(|rejection| {
            assert_eq!(rejection.status().as_u16(), 401, "{}", rejection.kind());
            rejection.kind()
        });
    let [id, timestamp, signature] = sent;
    let expected = sw_expected(
        id.as_deref(),
        timestamp.as_deref(),
        signature.as_deref(),
        body,
    );
    assert_eq!(got, expected, "headers {headers:?}");

    // The signer, for the same id (when it can be a header at all) and body.
    let Some(id) = id
        .as_deref()
        .and_then(|id| std::str::from_utf8(id).ok())
        .filter(|id| is_header_text(id.as_bytes()) && !id.is_empty() && id.trim() == *id)
    else {
        return;
    };
    let t = timestamp
        .as_deref()
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(NOW);
    let secret_index = usize::from(mode & 0b10 != 0);
    let signed =
        sign::standard_webhooks(&secrets[secret_index], id, t, body).expect("a valid secret");
    let mut headers = HeaderMap::new();
    for header in &signed {
        let name = if svix {
            header.name().replacen("webhook-", "svix-", 1)
        } else {
            header.name().to_owned()
        };
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        headers.insert(
            name,
            HeaderValue::from_str(header.value()).expect("a header value"),
        );
    }
    let got = provider
        .verify(&headers, body, Duration::from_secs(NOW))
        .map(|verified| (verified.secret_index(), verified.signed_timestamp()))
        .map_err(|rejection| rejection.kind());
    let expected = match i128::from(NOW) - i128::from(t) {
        age if age > 300 => Err(RejectionKind::TimestampTooOld),
        age if age < -300 => Err(RejectionKind::TimestampTooNew),
        _ => Ok((secret_index, Some(t))),
    };
    assert_eq!(got, expected, "signed {signed:?}");
}

/// The Standard Webhooks secrets, `whsec_` and the base64 of [`SW_KEYS`].
pub fn sw_secrets() -> [String; 2] {
    SW_KEYS.map(sw_secret)
}

fn sw_secret(key: &[u8]) -> String {
    let secret = format!("whsec_{}", base64(key));
    assert_eq!(
        standard_webhooks::decode_secret(&secret).as_deref(),
        Ok(key)
    );
    secret
}

/// The answer the Standard Webhooks scheme calls for, read independently of the
/// provider (header values as received, `None` when absent).
fn sw_expected(
    id: Option<&[u8]>,
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
) -> Result<usize, RejectionKind> {
    use RejectionKind::{
        SignatureMalformed as Malformed, SignatureMismatch, SignatureMissing, TimestampTooNew,
        TimestampTooOld,
    };
    let text = header_text;
    let signature = text(signature)?.ok_or(SignatureMissing)?;
    let id = text(id)?.ok_or(Malformed)?;
    let timestamp = text(timestamp)?.ok_or(Malformed)?;
    if !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Malformed);
    }
    let significant = timestamp.trim_start_matches('0');
    if significant.len() > 20 {
        return Err(Malformed);
    }
    let t: u128 = significant.parse().unwrap_or(0);
    if t > u128::from(u64::MAX) {
        return Err(Malformed);
    }
    // Entries it cannot use (no `,`, another version, a `v1` that is not the base64
    // of 32 bytes) are skipped; none usable, or more than 16, is malformed.
    let v1: Vec<&str> = signature
        .split([' ', '\t'])
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, value)| *version == "v1" && is_base64_digest(value))
        .map(|(_, value)| value)
        .collect();
    if v1.is_empty() || v1.len() > 16 {
        return Err(Malformed);
    }
    let age = i128::from(NOW) - t as i128;
    if age > 300 {
        return Err(TimestampTooOld);
    }
    if age < -300 {
        return Err(TimestampTooNew);
    }
    let content = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
    SW_KEYS
        .iter()
        .position(|key| {
            let hex = sign::mojave(key, &content);
            let digest = decode_hex_digest(hex.value()).expect("a digest");
            v1.contains(&base64(&digest).as_str())
        })
        .ok_or(SignatureMismatch)
}

/// A header's text as `single_header` should read it: visible ASCII (tab allowed),
/// without surrounding blanks; `None` when absent or blank.
fn header_text(value: Option<&[u8]>) -> Result<Option<&str>, RejectionKind> {
    match value {
        None => Ok(None),
        Some(bytes) if !is_header_text(bytes) => Err(RejectionKind::SignatureMalformed),
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).expect("ASCII");
            let text = text.trim_matches([' ', '\t']);
            Ok((!text.is_empty()).then_some(text))
        }
    }
}

/// The framing of the one-header targets: the input up to the first `\n` is the value
/// of header `name`, the rest the body. Returns the raw value, the value as sent (when
/// it is a valid header value at all), the headers holding it, and the body.
fn one_header<'d>(
    data: &'d [u8],
    name: &'static str,
) -> (&'d [u8], Option<HeaderValue>, HeaderMap, &'d [u8]) {
    let (value, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    let sent = HeaderValue::from_bytes(value).ok();
    if let Some(sent) = &sent {
        headers.insert(name, sent.clone());
    }
    (value, sent, headers, body)
}

/// What `HeaderValue::to_str` accepts: visible ASCII and tab.
fn is_header_text(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| (b' '..=b'~').contains(b) || *b == b'\t')
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64_ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The canonical base64 of 32 bytes: 43 alphabet characters, the last one carrying
/// no stray bits, then one `=`.
fn is_base64_digest(text: &str) -> bool {
    let bytes = text.as_bytes();
    let index = |c: u8| BASE64_ALPHABET.iter().position(|&a| a == c);
    bytes.len() == 44
        && bytes[43] == b'='
        && bytes[..43].iter().all(|&c| index(c).is_some())
        && index(bytes[42]).is_some_and(|i| i & 3 == 0)
}

/// Target `github_signature`: the input up to the first `\n` is the
/// `X-Hub-Signature-256` value, the rest is the body.
///
/// `GitHub::verify` (secrets current and previous) never panics, answers 401 when it
/// refuses, and agrees with an independent reading: missing when absent or blank,
/// malformed unless visible ASCII of the form `sha256=<64 hex digits>` (after
/// surrounding blanks), valid under the first secret whose hex HMAC of the body the
/// digits are (either case), a mismatch otherwise. `sign::github` always verifies.
pub fn github_signature(data: &[u8]) {
    let (value, sent, headers, body) = one_header(data, hookwise_core::github::SIGNATURE_HEADER);
    let github = GitHub::with_secrets(secrets());
    let got = github
        .verify(&headers, body, Duration::from_secs(NOW))
        .map(|verified| verified.secret_index())
        .map_err(|rejection| {
            assert_eq!(rejection.status().as_u16(), 401, "{}", rejection.kind());
            rejection.kind()
        });

    let expected = match sent.as_ref().map(HeaderValue::as_bytes) {
        None => Err(RejectionKind::SignatureMissing),
        Some(bytes) if !is_header_text(bytes) => Err(RejectionKind::SignatureMalformed),
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).expect("ASCII");
            let text = text.trim_matches([' ', '\t']);
            let digits = text.strip_prefix("sha256=");
            let is_digest =
                digits.is_some_and(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()));
            if text.is_empty() {
                Err(RejectionKind::SignatureMissing)
            } else if !is_digest {
                Err(RejectionKind::SignatureMalformed)
            } else {
                let digits = digits.expect("checked");
                SECRETS
                    .iter()
                    .position(|secret| {
                        let hex = sign::mojave(secret.as_bytes(), body);
                        digits.eq_ignore_ascii_case(hex.value())
                    })
                    .ok_or(RejectionKind::SignatureMismatch)
            }
        }
    };
    assert_eq!(got, expected, "value {:?}", String::from_utf8_lossy(value));

    for (index, secret) in SECRETS.iter().enumerate() {
        let mut headers = HeaderMap::new();
        sign::github(secret.as_bytes(), body).insert_into(&mut headers);
        let got = github.verify(&headers, body, Duration::from_secs(NOW));
        assert_eq!(got.map(|v| v.secret_index()), Ok(index));
    }
}

/// Target `receive_providers`: `receive`'s end-to-end invariants for Stripe, GitHub
/// and Standard Webhooks. The same input layout as `receive`; the mode byte:
///
/// - bits 0–1: Stripe (0), GitHub (1), Standard Webhooks (2), the same with the
///   `svix-*` names (3);
/// - bit 2: sign the body like the provider would (Standard Webhooks: with the
///   input's `webhook-id`, else `msg_fuzz`);
/// - bit 3: sign with the rotated-out secret instead of the current one;
/// - bits 4–7: the signed timestamp, from 640 s before to 560 s after now (Stripe,
///   Standard Webhooks; GitHub signs none).
pub fn receive_providers(data: &[u8]) {
    let Some((mode, mut headers, body)) = delivery(data) else {
        return;
    };
    let signed = mode & 0b100 != 0;
    let secret_index = usize::from(mode & 0b1000 != 0);
    let skew = i64::from(mode >> 4) * 80 - 640;
    let t = NOW.saturating_add_signed(skew);
    let in_tolerance = skew.abs() <= 300;

    match mode & 0b11 {
        0 => {
            if signed {
                sign::stripe(SECRETS[secret_index].as_bytes(), t, &body).insert_into(&mut headers);
            }
            let expected = (signed && in_tolerance).then_some(secret_index);
            check_receive(
                Stripe::with_secrets(secrets()),
                &headers,
                body,
                expected,
                Some(t),
            );
        }
        1 => {
            if signed {
                sign::github(SECRETS[secret_index].as_bytes(), &body).insert_into(&mut headers);
            }
            let expected = signed.then_some(secret_index);
            check_receive(
                GitHub::with_secrets(secrets()),
                &headers,
                body,
                expected,
                None,
            );
        }
        family => {
            let secrets = sw_secrets();
            let mut expected = None;
            if signed {
                let id = headers
                    .get("webhook-id")
                    .and_then(|id| id.to_str().ok())
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .unwrap_or("msg_fuzz")
                    .to_owned();
                let signed = sign::standard_webhooks(&secrets[secret_index], &id, t, &body)
                    .expect("a valid secret");
                for header in &signed {
                    // Replaces every value of the name, so only one of each is sent.
                    let name = if family == 3 {
                        header.name().replacen("webhook-", "svix-", 1)
                    } else {
                        header.name().to_owned()
                    };
                    let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
                    headers.insert(
                        name,
                        HeaderValue::from_str(header.value()).expect("a value"),
                    );
                }
                // Svix names are read only when `webhook-signature` is absent.
                let family_read = family == 2 || !headers.contains_key("webhook-signature");
                expected = (in_tolerance && family_read).then_some(secret_index);
            }
            let provider = StandardWebhooks::with_encoded_secrets(&secrets).expect("valid");
            check_receive(provider, &headers, body, expected, Some(t));
        }
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
            for secret in SECRETS.map(str::to_owned).iter().chain(&sw_secrets()) {
                assert!(!logged.contains(secret.as_str()), "a secret in {logged:?}");
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
        Ok(Outcome::Duplicate { state, .. }) => Ok(state),
        Err(rejection) => Err(rejection.kind()),
        other => panic!("a redelivery was {other:?}"),
    };
    // Provisional, a redelivery is asked to come back; confirmed, it is a
    // duplicate in flight; committed, a processed one.
    assert_eq!(again(&receiver), Err(RejectionKind::InProgress));
    assert!(block_on(receiver.confirm(claim)).expect("the memory store does not fail"));
    assert_eq!(again(&receiver), Ok(hookwise_core::Duplicate::InFlight));
    block_on(receiver.commit(claim)).expect("the memory store does not fail");
    assert_eq!(again(&receiver), Ok(hookwise_core::Duplicate::Processed));
    let stats = receiver.store().stats();
    assert_eq!((stats.keys, stats.claims, stats.duplicates), (1, 1, 3));
}

fn secrets() -> Secrets {
    Secrets::new(SECRETS).expect("valid secrets")
}

/// The framing of the receiver targets: a mode byte, then header lines, an empty
/// line and the body. `None` for an empty input.
fn delivery(data: &[u8]) -> Option<(u8, HeaderMap, Bytes)> {
    let (&mode, rest) = data.split_first()?;
    let (head, body) = split_head(rest);
    Some((mode, parse_headers(head), Bytes::copy_from_slice(body)))
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
