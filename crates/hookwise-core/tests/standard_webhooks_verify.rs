//! Standard Webhooks (Svix) verification: the published vectors and every rejection case.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use hookwise_core::{
    ConfigError, Duplicate, ManualClock, MemoryStore, Outcome, Provider, Receiver, RejectionKind,
    Secrets, StandardWebhooks,
    sign::{self, SignedHeaders},
    standard_webhooks::{
        ID_HEADER, SIGNATURE_HEADER, SVIX_ID_HEADER, SVIX_SIGNATURE_HEADER, SVIX_TIMESTAMP_HEADER,
        TIMESTAMP_HEADER, decode_secret,
    },
};
use http::{HeaderMap, HeaderValue};

mod window;
use window::Window;

// The published vector of the Standard Webhooks libraries: repository
// standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py,
// `test_sign_function` (the JavaScript, Rust and other libraries' tests use the same).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const T: u64 = 1614265330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
// Same file, `test_invalid_signature_raises_error`: the vector with its last digit changed.
const WRONG_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
// Same file, `test_multi_sig_payload_is_valid`: signatures that are not the valid one.
const OTHER_V1: &str = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
const OTHER_V2: &str = "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

fn at(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn headers_with(id: Option<&str>, timestamp: Option<&str>, signature: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (ID_HEADER, id),
        (TIMESTAMP_HEADER, timestamp),
        (SIGNATURE_HEADER, signature),
    ] {
        if let Some(value) = value {
            headers.insert(name, HeaderValue::from_str(value).expect("header value"));
        }
    }
    headers
}

fn headers(signature: &str) -> HeaderMap {
    headers_with(Some(ID), Some(&T.to_string()), Some(signature))
}

fn provider() -> StandardWebhooks {
    StandardWebhooks::new(SECRET).expect("valid secret")
}

fn check(headers: &HeaderMap, body: &[u8], now: u64) -> Result<usize, RejectionKind> {
    provider()
        .verify(headers, body, at(now))
        .map(|v| v.secret_index())
        .map_err(|r| r.kind())
}

fn verify(signature: &str, body: &[u8]) -> Result<usize, RejectionKind> {
    check(&headers(signature), body, T)
}

fn signed(secret: &str, id: &str, t: u64, body: &[u8]) -> SignedHeaders {
    sign::standard_webhooks(secret, id, t, body).expect("valid secret")
}

#[test]
fn published_vector_verifies() {
    assert_eq!(verify(SIGNATURE, BODY), Ok(0));
}

#[test]
fn signer_reproduces_the_published_vector() {
    let headers = signed(SECRET, ID, T, BODY);
    assert_eq!(headers.get(SIGNATURE_HEADER), Some(SIGNATURE));
    assert_eq!(headers.get(ID_HEADER), Some(ID));
    assert_eq!(headers.get(TIMESTAMP_HEADER), Some("1614265330"));
}

#[test]
fn secret_without_prefix_verifies() {
    let provider = StandardWebhooks::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
    assert!(provider.verify(&headers(SIGNATURE), BODY, at(T)).is_ok());
}

#[test]
fn reports_the_signed_timestamp() {
    let verified = provider()
        .verify(&headers(SIGNATURE), BODY, at(T))
        .expect("valid");
    assert_eq!(verified.signed_timestamp(), Some(T));
}

#[test]
fn published_wrong_signature_is_a_mismatch() {
    assert_eq!(
        verify(WRONG_SIGNATURE, BODY),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn published_multi_signature_header_verifies() {
    let value = [OTHER_V1, OTHER_V2, SIGNATURE, OTHER_V1].join(" ");
    assert_eq!(verify(&value, BODY), Ok(0));
}

#[test]
fn other_versions_never_count_as_v1() {
    let v2 = SIGNATURE.replacen("v1,", "v2,", 1);
    let v1a = SIGNATURE.replacen("v1,", "v1a,", 1);
    assert_eq!(
        verify(&format!("{v2} {v1a}"), BODY),
        Err(RejectionKind::SignatureMalformed)
    );
    assert_eq!(
        verify(&format!("{v1a} {OTHER_V1}"), BODY),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn tampered_body_is_a_mismatch() {
    assert_eq!(
        verify(SIGNATURE, br#"{"test": 2432232315}"#),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn tampered_id_is_a_mismatch() {
    let headers = headers_with(Some("msg_other"), Some(&T.to_string()), Some(SIGNATURE));
    assert_eq!(
        check(&headers, BODY, T),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn tampered_timestamp_is_a_mismatch() {
    let headers = headers_with(Some(ID), Some(&(T + 1).to_string()), Some(SIGNATURE));
    assert_eq!(
        check(&headers, BODY, T),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn wrong_secret_is_a_mismatch() {
    let other = signed("whsec_b3RoZXItc2VjcmV0", ID, T, BODY);
    let value = other.get(SIGNATURE_HEADER).expect("signature");
    assert_eq!(verify(value, BODY), Err(RejectionKind::SignatureMismatch));
}

#[test]
fn missing_signature_header_is_missing() {
    let headers = headers_with(Some(ID), Some(&T.to_string()), None);
    assert_eq!(
        check(&headers, BODY, T),
        Err(RejectionKind::SignatureMissing)
    );
    assert_eq!(
        check(&HeaderMap::new(), BODY, T),
        Err(RejectionKind::SignatureMissing)
    );
}

#[test]
fn empty_signature_header_is_missing() {
    assert_eq!(verify("", BODY), Err(RejectionKind::SignatureMissing));
    assert_eq!(verify("   ", BODY), Err(RejectionKind::SignatureMissing));
}

#[test]
fn missing_id_header_is_malformed() {
    let headers = headers_with(None, Some(&T.to_string()), Some(SIGNATURE));
    assert_eq!(
        check(&headers, BODY, T),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn missing_timestamp_header_is_malformed() {
    let headers = headers_with(Some(ID), None, Some(SIGNATURE));
    assert_eq!(
        check(&headers, BODY, T),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn non_numeric_timestamp_is_malformed() {
    for t in [
        "hello",
        "-1614265330",
        "+1614265330",
        "1614265330.0",
        "99999999999999999999999",
    ] {
        let headers = headers_with(Some(ID), Some(t), Some(SIGNATURE));
        assert_eq!(
            check(&headers, BODY, T),
            Err(RejectionKind::SignatureMalformed),
            "{t}"
        );
    }
}

#[test]
fn empty_signature_is_malformed() {
    assert_eq!(verify("v1,", BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn entry_without_version_is_malformed() {
    let bare = SIGNATURE.trim_start_matches("v1,");
    assert_eq!(verify(bare, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn short_signature_is_malformed() {
    // 31 bytes, correctly encoded.
    let short = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1A==";
    assert_eq!(verify(short, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn long_signature_is_malformed() {
    let long = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OEA";
    assert_eq!(verify(long, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn non_base64_signature_is_malformed() {
    for value in [
        "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE!",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OEé",
    ] {
        assert_eq!(
            verify(value, BODY),
            Err(RejectionKind::SignatureMalformed),
            "{value}"
        );
    }
}

#[test]
fn hex_signature_is_malformed() {
    // The vector's 32 bytes in hex, as a hex-signing scheme would send them.
    let hex = "v1,83484cf52b04f8e4cf2531adfed9882ad4b2665137b852442d594d20e2c9d4e1";
    assert_eq!(verify(hex, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn repeated_signature_header_is_malformed() {
    let mut headers = headers(SIGNATURE);
    headers.append(SIGNATURE_HEADER, HeaderValue::from_static(SIGNATURE));
    assert_eq!(
        check(&headers, BODY, T),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn tolerance_is_five_minutes_both_ways() {
    let headers = headers(SIGNATURE);
    assert_eq!(check(&headers, BODY, T + 300), Ok(0));
    assert_eq!(check(&headers, BODY, T - 300), Ok(0));
    assert_eq!(
        check(&headers, BODY, T + 301),
        Err(RejectionKind::TimestampTooOld)
    );
    assert_eq!(
        check(&headers, BODY, T - 301),
        Err(RejectionKind::TimestampTooNew)
    );
}

#[test]
fn tolerance_is_configurable() {
    let strict = provider().tolerance(at(10)).expect("non-zero");
    assert!(strict.verify(&headers(SIGNATURE), BODY, at(T + 10)).is_ok());
    let err = strict
        .verify(&headers(SIGNATURE), BODY, at(T + 11))
        .expect_err("too old");
    assert_eq!(err.kind(), RejectionKind::TimestampTooOld);
    // One signature verifies from T - 10 s until T + 10 s is over: 21 s.
    assert_eq!(strict.replay_window(), at(21));
    assert!(provider().tolerance(Duration::ZERO).is_err());
}

#[test]
fn rotation_reports_which_secret_matched() {
    let new = "whsec_bmV3LXNlY3JldA==";
    let rotating = StandardWebhooks::with_encoded_secrets([new, SECRET]).expect("valid");
    let verified = rotating
        .verify(&headers(SIGNATURE), BODY, at(T))
        .expect("old secret still accepted");
    assert_eq!(verified.secret_index(), 1);

    let both = sign::standard_webhooks_with_secrets(&[SECRET, new], ID, T, BODY).expect("valid");
    let mut map = HeaderMap::new();
    both.insert_into(&mut map);
    let verified = rotating.verify(&map, BODY, at(T)).expect("valid");
    assert_eq!(verified.secret_index(), 0);

    // The same keys, given decoded.
    let keys = Secrets::new([
        decode_secret(new).expect("b64"),
        decode_secret(SECRET).expect("b64"),
    ])
    .expect("non-empty");
    let decoded = StandardWebhooks::with_secrets(keys);
    assert_eq!(
        decoded
            .verify(&headers(SIGNATURE), BODY, at(T))
            .map(|v| v.secret_index()),
        Ok(1)
    );
}

#[test]
fn empty_secret_is_refused_at_construction() {
    assert_eq!(
        StandardWebhooks::new("").err(),
        Some(ConfigError::EmptySecret)
    );
    assert_eq!(
        StandardWebhooks::new("whsec_").err(),
        Some(ConfigError::EmptySecret)
    );
    assert!(StandardWebhooks::with_encoded_secrets([SECRET, ""]).is_err());
}

#[test]
fn non_base64_secret_is_refused_at_construction() {
    for secret in [
        "whsec_not base64!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
        "whsec_%%%%",
    ] {
        let err = StandardWebhooks::new(secret).expect_err(secret);
        assert!(matches!(err, ConfigError::InvalidSecret(_)), "{err:?}");
        assert!(!err.to_string().contains(secret), "{err}");
    }
    assert!(sign::standard_webhooks("whsec_%%%%", ID, T, BODY).is_err());
}

#[test]
fn svix_header_names_are_accepted() {
    let mut headers = HeaderMap::new();
    headers.insert(SVIX_ID_HEADER, HeaderValue::from_static(ID));
    headers.insert(
        SVIX_TIMESTAMP_HEADER,
        HeaderValue::from_static("1614265330"),
    );
    headers.insert(SVIX_SIGNATURE_HEADER, HeaderValue::from_static(SIGNATURE));
    assert_eq!(check(&headers, BODY, T), Ok(0));
    let event = provider()
        .parse(&headers, &Bytes::from_static(BODY), at(T))
        .expect("valid");
    assert_eq!(event.id(), ID);
}

#[test]
fn header_families_are_never_mixed() {
    // webhook-signature present: the id must be webhook-id, not svix-id.
    let mut headers = headers_with(None, Some(&T.to_string()), Some(SIGNATURE));
    headers.insert(SVIX_ID_HEADER, HeaderValue::from_static(ID));
    assert_eq!(
        check(&headers, BODY, T),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn parse_carries_id_timestamp_type_and_payload() {
    let body = Bytes::from_static(
        br#"{"type":"user.created","timestamp":"2021-02-25T15:02:10Z","data":{"id":"u_1"}}"#,
    );
    let headers = signed(SECRET, ID, T, &body);
    let mut map = HeaderMap::new();
    headers.insert_into(&mut map);
    let provider = provider();
    assert!(provider.verify(&map, &body, at(T)).is_ok());
    let event = provider.parse(&map, &body, at(T)).expect("valid");
    assert_eq!(event.id(), ID);
    assert_eq!(event.timestamp(), T);
    assert_eq!(event.event_type(), Some("user.created"));
    assert_eq!(provider.event_type(&event), "user.created");
    assert_eq!(provider.dedupe_key(&event, &body), ID);
    assert_eq!(event.data().and_then(|d| d.get("id")), Some(&"u_1".into()));

    let untyped = provider
        .parse(&map, &Bytes::from_static(BODY), at(T))
        .expect("any JSON");
    assert_eq!(provider.event_type(&untyped), "");
}

#[test]
fn sign_then_verify_round_trips() {
    let provider = provider();
    for (id, body) in [
        ("msg_1", &b"{}"[..]),
        ("msg_2", b""),
        ("a.b.c", br#"{"emoji":"\ud83d\ude00"}"#),
    ] {
        let mut map = HeaderMap::new();
        signed(SECRET, id, T, body).insert_into(&mut map);
        assert_eq!(
            provider.verify(&map, body, at(T)).map(|v| v.secret_index()),
            Ok(0),
            "{id}"
        );
    }
}

#[tokio::test]
async fn receive_accepts_then_answers_duplicate() {
    let clock = ManualClock::at_unix_secs(T);
    let store = Arc::new(MemoryStore::new().clock(clock.clone()));
    let receiver = Receiver::new(provider(), store)
        .expect("the tolerance fits the default retention")
        .clock(clock);
    let body = Bytes::from_static(BODY);
    let headers = headers(SIGNATURE);

    let outcome = receiver.receive(&headers, body.clone()).await;
    let Ok(Outcome::Accepted { delivery, claim }) = outcome else {
        panic!("expected accepted, got {outcome:?}");
    };
    assert_eq!(delivery.provider(), "standard-webhooks");
    assert_eq!(
        delivery.dedupe_key().as_str(),
        format!("standard-webhooks:{ID}")
    );
    assert_eq!(delivery.event().payload()["test"], 2432232314_u64);
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

// Issue item 5: one signature verifies from `timestamp - tolerance` to the last
// millisecond of the second `timestamp + tolerance` (`now` is compared in whole
// seconds), and the receiver must refuse a store that forgets a delivery sooner.

#[test]
fn replay_window_is_the_whole_time_one_signature_verifies() {
    let provider = |tolerance| provider().tolerance(at(tolerance)).expect("non-zero");
    window::signed_windows(provider, &headers(SIGNATURE), BODY, T, &[300, 10]);
}

#[test]
fn a_replay_after_retention_equal_to_the_tolerance_is_refused_at_construction() {
    window::retention_must_cover(provider, "standard-webhooks", at(601), &[at(300), at(600)]);
}

#[tokio::test]
async fn a_replay_at_the_end_of_the_window_is_a_duplicate_under_the_shortest_retention_allowed() {
    let provider = provider().tolerance(at(10)).expect("non-zero");
    let (headers, body) = (headers(SIGNATURE), Bytes::from_static(BODY));
    window::replay_at_the_end_is_a_duplicate(provider, &headers, body, Window::signed(T, 10)).await;
}

// The asymmetric scheme (`v1a`, ed25519). The vector of the reference Go library:
// standard-webhooks/standard-webhooks, libraries/go/webhook_asymmetric_test.go,
// `TestAsymmetricWebhookSign` (same id, timestamp and body as above).
const SIGNING_KEY: &str = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=";
const V1A: &str =
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==";
// Same file, `TestAsymmetricWebhook`'s "invalid signature is invalid": 32 bytes under v1a.
const SHORT_V1A: &str = "v1a,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

fn public_key() -> String {
    hookwise_core::standard_webhooks::public_key(SIGNING_KEY).expect("a valid signing key")
}

fn check_with(keys: &[&str], signature: &str, body: &[u8]) -> Result<usize, RejectionKind> {
    StandardWebhooks::with_encoded_secrets(keys)
        .expect("valid keys")
        .verify(&headers(signature), body, at(T))
        .map(|v| v.secret_index())
        .map_err(|r| r.kind())
}

#[test]
fn the_published_v1a_vector_verifies_with_the_public_key() {
    let public = public_key();
    assert_eq!(check_with(&[&public], V1A, BODY), Ok(0));
    assert_eq!(
        signed(SIGNING_KEY, ID, T, BODY).get(SIGNATURE_HEADER),
        Some(V1A),
        "the signer reproduces it"
    );
}

#[test]
fn a_v1a_signature_over_other_content_is_a_mismatch() {
    let public = public_key();
    assert_eq!(
        check_with(&[&public], V1A, br#"{"test": 2432232315}"#),
        Err(RejectionKind::SignatureMismatch)
    );
    // Another key's public key.
    let other = hookwise_core::standard_webhooks::public_key(
        "whsk_T1RIRVJTSUdOSU5HS0VZRE9OT1RVU0VUSElTRk9SQU4=",
    )
    .expect("a valid signing key");
    assert_eq!(
        check_with(&[&other], V1A, BODY),
        Err(RejectionKind::SignatureMismatch)
    );
    // The right signature with one bit flipped.
    let mut flipped = V1A.to_owned();
    flipped.replace_range(10..11, "A");
    assert_eq!(
        check_with(&[&public], &flipped, BODY),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn a_header_with_only_unusable_v1a_entries_is_malformed() {
    let public = public_key();
    for value in [SHORT_V1A, "v1a,", "v1a"] {
        assert_eq!(
            check_with(&[&public], value, BODY),
            Err(RejectionKind::SignatureMalformed),
            "{value}"
        );
    }
    // v1 entries only, for a receiver of public keys: nothing it can check.
    assert_eq!(
        check_with(&[&public], SIGNATURE, BODY),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn mixed_v1_and_v1a_lists_verify_and_report_the_key_that_matched() {
    let public = public_key();
    let keys = [SECRET, public.as_str()];
    // Go's "valid multi sig is valid", with v1a the valid one.
    let mixed = format!("{OTHER_V1} {OTHER_V2} {V1A} {OTHER_V1}");
    assert_eq!(check_with(&keys, &mixed, BODY), Ok(1));
    assert_eq!(
        check_with(&keys, &format!("{SIGNATURE} {V1A}"), BODY),
        Ok(0)
    );
    assert_eq!(check_with(&keys, SIGNATURE, BODY), Ok(0));
    // The signer makes one entry per key, v1 and v1a alike.
    let both = sign::standard_webhooks_with_secrets(&[SECRET, SIGNING_KEY], ID, T, BODY)
        .expect("valid keys");
    assert_eq!(
        both.get(SIGNATURE_HEADER).map(str::to_owned),
        Some(format!("{SIGNATURE} {V1A}"))
    );
}

#[test]
fn a_malformed_entry_among_several_does_not_hide_a_valid_one() {
    for garbled in [
        "v1",
        "v1,",
        "v1,not-base64!",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1A==",
        "garbage",
        SHORT_V1A,
    ] {
        assert_eq!(
            verify(&format!("{garbled} {SIGNATURE}"), BODY),
            Ok(0),
            "{garbled}"
        );
        assert_eq!(
            verify(&format!("{SIGNATURE} {garbled}"), BODY),
            Ok(0),
            "{garbled}"
        );
    }
}

#[test]
fn a_signing_key_given_to_a_receiver_is_refused() {
    let refused = StandardWebhooks::new(SIGNING_KEY).expect_err("a private key");
    assert!(
        matches!(refused, ConfigError::InvalidSecret(_)),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("whpk_"),
        "says what to give instead: {refused}"
    );
    assert!(
        !refused.to_string().contains("VEVT"),
        "never quotes the key"
    );
}
