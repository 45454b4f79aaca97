//! Stripe signature verification: Stripe's own vector and every rejection case.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use hookwise_core::{
    ConfigError, Duplicate, ManualClock, MemoryStore, Outcome, Provider, Receiver, RejectionKind,
    Secrets, Stripe, sign, stripe::SIGNATURE_HEADER,
};
use http::{HeaderMap, HeaderValue};

mod window;
use window::Window;

// Stripe's fixed vector: repository stripe/stripe-dotnet,
// src/StripeTests/Services/Events/EventUtilityTest.cs (secret, timestamp and header)
// over the fixture src/StripeTests/Resources/event_test_signature.json (the body
// below, byte for byte, with its final newline).
const SECRET: &str = "webhook_secret";
const T: u64 = 1533204620;
const V1: &str = "2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7";
const V0: &str = "63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";
const BODY: &[u8] = br#"{
  "id": "evt_123",
  "object": "event",
  "account": "acct_123",
  "api_version": "2017-05-25",
  "created": 1533204620,
  "data": {
    "object": {
      "id": "cus_123",
      "object": "customer",
      "created": 123456789,
      "email": "test@stripe.com",
      "livemode": false,
      "metadata": {}
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": "req_123",
    "idempotency_key": "idempotency-key-123"
  },
  "type": "customer.created"
}
"#;

fn at(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn headers(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(value).expect("header value"),
    );
    headers
}

fn stripe() -> Stripe {
    Stripe::new(SECRET).expect("valid secret")
}

fn check(value: &str, body: &[u8], now: u64) -> Result<usize, RejectionKind> {
    stripe()
        .verify(&headers(value), body, at(now))
        .map(|v| v.secret_index())
        .map_err(|r| r.kind())
}

fn verify(value: &str, body: &[u8]) -> Result<usize, RejectionKind> {
    check(value, body, T)
}

fn vector() -> String {
    format!("t={T},v1={V1},v0={V0}")
}

fn signed(body: &[u8]) -> String {
    sign::stripe(SECRET.as_bytes(), T, body).value().to_owned()
}

#[test]
fn stripe_vector_verifies() {
    // stripe-dotnet checks it 100 s after the signature.
    assert_eq!(check(&vector(), BODY, T + 100), Ok(0));
}

#[test]
fn signer_reproduces_stripe_vector() {
    assert_eq!(signed(BODY), format!("t={T},v1={V1}"));
}

#[test]
fn stripe_vector_parses_into_the_event() {
    let stripe = stripe();
    let body = Bytes::from_static(BODY);
    let event = stripe
        .parse(&headers(&vector()), &body, at(T))
        .expect("valid");
    assert_eq!(event.id(), "evt_123");
    assert_eq!(event.event_type(), "customer.created");
    assert_eq!(event.created(), 1533204620);
    assert!(!event.livemode());
    assert_eq!(event.api_version(), Some("2017-05-25"));
    assert_eq!(event.object().id(), Some("cus_123"));
    assert_eq!(
        event.object().get("email").and_then(|v| v.as_str()),
        Some("test@stripe.com")
    );
    assert_eq!(event.previous_attributes(), None);
    assert_eq!(stripe.event_type(&event), "customer.created");
    assert_eq!(stripe.dedupe_key(&event, &body), "evt_123");
}

#[test]
fn reports_the_signed_timestamp() {
    let verified = stripe()
        .verify(&headers(&vector()), BODY, at(T))
        .expect("valid");
    assert_eq!(verified.signed_timestamp(), Some(T));
}

#[test]
fn tampered_body_is_a_mismatch() {
    let mut tampered = BODY.to_vec();
    tampered.extend_from_slice(b"this_changes_the_json");
    assert_eq!(
        verify(&vector(), &tampered),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn wrong_secret_is_a_mismatch() {
    let value = sign::stripe(b"whsec_other", T, BODY).value().to_owned();
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMismatch));
}

#[test]
fn tampered_timestamp_is_a_mismatch() {
    let value = format!("t={},v1={V1}", T + 1);
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMismatch));
}

#[test]
fn v0_alone_is_malformed() {
    // A v0 is never checked: only v1 counts.
    assert_eq!(
        verify(&format!("t={T},v0={V0}"), BODY),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn missing_header_is_missing() {
    let err = stripe()
        .verify(&HeaderMap::new(), BODY, at(T))
        .expect_err("no header");
    assert_eq!(err.kind(), RejectionKind::SignatureMissing);
}

#[test]
fn empty_header_is_missing() {
    assert_eq!(verify("", BODY), Err(RejectionKind::SignatureMissing));
}

#[test]
fn empty_signature_is_malformed() {
    assert_eq!(
        verify(&format!("t={T},v1="), BODY),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn short_signature_is_malformed() {
    let value = format!("t={T},v1={}", &V1[..62]);
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn long_signature_is_malformed() {
    let value = format!("t={T},v1={V1}00");
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn non_hex_signature_is_malformed() {
    let value = format!("t={T},v1={}", V1.replace('f', "g"));
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn malformed_headers_from_stripe_dotnet_are_malformed() {
    // The header values stripe-dotnet's EventUtilityTest expects to be refused.
    for value in [
        format!("t=,v1={V1},v0={V0}"),
        "t,v1=,v0=".to_owned(),
        "t,v1=,v0".to_owned(),
        "t,v1=,".to_owned(),
        "t,,".to_owned(),
        ",,".to_owned(),
        "t".to_owned(),
    ] {
        assert_eq!(
            verify(&value, BODY),
            Err(RejectionKind::SignatureMalformed),
            "{value}"
        );
    }
}

#[test]
fn tolerance_is_300_seconds_both_ways() {
    let value = vector();
    assert_eq!(check(&value, BODY, T + 300), Ok(0));
    assert_eq!(check(&value, BODY, T - 300), Ok(0));
    assert_eq!(
        check(&value, BODY, T + 301),
        Err(RejectionKind::TimestampTooOld)
    );
    assert_eq!(
        check(&value, BODY, T - 301),
        Err(RejectionKind::TimestampTooNew)
    );
}

#[test]
fn tolerance_is_configurable() {
    let strict = stripe().tolerance(at(10)).expect("non-zero");
    assert!(strict.verify(&headers(&vector()), BODY, at(T + 10)).is_ok());
    let err = strict
        .verify(&headers(&vector()), BODY, at(T + 11))
        .expect_err("too old");
    assert_eq!(err.kind(), RejectionKind::TimestampTooOld);
    // One signature verifies from T - 10 s until T + 10 s is over: 21 s.
    assert_eq!(strict.replay_window(), at(21));
    assert_eq!(
        stripe().tolerance(Duration::ZERO).err(),
        Some(ConfigError::Zero("Stripe tolerance"))
    );
}

#[test]
fn rotation_reports_which_secret_matched() {
    let rotating = Stripe::with_secrets(Secrets::new(["whsec_new", SECRET]).expect("valid"));
    let verified = rotating
        .verify(&headers(&vector()), BODY, at(T))
        .expect("old secret still accepted");
    assert_eq!(verified.secret_index(), 1);

    let both = sign::stripe_with_secrets(&[SECRET.as_bytes(), b"whsec_new"], T, BODY);
    let verified = rotating
        .verify(&headers(both.value()), BODY, at(T))
        .expect("valid");
    assert_eq!(verified.secret_index(), 0);
}

#[test]
fn empty_secret_is_refused_at_construction() {
    assert_eq!(Stripe::new("").err(), Some(ConfigError::EmptySecret));
}

#[test]
fn secret_is_used_verbatim_not_base64_decoded() {
    // `whsec_aGk=` would decode to `hi`; Stripe keys HMAC with the string itself.
    let value = sign::stripe(b"whsec_aGk=", T, BODY).value().to_owned();
    let stripe = Stripe::new("whsec_aGk=").expect("valid");
    assert!(stripe.verify(&headers(&value), BODY, at(T)).is_ok());
    let decoded = sign::stripe(b"hi", T, BODY).value().to_owned();
    assert!(stripe.verify(&headers(&decoded), BODY, at(T)).is_err());
}

#[test]
fn sign_then_verify_round_trips() {
    let stripe = stripe();
    for body in [&b"{}"[..], b"", BODY] {
        assert_eq!(verify(&signed(body), body), Ok(0));
        assert!(stripe.verify(&headers(&signed(body)), body, at(T)).is_ok());
    }
}

#[tokio::test]
async fn receive_accepts_then_answers_duplicate() {
    let clock = ManualClock::at_unix_secs(T + 100);
    let store = Arc::new(MemoryStore::new().clock(clock.clone()));
    let receiver = Receiver::new(stripe(), store)
        .expect("the tolerance fits the default retention")
        .clock(clock);
    let body = Bytes::from_static(BODY);
    let headers = headers(&vector());

    let outcome = receiver.receive(&headers, body.clone()).await;
    let Ok(Outcome::Accepted { delivery, claim }) = outcome else {
        panic!("expected accepted, got {outcome:?}");
    };
    assert_eq!(delivery.provider(), "stripe");
    assert_eq!(delivery.dedupe_key().as_str(), "stripe:evt_123");
    assert_eq!(delivery.event().object().id(), Some("cus_123"));
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

// Issue item 5: one signature verifies from `t - tolerance` to the last millisecond
// of the second `t + tolerance` (`now` is compared in whole seconds), and the
// receiver must refuse a store that forgets a delivery sooner.

#[test]
fn replay_window_is_the_whole_time_one_signature_verifies() {
    let stripe = |tolerance| stripe().tolerance(at(tolerance)).expect("non-zero");
    window::signed_windows(stripe, &headers(&vector()), BODY, T, &[300, 10]);
}

#[test]
fn a_replay_after_retention_equal_to_the_tolerance_is_refused_at_construction() {
    window::retention_must_cover(stripe, "stripe", at(601), &[at(300), at(600)]);
}

#[tokio::test]
async fn a_replay_at_the_end_of_the_window_is_a_duplicate_under_the_shortest_retention_allowed() {
    let stripe = stripe().tolerance(at(10)).expect("non-zero");
    let (headers, body) = (headers(&vector()), Bytes::from_static(BODY));
    window::replay_at_the_end_is_a_duplicate(stripe, &headers, body, Window::signed(T, 10)).await;
}
