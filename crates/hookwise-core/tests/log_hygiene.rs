//! What a rejection can put in a log line: never a secret, a signature, or the body's
//! content. Adapters log `Rejection`'s `Display` (its code and detail).

use std::time::Duration;

use bytes::Bytes;
use hookwise_core::{
    GitHub, Hoursmith, Mojave, Provider, RejectionKind, StandardWebhooks, Stripe, hoursmith::Event,
    mojave::Event as MojaveEvent, sign,
};
use http::HeaderMap;

const PRIVATE: &str = "jane.doe@example.com";

/// Verified envelopes whose fields have the wrong type: the parser's message would
/// quote the offending value.
#[test]
fn an_envelope_error_does_not_quote_the_body() {
    let bodies = [
        format!(
            r#"{{"id":"e1","type":"task.created","created":1,"orgId":"o","livemode":"{PRIVATE}","data":{{}}}}"#
        ),
        format!(
            r#"{{"id":"e1","type":"task.created","created":"{PRIVATE}","orgId":"o","livemode":true,"data":{{}}}}"#
        ),
        format!(
            r#"{{"id":["{PRIVATE}"],"type":"x","created":1,"orgId":"o","livemode":true,"data":{{}}}}"#
        ),
        format!(
            r#"{{"id":"e1","type":"x","created":1,"orgId":"o","livemode":true,"data":"{PRIVATE}"}}"#
        ),
    ];
    for body in &bodies {
        let rejection = Event::from_json(body.as_bytes()).expect_err("wrong types");
        assert_eq!(rejection.kind(), RejectionKind::InvalidPayload);
        let logged = rejection.to_string();
        assert!(!logged.contains(PRIVATE), "{logged}");
        assert!(logged.contains("line 1 column"), "{logged}");
    }
    let mojave = format!(r#"{{"type":"invoice.paid","timestamp":"{PRIVATE}","data":{{}}}}"#);
    let logged = MojaveEvent::from_json(mojave.as_bytes())
        .expect_err("wrong type")
        .to_string();
    assert!(!logged.contains(PRIVATE), "{logged}");
}

#[test]
fn an_envelope_error_still_says_what_is_wrong() {
    let missing =
        Event::from_json(br#"{"type":"x","created":1,"orgId":"o","livemode":true,"data":{}}"#)
            .expect_err("no id");
    assert!(
        missing.to_string().contains("missing field `id`"),
        "{missing}"
    );
    let syntax = Event::from_json(b"{\"id\":").expect_err("truncated");
    assert!(syntax.to_string().contains("line 1 column"), "{syntax}");
}

#[test]
fn rejections_on_the_way_in_do_not_log_secrets_or_signatures() {
    let secret = "whsec_log_hygiene";
    let body = Bytes::from_static(br#"{"type":"invoice.paid","timestamp":1,"data":{}}"#);
    let now = Duration::from_secs(1_717_603_200);
    let expected = sign::mojave(secret.as_bytes(), &body);
    let mojave = Mojave::new(secret).expect("secret");
    let mut forged = HeaderMap::new();
    sign::mojave(b"other", &body).insert_into(&mut forged);
    let sent = forged
        .get("x-mojave-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("signed");
    let mut too_old = HeaderMap::new();
    expected.insert_into(&mut too_old);

    let hoursmith = Hoursmith::new(secret).expect("secret");
    let mut stale = HeaderMap::new();
    sign::hoursmith(b"other", 1, &body).insert_into(&mut stale);

    let rejections = [
        mojave.verify(&forged, &body, now).expect_err("forged"),
        mojave.parse(&too_old, &body, now).expect_err("too old"),
        hoursmith.verify(&stale, &body, now).expect_err("stale"),
        hoursmith.verify(&forged, &body, now).expect_err("missing"),
    ];
    for rejection in rejections {
        let logged = format!("{rejection} {rejection:?} {}", rejection.body());
        assert!(!logged.contains(secret), "{logged}");
        assert!(!logged.contains(expected.value()), "{logged}");
        assert!(!logged.contains(&sent), "{logged}");
    }
}

#[test]
fn new_providers_do_not_log_secrets_or_signatures() {
    let secret = "whsec_bG9nLWh5Z2llbmU=";
    let body = Bytes::from_static(br#"{"id":"evt_1","type":"x"}"#);
    let now = Duration::from_secs(1_717_603_200);
    let t = now.as_secs();

    let mut cases: Vec<(hookwise_core::Rejection, String)> = Vec::new();
    let forged = sign::stripe(b"other", t, &body);
    let mut headers = HeaderMap::new();
    forged.insert_into(&mut headers);
    let stripe = Stripe::new(secret).expect("secret");
    cases.push((
        stripe.verify(&headers, &body, now).expect_err("forged"),
        forged.value().to_owned(),
    ));
    let stale = sign::stripe(secret.as_bytes(), 1, &body);
    let mut headers = HeaderMap::new();
    stale.insert_into(&mut headers);
    cases.push((
        stripe.verify(&headers, &body, now).expect_err("stale"),
        stale.value().to_owned(),
    ));

    let forged = sign::github(b"other", &body);
    let mut headers = HeaderMap::new();
    forged.insert_into(&mut headers);
    cases.push((
        GitHub::new(secret)
            .expect("secret")
            .verify(&headers, &body, now)
            .expect_err("forged"),
        forged.value().to_owned(),
    ));

    let forged = sign::standard_webhooks("whsec_b3RoZXI=", "msg_1", t, &body).expect("b64");
    let mut headers = HeaderMap::new();
    forged.insert_into(&mut headers);
    let sent = forged.get("webhook-signature").expect("signed").to_owned();
    let provider = StandardWebhooks::new(secret).expect("secret");
    cases.push((
        provider.verify(&headers, &body, now).expect_err("forged"),
        sent.clone(),
    ));
    let mut headers = HeaderMap::new();
    forged.insert_into(&mut headers);
    headers.remove("webhook-id");
    cases.push((
        provider.verify(&headers, &body, now).expect_err("no id"),
        sent,
    ));

    for (rejection, sent) in cases {
        let logged = format!("{rejection} {rejection:?} {}", rejection.body());
        assert!(!logged.contains(secret), "{logged}");
        assert!(!logged.contains("bG9nLWh5Z2llbmU"), "{logged}");
        assert!(!logged.contains(&sent), "{logged}");
    }
}
