//! Mismatch diagnostics: with `Receiver::diagnostics` on, a refused delivery says why
//! it likely failed (a re-encoded body, a secret of the wrong kind, the clock skew),
//! for logs only: the response stays the bare code.

use bytes::Bytes;
use hookwise_core::{
    Diagnosis, Hoursmith, ManualClock, MemoryStore, Outcome, Provider, Receiver, Rejection,
    RejectionKind, Stripe, sign,
};
use http::HeaderMap;

const NOW: u64 = 1_717_603_500;
const SECRET: &str = "whsec_diagnostics";
/// As the sender signs it: compact JSON.
const SENT: &str = r#"{"id":"evt_1","type":"invoice.paid","created":1717603200,"orgId":"o","livemode":true,"data":{"invoice":{"id":"inv_1"},"payment":{"id":"pay_1"}}}"#;

/// `SENT` indented, keys in their order.
const INDENTED: &str = r#"{
  "id": "evt_1",
  "type": "invoice.paid",
  "created": 1717603200,
  "orgId": "o",
  "livemode": true,
  "data": {
    "invoice": {
      "id": "inv_1"
    },
    "payment": {
      "id": "pay_1"
    }
  }
}"#;

fn receiver<P: Provider>(provider: P, diagnostics: bool) -> Receiver<P, MemoryStore> {
    Receiver::new(provider, MemoryStore::new())
        .expect("config")
        .clock(ManualClock::at_unix_secs(NOW))
        .diagnostics(diagnostics)
}

fn hoursmith(diagnostics: bool) -> Receiver<Hoursmith, MemoryStore> {
    receiver(Hoursmith::new(SECRET).expect("a secret"), diagnostics)
}

/// The signature of `SENT` at `t`, with `received` as the body that arrives.
async fn refused(receiver: &Receiver<Hoursmith, MemoryStore>, t: u64, received: &str) -> Rejection {
    let mut headers = HeaderMap::new();
    sign::hoursmith(SECRET.as_bytes(), t, SENT.as_bytes()).insert_into(&mut headers);
    let answer = receiver
        .receive(&headers, Bytes::from(received.to_owned()))
        .await;
    answer.expect_err("refused")
}

fn reencoded(how: &str) -> Diagnosis {
    Diagnosis::ReencodedBody {
        how: match how {
            "minified" => "without whitespace",
            "sorted" => "with sorted keys",
            _ => unreachable!(),
        },
    }
}

#[tokio::test]
async fn a_reencoded_body_is_diagnosed_as_such_and_only_when_asked() {
    // What a body parser hands on: indented (key order kept, as JavaScript's
    // `JSON.stringify(body, null, 2)` does), or Python's `json.dumps` spacing.
    let indented = INDENTED.to_owned();
    let spaced = SENT.replace("\":", "\": ").replace(",\"", ", \"");
    for received in [&indented, &spaced] {
        let on = refused(&hoursmith(true), NOW, received).await;
        assert_eq!(on.kind(), RejectionKind::SignatureMismatch);
        assert_eq!(on.diagnoses(), [reencoded("minified")], "{received}");
        assert_eq!(
            on.body(),
            r#"{"error":"signature_mismatch"}"#,
            "never in the response"
        );
        let off = refused(&hoursmith(false), NOW, received).await;
        assert!(off.diagnoses().is_empty());
    }
    // A forgery is not a re-encoding of anything signed.
    let forged = SENT.replace("inv_1", "inv_2");
    assert!(
        refused(&hoursmith(true), NOW, &forged)
            .await
            .diagnoses()
            .is_empty()
    );
}

#[tokio::test]
async fn a_body_whose_keys_were_sorted_is_found_when_the_sender_signed_them_sorted() {
    // The sender signed sorted keys; a layer re-ordered them. Sorting them again
    // recovers the signed bytes.
    let value: serde_json::Value = serde_json::from_str(SENT).expect("JSON");
    let sorted = serde_json::to_string(&value).expect("JSON");
    let mut headers = HeaderMap::new();
    sign::hoursmith(SECRET.as_bytes(), NOW, sorted.as_bytes()).insert_into(&mut headers);
    let rejection = hoursmith(true)
        .receive(&headers, Bytes::from_static(SENT.as_bytes()))
        .await
        .expect_err("refused");
    assert_eq!(rejection.diagnoses(), [reencoded("sorted")]);
}

#[tokio::test]
async fn an_api_key_where_the_signing_secret_belongs_is_named_without_quoting_it() {
    let stripe = receiver(
        Stripe::with_secrets(
            hookwise_core::Secrets::new(["whsec_ok", "sk_live_51Habc"]).expect("secrets"),
        ),
        true,
    );
    let body = Bytes::from_static(br#"{"id":"evt_1","object":"event","type":"a","created":1717603200,"livemode":true,"data":{"object":{}}}"#);
    let mut headers = HeaderMap::new();
    sign::stripe(b"whsec_other", NOW, &body).insert_into(&mut headers);
    let rejection = stripe.receive(&headers, body).await.expect_err("refused");
    assert_eq!(rejection.kind(), RejectionKind::SignatureMismatch);
    assert_eq!(
        rejection.diagnoses(),
        [Diagnosis::WrongKindOfSecret {
            secret: 1,
            looks_like: "a Stripe secret API key (sk_)"
        }]
    );
    let said = rejection.diagnoses()[0].to_string();
    assert!(
        said.contains("secret #2") && !said.contains("51Habc"),
        "{said}"
    );
}

#[tokio::test]
async fn a_stale_timestamp_says_how_far_the_clocks_are_apart() {
    let rejection = refused(&hoursmith(true), NOW - 412, SENT).await;
    assert_eq!(rejection.kind(), RejectionKind::TimestampTooOld);
    assert_eq!(
        rejection.diagnoses(),
        [Diagnosis::ClockSkew { seconds: 412 }]
    );
    assert_eq!(
        rejection.diagnoses()[0].to_string(),
        "the timestamp is 412 s behind this server's clock"
    );
    let ahead = refused(&hoursmith(true), NOW + 999, SENT).await;
    assert_eq!(ahead.diagnoses(), [Diagnosis::ClockSkew { seconds: -999 }]);
}

#[tokio::test]
async fn a_delivery_that_verifies_has_nothing_to_diagnose() {
    let mut headers = HeaderMap::new();
    sign::hoursmith(SECRET.as_bytes(), NOW, SENT.as_bytes()).insert_into(&mut headers);
    let answer = hoursmith(true)
        .receive(&headers, Bytes::from_static(SENT.as_bytes()))
        .await;
    assert!(matches!(answer, Ok(Outcome::Accepted { .. })), "{answer:?}");
}
