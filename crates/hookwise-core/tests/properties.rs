//! Property tests: signing round-trips, any flipped byte fails, parsers never panic.

use std::time::Duration;

use bytes::Bytes;
use hookwise_core::{
    GitHub, Hoursmith, Mojave, Provider, RejectionKind, StandardWebhooks, Stripe, github,
    hoursmith::{self, SignatureHeader},
    mojave, sign, standard_webhooks, stripe,
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

/// The three Standard Webhooks headers; a value that is not a header value is left out.
fn standard_headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (standard_webhooks::ID_HEADER, id),
        (standard_webhooks::TIMESTAMP_HEADER, timestamp),
        (standard_webhooks::SIGNATURE_HEADER, signature),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    headers
}

/// Padded standard base64, written here so the property does not test the signer's
/// encoder with itself.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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
        let _ = stripe::Event::from_json(&body);
        let _ = standard_webhooks::Event::from_parts("msg_1", T, &body);
        let mut headers = HeaderMap::new();
        headers.insert(github::DELIVERY_HEADER, HeaderValue::from_static("d-1"));
        headers.insert(github::EVENT_HEADER, HeaderValue::from_static("push"));
        let _ = github::Event::from_request(&headers, &body);
    }

    #[test]
    fn new_providers_sign_then_verify(secret in secret(), body in body(), skew in -300i64..=300) {
        let t = T.checked_add_signed(skew).expect("in range");
        let header = sign::stripe(&secret, t, &body);
        let verified = Stripe::new(&secret).expect("non-empty")
            .verify(&with_header(stripe::SIGNATURE_HEADER, header.value()), &body, now());
        prop_assert_eq!(verified.map(|v| v.secret_index()), Ok(0));

        let header = sign::github(&secret, &body);
        let verified = GitHub::new(&secret).expect("non-empty")
            .verify(&with_header(github::SIGNATURE_HEADER, header.value()), &body, now());
        prop_assert_eq!(verified.map(|v| v.secret_index()), Ok(0));

        let encoded = format!("whsec_{}", base64_encode(&secret));
        let signed = sign::standard_webhooks(&encoded, "msg_1", t, &body).expect("base64");
        let mut headers = HeaderMap::new();
        signed.insert_into(&mut headers);
        let verified = StandardWebhooks::new(&encoded).expect("valid")
            .verify(&headers, &body, now());
        prop_assert_eq!(verified.map(|v| v.secret_index()), Ok(0));
    }

    #[test]
    fn new_providers_never_panic_on_arbitrary_headers(value in ".{0,300}", other in ".{0,40}") {
        let body = Bytes::from_static(b"{}");
        let results = [
            Stripe::new("s").expect("non-empty")
                .verify(&with_header(stripe::SIGNATURE_HEADER, &value), &body, now()),
            GitHub::new("s").expect("non-empty")
                .verify(&with_header(github::SIGNATURE_HEADER, &value), &body, now()),
            StandardWebhooks::new("whsec_c2VjcmV0").expect("base64")
                .verify(&standard_headers(&other, &other, &value), &body, now()),
        ];
        for result in results {
            let rejection = result.expect_err("a random header must not verify");
            prop_assert_eq!(rejection.status(), 401);
        }
    }

    #[test]
    fn standard_webhooks_never_panics_on_near_valid_headers(
        entries in prop::collection::vec(
            prop_oneof![
                "v1,[A-Za-z0-9+/=]{0,46}",
                "v[0-9a-z]{0,2},[ -~]{0,10}",
                "[ -~]{0,12}",
            ],
            0..20,
        ),
        separator in prop_oneof![Just(" "), Just("  "), Just("\t")],
        timestamp in prop_oneof!["[0-9]{0,22}", "[ -~]{0,12}"],
    ) {
        let value = entries.join(separator);
        let headers = standard_headers("msg_1", &timestamp, &value);
        let body = Bytes::from_static(b"{}");
        let result = StandardWebhooks::new("whsec_c2VjcmV0").expect("base64")
            .verify(&headers, &body, now());
        if let Err(rejection) = result {
            prop_assert_eq!(rejection.status(), 401);
        }
    }
}
