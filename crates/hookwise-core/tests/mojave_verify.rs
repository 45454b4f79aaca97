//! Mojave signature verification and payload-timestamp replay defence.

use std::time::Duration;

use bytes::Bytes;
use hookwise_core::{Mojave, Provider, RejectionKind, Secrets, mojave::SIGNATURE_HEADER, sign};
use http::{HeaderMap, HeaderValue};

mod window;
use window::Window;

const SECRET: &str = "It's a Secret to Everybody";
const VECTOR_BODY: &[u8] = b"Hello, World!";
const VECTOR: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
const NOW: u64 = 1_712_742_800;

fn headers(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(value).expect("header value"),
    );
    headers
}

fn mojave() -> Mojave {
    Mojave::new(SECRET).expect("valid secret")
}

fn verify(value: &str, body: &[u8]) -> Result<usize, RejectionKind> {
    mojave()
        .verify(&headers(value), body, Duration::from_secs(NOW))
        .map(|v| v.secret_index())
        .map_err(|r| r.kind())
}

fn event(timestamp: i64) -> Bytes {
    Bytes::from(format!(
        r#"{{"type":"time_entry.created","timestamp":{timestamp},"data":{{"id":"te_1"}}}}"#
    ))
}

#[test]
fn reference_vector_verifies() {
    assert_eq!(verify(VECTOR, VECTOR_BODY), Ok(0));
    assert_eq!(sign::mojave(SECRET.as_bytes(), VECTOR_BODY).value(), VECTOR);
}

#[test]
fn sha256_prefix_and_upper_case_verify() {
    assert_eq!(verify(&format!("sha256={VECTOR}"), VECTOR_BODY), Ok(0));
    assert_eq!(verify(&VECTOR.to_ascii_uppercase(), VECTOR_BODY), Ok(0));
    assert_eq!(
        verify(
            &format!("sha256={}", VECTOR.to_ascii_uppercase()),
            VECTOR_BODY
        ),
        Ok(0)
    );
}

#[test]
fn tampered_body_is_a_mismatch() {
    assert_eq!(
        verify(VECTOR, b"Hello, World?"),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn wrong_secret_is_a_mismatch() {
    let value = sign::mojave(b"another secret", VECTOR_BODY)
        .value()
        .to_owned();
    assert_eq!(
        verify(&value, VECTOR_BODY),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn missing_or_empty_header_is_missing() {
    let err = mojave()
        .verify(&HeaderMap::new(), VECTOR_BODY, Duration::from_secs(NOW))
        .expect_err("no header");
    assert_eq!(err.kind(), RejectionKind::SignatureMissing);
    assert_eq!(
        verify("", VECTOR_BODY),
        Err(RejectionKind::SignatureMissing)
    );
}

#[test]
fn other_shapes_are_malformed() {
    for value in [
        "sha256=".to_owned(),
        VECTOR[..63].to_owned(),
        format!("{VECTOR}0"),
        VECTOR.replace('e', "x"),
        format!("sha1={VECTOR}"),
        format!("sha256=sha256={VECTOR}"),
        format!("v1={VECTOR}"),
    ] {
        assert_eq!(
            verify(&value, VECTOR_BODY),
            Err(RejectionKind::SignatureMalformed),
            "{value}"
        );
    }
}

#[test]
fn rotation_reports_which_secret_matched() {
    let rotating = Mojave::with_secrets(Secrets::new(["new", SECRET]).expect("valid"));
    let verified = rotating
        .verify(&headers(VECTOR), VECTOR_BODY, Duration::from_secs(NOW))
        .expect("old secret accepted");
    assert_eq!(verified.secret_index(), 1);
    assert_eq!(verified.signed_timestamp(), None);
}

#[test]
fn payload_max_age_is_24_hours_by_default() {
    let mojave = mojave();
    let parse = |timestamp: i64| {
        let body = event(timestamp);
        mojave
            .parse(&HeaderMap::new(), &body, Duration::from_secs(NOW))
            .map(|e| e.timestamp())
            .map_err(|r| r.kind())
    };
    let now = NOW as i64;
    assert_eq!(parse(now - 24 * 3600), Ok(now - 24 * 3600));
    assert_eq!(
        parse(now - 24 * 3600 - 1),
        Err(RejectionKind::TimestampTooOld)
    );
    assert_eq!(parse(now + 300), Ok(now + 300));
    assert_eq!(parse(now + 301), Err(RejectionKind::TimestampTooNew));
    assert_eq!(parse(i64::MIN), Err(RejectionKind::TimestampTooOld));
    assert_eq!(parse(i64::MAX), Err(RejectionKind::TimestampTooNew));
}

#[test]
fn max_age_is_configurable() {
    let mojave = mojave().max_age(Duration::from_secs(60)).expect("non-zero");
    let body = event(NOW as i64 - 61);
    let err = mojave
        .parse(&HeaderMap::new(), &body, Duration::from_secs(NOW))
        .expect_err("too old");
    assert_eq!(err.kind(), RejectionKind::TimestampTooOld);
    assert!(
        Mojave::new(SECRET)
            .expect("valid")
            .max_age(Duration::ZERO)
            .is_err()
    );
}

#[test]
fn default_dedupe_key_is_the_body_sha256() {
    let mojave = mojave();
    let body = event(NOW as i64);
    let parsed = mojave
        .parse(&HeaderMap::new(), &body, Duration::from_secs(NOW))
        .expect("valid");
    let key = mojave.dedupe_key(&parsed, &body);
    assert_eq!(key.len(), 64);
    assert_eq!(
        key,
        mojave.dedupe_key(&parsed, &body.clone()),
        "a retry has the same key"
    );
    let other = event(NOW as i64 - 1);
    assert_ne!(
        key,
        mojave.dedupe_key(&parsed, &other),
        "distinct bodies, distinct keys"
    );
    // The SHA-256 of "abc" (FIPS 180-2), so the key is the documented digest.
    assert_eq!(
        mojave.dedupe_key(&parsed, b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn custom_dedupe_key_is_used() {
    let mojave = mojave()
        .dedupe_key_with(|event, _| format!("{}@{}", event.event_type(), event.timestamp()));
    let body = event(NOW as i64);
    let parsed = mojave
        .parse(&HeaderMap::new(), &body, Duration::from_secs(NOW))
        .expect("valid");
    assert_eq!(
        mojave.dedupe_key(&parsed, &body),
        format!("time_entry.created@{NOW}")
    );
}

#[test]
fn empty_secret_is_refused_at_construction() {
    assert!(Mojave::new("").is_err());
}

#[test]
fn debug_never_shows_the_secret() {
    let shown = format!("{:?}", mojave());
    assert!(!shown.contains("Secret to Everybody"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

// Issue item 5: one payload `timestamp` is accepted from `timestamp - tolerance` to
// the last millisecond of the second `timestamp + max_age` (`now` is compared in whole
// seconds), and the receiver must refuse a store that forgets a delivery sooner.

#[test]
fn replay_window_is_the_whole_time_one_payload_timestamp_is_accepted() {
    let secs = Duration::from_secs;
    let body = event(NOW as i64);
    let headers = headers(sign::mojave(SECRET.as_bytes(), &body).value());
    for (max_age, tolerance) in [(24 * 3600, 300), (60, 10), (60, 0)] {
        let mojave = mojave()
            .max_age(secs(max_age))
            .expect("non-zero")
            .tolerance(secs(tolerance));
        let window = Window::payload(NOW, max_age, tolerance);
        window::accepted_exactly_in(&mojave, &headers, &body, window);
        assert_eq!(mojave.replay_window(), secs(max_age + tolerance + 1));
    }
}

#[test]
fn a_replay_after_retention_equal_to_the_max_age_is_refused_at_construction() {
    // 24 h max age, 300 s tolerance: a payload is first seen 300 s before its
    // timestamp and accepted until 24 h after it.
    let (day, secs) = (24 * 3600, Duration::from_secs);
    let (whole, shorter) = (secs(day + 301), [secs(day), secs(day + 300)]);
    window::retention_must_cover(mojave, "mojave", whole, &shorter);
}
