//! Property tests: signing round-trips, any flipped byte fails, parsers never panic.

use std::time::Duration;

use bytes::Bytes;
use hookwise_core::{
    Hoursmith, Mojave, Provider, RejectionKind,
    hoursmith::{self, SignatureHeader},
    mojave, sign,
};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

const T: u64 = 1_700_000_000;

fn now() -> Duration {
    Duration::from_secs(T)
}

fn with_header(name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
    headers
}

fn secret() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..80)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

proptest! {
    #[test]
    fn hoursmith_sign_then_verify(secret in secret(), body in body(), skew in -300i64..=300) {
        let provider = Hoursmith::new(&secret).expect("non-empty");
        let t = T.checked_add_signed(skew).expect("in range");
        let header = sign::hoursmith(&secret, t, &body);
        let verified = provider.verify(&with_header(hoursmith::SIGNATURE_HEADER, header.value()), &body, now());
        prop_assert_eq!(verified.map(|v| v.secret_index()), Ok(0));
    }

    #[test]
    fn mojave_sign_then_verify(secret in secret(), body in body()) {
        let provider = Mojave::new(&secret).expect("non-empty");
        let header = sign::mojave(&secret, &body);
        let verified = provider.verify(&with_header(mojave::SIGNATURE_HEADER, header.value()), &body, now());
        prop_assert_eq!(verified.map(|v| v.secret_index()), Ok(0));
    }

    #[test]
    fn any_flipped_body_byte_fails(
        secret in secret(),
        body in prop::collection::vec(any::<u8>(), 1..1024),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut tampered = body.clone();
        let i = index.index(tampered.len());
        tampered[i] ^= flip;

        let hs = sign::hoursmith(&secret, T, &body);
        let err = Hoursmith::new(&secret).expect("non-empty")
            .verify(&with_header(hoursmith::SIGNATURE_HEADER, hs.value()), &tampered, now())
            .expect_err("tampered");
        prop_assert_eq!(err.kind(), RejectionKind::SignatureMismatch);

        let mj = sign::mojave(&secret, &body);
        let err = Mojave::new(&secret).expect("non-empty")
            .verify(&with_header(mojave::SIGNATURE_HEADER, mj.value()), &tampered, now())
            .expect_err("tampered");
        prop_assert_eq!(err.kind(), RejectionKind::SignatureMismatch);
    }

    #[test]
    fn any_flipped_signature_digit_fails(
        secret in secret(),
        body in body(),
        index in 0usize..64,
        replacement in "[0-9a-f]",
    ) {
        let header = sign::mojave(&secret, &body);
        let mut digits: Vec<char> = header.value().chars().collect();
        let replacement = replacement.chars().next().expect("one char");
        prop_assume!(digits[index] != replacement);
        digits[index] = replacement;
        let forged: String = digits.into_iter().collect();
        let err = Mojave::new(&secret).expect("non-empty")
            .verify(&with_header(mojave::SIGNATURE_HEADER, &forged), &body, now())
            .expect_err("forged");
        prop_assert_eq!(err.kind(), RejectionKind::SignatureMismatch);
    }

    #[test]
    fn hoursmith_parser_never_panics(value in ".{0,300}") {
        let _ = SignatureHeader::parse(&value);
    }

    #[test]
    fn hoursmith_parser_never_panics_on_near_valid_headers(
        items in prop::collection::vec(
            prop_oneof![
                "t=[0-9+ -]{0,25}",
                "v1=[0-9a-fA-Fg]{0,66}",
                "v[0-9]=[ -~]{0,10}",
                "[ -~]{0,12}",
            ],
            0..8,
        ),
        separator in prop_oneof![Just(","), Just(" , "), Just(",,")],
    ) {
        let value = items.join(separator);
        let _ = SignatureHeader::parse(&value);
        let body = Bytes::from_static(b"{}");
        let headers = with_header(hoursmith::SIGNATURE_HEADER, &value);
        let result = Hoursmith::new("s").expect("non-empty").verify(&headers, &body, now());
        if let Err(rejection) = result {
            prop_assert_eq!(rejection.status(), 401);
        }
    }

    #[test]
    fn mojave_verify_never_panics(value in ".{0,200}", body in body()) {
        let headers = with_header(mojave::SIGNATURE_HEADER, &value);
        let result = Mojave::new("s").expect("non-empty").verify(&headers, &body, now());
        prop_assert!(result.is_err(), "a random header must not verify");
    }

    #[test]
    fn envelope_parsers_never_panic(body in body()) {
        let body = Bytes::from(body);
        let _ = hoursmith::Event::from_json(&body);
        let _ = mojave::Event::from_json(&body);
    }
}
