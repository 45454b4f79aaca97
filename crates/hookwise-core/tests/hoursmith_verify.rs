//! Hoursmith signature verification: the reference vector and every rejection case.

use std::time::Duration;

use bytes::Bytes;
use hookwise_core::{
    Hoursmith, Provider, RejectionKind, Secrets, hoursmith::SIGNATURE_HEADER, sign,
};
use http::{HeaderMap, HeaderValue};

mod window;

const SECRET: &[u8] = b"whsec_test_secret";
const T: u64 = 1492774577;
const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
const VECTOR_V1: &str = "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a";

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

fn hoursmith() -> Hoursmith {
    Hoursmith::new(SECRET).expect("valid secret")
}

fn verify(value: &str, body: &[u8]) -> Result<usize, RejectionKind> {
    hoursmith()
        .verify(&headers(value), body, at(T))
        .map(|v| v.secret_index())
        .map_err(|r| r.kind())
}

fn signed(body: &[u8]) -> String {
    sign::hoursmith(SECRET, T, body).value().to_owned()
}

#[test]
fn reference_vector_verifies() {
    assert_eq!(verify(&format!("t={T},v1={VECTOR_V1}"), BODY), Ok(0));
    assert_eq!(signed(BODY), format!("t={T},v1={VECTOR_V1}"));
}

#[test]
fn reports_the_signed_timestamp() {
    let verified = hoursmith()
        .verify(&headers(&signed(BODY)), BODY, at(T))
        .expect("valid");
    assert_eq!(verified.signed_timestamp(), Some(T));
}

#[test]
fn tampered_body_is_a_mismatch() {
    let tampered = br#"{"id":"evt_test_webhook","object":"evenT"}"#;
    assert_eq!(
        verify(&signed(BODY), tampered),
        Err(RejectionKind::SignatureMismatch)
    );
}

#[test]
fn wrong_secret_is_a_mismatch() {
    let value = sign::hoursmith(b"whsec_other", T, BODY).value().to_owned();
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMismatch));
}

#[test]
fn tampered_timestamp_is_a_mismatch() {
    let value = signed(BODY).replace(&format!("t={T}"), &format!("t={}", T + 1));
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMismatch));
}

#[test]
fn missing_header_is_missing() {
    let err = hoursmith()
        .verify(&HeaderMap::new(), BODY, at(T))
        .expect_err("no header");
    assert_eq!(err.kind(), RejectionKind::SignatureMissing);
}

#[test]
fn empty_header_is_missing() {
    assert_eq!(verify("", BODY), Err(RejectionKind::SignatureMissing));
    assert_eq!(verify("   ", BODY), Err(RejectionKind::SignatureMissing));
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
    let value = format!("t={T},v1={}", &VECTOR_V1[..62]);
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn long_signature_is_malformed() {
    let value = format!("t={T},v1={VECTOR_V1}00");
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn non_hex_signature_is_malformed() {
    let value = format!("t={T},v1={}", VECTOR_V1.replace('a', "z"));
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn duplicate_t_is_malformed() {
    let value = format!("t={T},t={T},v1={VECTOR_V1}");
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn t_with_two_values_is_malformed() {
    let value = format!("t=1=2,v1={VECTOR_V1}");
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn overflowing_t_is_malformed() {
    let value = format!("t=18446744073709551616,v1={VECTOR_V1}");
    assert_eq!(verify(&value, BODY), Err(RejectionKind::SignatureMalformed));
}

#[test]
fn whitespace_around_items_is_tolerated() {
    let value = format!("  t={T} ,  v0=ignored ,\tv1={VECTOR_V1}\t");
    assert_eq!(verify(&value, BODY), Ok(0));
}

#[test]
fn upper_case_hex_verifies() {
    let value = format!("t={T},v1={}", VECTOR_V1.to_ascii_uppercase());
    assert_eq!(verify(&value, BODY), Ok(0));
}

#[test]
fn valid_v1_in_any_position_verifies() {
    let other = "0".repeat(64);
    for position in 0..3 {
        let mut sigs = vec![other.clone(), other.clone()];
        sigs.insert(position, VECTOR_V1.to_owned());
        let items: Vec<String> = sigs.iter().map(|s| format!("v1={s}")).collect();
        let value = format!("t={T},{}", items.join(","));
        assert_eq!(verify(&value, BODY), Ok(0), "position {position}");
    }
    // `t` need not come first either.
    assert_eq!(
        verify(&format!("v1={other},v1={VECTOR_V1},t={T}"), BODY),
        Ok(0)
    );
}

#[test]
fn unknown_schemes_are_ignored() {
    let value = format!(
        "t={T},v0=not-even-hex,v2={},scheme=x,v1={VECTOR_V1}",
        "f".repeat(64)
    );
    assert_eq!(verify(&value, BODY), Ok(0));
    // ... but never count as a v1.
    let only_unknown = format!("t={T},v0={VECTOR_V1},v2={VECTOR_V1}");
    assert_eq!(
        verify(&only_unknown, BODY),
        Err(RejectionKind::SignatureMalformed)
    );
}

#[test]
fn repeated_signature_header_is_malformed() {
    let mut headers = headers(&signed(BODY));
    headers.append(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&signed(BODY)).expect("value"),
    );
    let err = hoursmith()
        .verify(&headers, BODY, at(T))
        .expect_err("two headers");
    assert_eq!(err.kind(), RejectionKind::SignatureMalformed);
}

#[test]
fn header_name_is_case_insensitive() {
    let mut headers = HeaderMap::new();
    let name = http::HeaderName::from_bytes(b"HOURSMITH-SIGNATURE").expect("name");
    headers.insert(name, HeaderValue::from_str(&signed(BODY)).expect("value"));
    assert!(hoursmith().verify(&headers, BODY, at(T)).is_ok());
}

#[test]
fn tolerance_is_300_seconds_both_ways() {
    let value = signed(BODY);
    let check = |now| {
        hoursmith()
            .verify(&headers(&value), BODY, at(now))
            .map(|_| ())
            .map_err(|r| r.kind())
    };
    assert_eq!(check(T + 300), Ok(()));
    assert_eq!(check(T - 300), Ok(()));
    assert_eq!(check(T + 301), Err(RejectionKind::TimestampTooOld));
    assert_eq!(check(T - 301), Err(RejectionKind::TimestampTooNew));
}

#[test]
fn tolerance_is_configurable() {
    let strict = hoursmith()
        .tolerance(Duration::from_secs(10))
        .expect("non-zero");
    let value = signed(BODY);
    assert!(strict.verify(&headers(&value), BODY, at(T + 10)).is_ok());
    let err = strict
        .verify(&headers(&value), BODY, at(T + 11))
        .expect_err("too old");
    assert_eq!(err.kind(), RejectionKind::TimestampTooOld);
    assert!(hoursmith().tolerance(Duration::ZERO).is_err());
}

#[test]
fn far_future_and_max_timestamps_are_rejected_without_overflow() {
    let value = sign::hoursmith(SECRET, u64::MAX, BODY).value().to_owned();
    let err = hoursmith()
        .verify(&headers(&value), BODY, at(T))
        .expect_err("future");
    assert_eq!(err.kind(), RejectionKind::TimestampTooNew);
    let ancient = sign::hoursmith(SECRET, 0, BODY).value().to_owned();
    let err = hoursmith()
        .verify(&headers(&ancient), BODY, at(T))
        .expect_err("old");
    assert_eq!(err.kind(), RejectionKind::TimestampTooOld);
}

#[test]
fn rotation_reports_which_secret_matched() {
    let rotating =
        Hoursmith::with_secrets(Secrets::new(["whsec_new", "whsec_test_secret"]).expect("valid"));
    let old = signed(BODY);
    let verified = rotating
        .verify(&headers(&old), BODY, at(T))
        .expect("old secret still accepted");
    assert_eq!(verified.secret_index(), 1);

    let both = sign::hoursmith_with_secrets(&[b"whsec_new", SECRET], T, BODY);
    let verified = rotating
        .verify(&headers(both.value()), BODY, at(T))
        .expect("valid");
    assert_eq!(verified.secret_index(), 0);
}

#[test]
fn empty_secret_is_refused_at_construction() {
    assert!(Hoursmith::new("").is_err());
    assert!(Secrets::new(["whsec_ok", ""]).is_err());
}

/// Bodies whose JSON would change if re-serialized must verify as sent: the MAC is
/// over the raw bytes, never over a parsed and re-encoded value.
#[test]
fn bodies_that_reserialize_differently_still_verify() {
    let hoursmith = hoursmith();
    let bodies: [&[u8]; 5] = [
        br#"{"id":"e","note":"esc \u001B here"}"#,
        "{\"id\":\"e\",\"note\":\"emoji \u{1F600} and \\ud83d\\ude00\"}".as_bytes(),
        "{\"id\":\"e\",\"note\":\"line\u{2028}separator\"}".as_bytes(),
        br#"{"z":1,"a":2,"id":"e","m":{"y":true,"b":false}}"#,
        b"{ \"id\" : \"e\" ,\n  \"n\" : 1.0e0 }",
    ];
    for body in bodies {
        let body = Bytes::copy_from_slice(body);
        let value = sign::hoursmith(SECRET, T, &body).value().to_owned();
        assert!(
            hoursmith.verify(&headers(&value), &body, at(T)).is_ok(),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

// Issue item 5: one signature verifies from `t - tolerance` to the last millisecond of
// the second `t + tolerance` (`now` is compared in whole seconds), and the receiver
// must refuse a store that forgets a delivery sooner.

#[test]
fn replay_window_is_the_whole_time_one_signature_verifies() {
    let hoursmith = |tolerance| hoursmith().tolerance(at(tolerance)).expect("non-zero");
    window::signed_windows(hoursmith, &headers(&signed(BODY)), BODY, T, &[300, 10]);
}

#[test]
fn a_replay_after_retention_equal_to_the_tolerance_is_refused_at_construction() {
    let strict = || hoursmith().tolerance(at(10)).expect("non-zero");
    window::retention_must_cover(strict, "hoursmith", at(21), &[at(10), at(20)]);
}
