//! GitHub signature verification: GitHub's documented vector and every rejection case.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use hookwise_core::{
    ConfigError, Duplicate, GitHub, ManualClock, MemoryStore, Outcome, Provider, Receiver,
    RejectionKind, Secrets,
    github::{DELIVERY_HEADER, EVENT_HEADER, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER},
    sign,
};
use http::{HeaderMap, HeaderValue};

mod window;

// GitHub's documented example: docs.github.com, "Validating webhook deliveries",
// section "Testing the webhook payload validation".
const SECRET: &str = "It's a Secret to Everybody";
const VECTOR_BODY: &[u8] = b"Hello, World!";
const VECTOR: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
const HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
const NOW: u64 = 1_700_000_000;

fn now() -> Duration {
    Duration::from_secs(NOW)
}

fn headers(signature: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(signature) = signature {
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(signature).expect("header value"),
        );
    }
    headers.insert(DELIVERY_HEADER, HeaderValue::from_static(DELIVERY));
    headers.insert(EVENT_HEADER, HeaderValue::from_static("issues"));
    headers
}

fn github() -> GitHub {
    GitHub::new(SECRET).expect("valid secret")
}

fn verify(signature: &str, body: &[u8]) -> Result<usize, RejectionKind> {
    github()
        .verify(&headers(Some(signature)), body, now())
        .map(|v| v.secret_index())
        .map_err(|r| r.kind())
}

#[test]
fn documented_vector_verifies() {
    assert_eq!(verify(VECTOR, VECTOR_BODY), Ok(0));
}

#[test]
fn signer_reproduces_the_documented_vector() {
    let header = sign::github(SECRET.as_bytes(), VECTOR_BODY);
    assert_eq!(header.name(), SIGNATURE_HEADER);
    assert_eq!(header.value(), VECTOR);
}

#[test]
fn upper_case_hex_verifies() {
    assert_eq!(
        verify(&format!("sha256={}", HEX.to_ascii_uppercase()), VECTOR_BODY),
        Ok(0)
    );
}

#[test]
fn no_timestamp_is_reported() {
    let verified = github()
        .verify(&headers(Some(VECTOR)), VECTOR_BODY, now())
        .expect("valid");
    assert_eq!(verified.signed_timestamp(), None);
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
    let value = sign::github(b"another secret", VECTOR_BODY);
    assert_eq!(
        verify(value.value(), VECTOR_BODY),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn missing_header_is_missing() {
    let err = github()
        .verify(&headers(None), VECTOR_BODY, now())
        .expect_err("no header");
    assert_eq!(err.kind(), RejectionKind::SignatureMissing);
}

#[test]
fn empty_header_is_missing() {
    assert_eq!(
        verify("", VECTOR_BODY),
        Err(RejectionKind::SignatureMissing)
    );
}

#[test]
fn legacy_sha1_header_alone_is_missing() {
    let mut headers = headers(None);
    // The SHA-1 HMAC of the vector, as GitHub sends it in X-Hub-Signature.
    headers.insert(
        LEGACY_SIGNATURE_HEADER,
        HeaderValue::from_static("sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"),
    );
    let err = github()
        .verify(&headers, VECTOR_BODY, now())
        .expect_err("SHA-1 is not accepted");
    assert_eq!(err.kind(), RejectionKind::SignatureMissing);
    let detail = err.detail().expect("says why");
    assert!(detail.contains("X-Hub-Signature-256"), "{detail}");
    assert!(!detail.contains("01dc10d0"), "{detail}");
}

#[test]
fn missing_prefix_is_malformed() {
    assert_eq!(
        verify(HEX, VECTOR_BODY),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn other_prefix_is_malformed() {
    for value in [
        format!("sha1={HEX}"),
        format!("SHA256={HEX}"),
        format!("sha256:{HEX}"),
        format!("sha256= {HEX}"),
    ] {
        assert_eq!(
            verify(&value, VECTOR_BODY),
            Err(RejectionKind::SignatureMalformed),
            "{value}"
        );
    }
}

#[test]
fn empty_signature_is_malformed() {
    assert_eq!(
        verify("sha256=", VECTOR_BODY),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn short_signature_is_malformed() {
    assert_eq!(
        verify(&VECTOR[..VECTOR.len() - 2], VECTOR_BODY),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn long_signature_is_malformed() {
    assert_eq!(
        verify(&format!("{VECTOR}00"), VECTOR_BODY),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn non_hex_signature_is_malformed() {
    assert_eq!(
        verify(&VECTOR.replace('e', "x"), VECTOR_BODY),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn repeated_signature_header_is_malformed() {
    let mut headers = headers(Some(VECTOR));
    headers.append(SIGNATURE_HEADER, HeaderValue::from_static(VECTOR));
    let err = github()
        .verify(&headers, VECTOR_BODY, now())
        .expect_err("two headers");
    assert_eq!(err.kind(), RejectionKind::SignatureMalformed);
}

#[test]
fn age_is_not_checked() {
    // GitHub signs no timestamp: the same delivery verifies at any time.
    let github = github();
    for secs in [0, NOW, u64::MAX / 2] {
        assert!(
            github
                .verify(
                    &headers(Some(VECTOR)),
                    VECTOR_BODY,
                    Duration::from_secs(secs)
                )
                .is_ok()
        );
    }
}

#[test]
fn rotation_reports_which_secret_matched() {
    let rotating = GitHub::with_secrets(Secrets::new(["new secret", SECRET]).expect("valid"));
    let verified = rotating
        .verify(&headers(Some(VECTOR)), VECTOR_BODY, now())
        .expect("old secret still accepted");
    assert_eq!(verified.secret_index(), 1);
    let new = sign::github(b"new secret", VECTOR_BODY);
    let verified = rotating
        .verify(&headers(Some(new.value())), VECTOR_BODY, now())
        .expect("valid");
    assert_eq!(verified.secret_index(), 0);
}

#[test]
fn empty_secret_is_refused_at_construction() {
    assert_eq!(GitHub::new("").err(), Some(ConfigError::EmptySecret));
}

#[test]
fn missing_delivery_header_is_an_invalid_payload() {
    let body = Bytes::from_static(br#"{"action":"opened"}"#);
    let mut headers = headers(Some(sign::github(SECRET.as_bytes(), &body).value()));
    headers.remove(DELIVERY_HEADER);
    let github = github();
    // The signature covers only the body, so it still verifies ...
    assert!(github.verify(&headers, &body, now()).is_ok());
    // ... but the delivery cannot be deduped without its GUID: 400, not 401.
    let err = github.parse(&headers, &body, now()).expect_err("no GUID");
    assert_eq!(err.kind(), RejectionKind::InvalidPayload);
    assert_eq!(err.status(), 400);
}

#[test]
fn missing_event_header_is_an_invalid_payload() {
    let body = Bytes::from_static(br#"{"action":"opened"}"#);
    let mut headers = headers(None);
    headers.remove(EVENT_HEADER);
    let err = github()
        .parse(&headers, &body, now())
        .expect_err("no event");
    assert_eq!(err.kind(), RejectionKind::InvalidPayload);
}

#[test]
fn parse_carries_delivery_name_action_and_payload() {
    #[derive(serde::Deserialize)]
    struct Issues {
        issue: Issue,
    }
    #[derive(serde::Deserialize)]
    struct Issue {
        number: u64,
    }

    let body = Bytes::from_static(br#"{"action":"opened","issue":{"number":42}}"#);
    let github = github();
    let event = github.parse(&headers(None), &body, now()).expect("valid");
    assert_eq!(event.delivery(), DELIVERY);
    assert_eq!(event.name(), "issues");
    assert_eq!(event.action(), Some("opened"));
    assert_eq!(
        event.deserialize::<Issues>().expect("shape").issue.number,
        42
    );
    assert_eq!(github.event_type(&event), "issues");
    assert_eq!(github.dedupe_key(&event, &body), DELIVERY);
}

#[test]
fn replay_window_is_the_redelivery_window() {
    assert_eq!(github().replay_window(), Duration::from_secs(72 * 3600));
    let ghes = github()
        .redelivery_window(Duration::from_secs(7 * 24 * 3600))
        .expect("non-zero");
    assert_eq!(ghes.replay_window(), Duration::from_secs(7 * 24 * 3600));
    // Longer than the default store remembers: the receiver says so.
    assert!(matches!(
        Receiver::new(ghes, MemoryStore::new()).err(),
        Some(ConfigError::ReplayWindowExceedsRetention { .. })
    ));
    assert!(github().redelivery_window(Duration::ZERO).is_err());
}

#[test]
fn sign_then_verify_round_trips() {
    let github = github();
    for body in [&b"{}"[..], b"", br#"{"zen":"Keep it logically awesome."}"#] {
        let header = sign::github(SECRET.as_bytes(), body);
        assert!(
            github
                .verify(&headers(Some(header.value())), body, now())
                .is_ok()
        );
    }
}

#[tokio::test]
async fn receive_accepts_ping_then_answers_duplicate() {
    let clock = ManualClock::at_unix_secs(NOW);
    let store = Arc::new(MemoryStore::new().clock(clock.clone()));
    let receiver = Receiver::new(github(), store)
        .expect("the redelivery window fits the default retention")
        .clock(clock);
    let body = Bytes::from_static(br#"{"zen":"Design for failure.","hook_id":12345678}"#);
    let mut headers = headers(Some(sign::github(SECRET.as_bytes(), &body).value()));
    headers.insert(EVENT_HEADER, HeaderValue::from_static("ping"));

    let outcome = receiver.receive(&headers, body.clone()).await;
    let Ok(Outcome::Accepted { delivery, claim }) = outcome else {
        panic!("expected accepted, got {outcome:?}");
    };
    assert_eq!(delivery.provider(), "github");
    assert_eq!(delivery.event().name(), "ping");
    assert_eq!(delivery.dedupe_key().as_str(), format!("github:{DELIVERY}"));
    receiver.commit(&claim).await.expect("commit");

    let again = receiver.receive(&headers, body).await.expect("200");
    assert!(
        matches!(
            again,
            Outcome::Duplicate {
                state: Duplicate::Processed,
                ..
            }
        ),
        "{again:?}"
    );
}

// Issue item 5: GitHub signs no timestamp, so its window is the redelivery window and
// is not widened; a store retaining exactly that long is accepted.

#[test]
fn a_store_retaining_exactly_the_redelivery_window_is_accepted() {
    let redelivery = Duration::from_secs(72 * 3600);
    let shorter = [redelivery - Duration::from_secs(1)];
    window::retention_must_cover(github, "github", redelivery, &shorter);
}
