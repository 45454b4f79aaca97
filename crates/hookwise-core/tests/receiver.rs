//! The entry point: the contract's order and outcomes, for both providers.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use hookwise_core::{
    ConfigError, DedupeStore, Duplicate, Hoursmith, ManualClock, MemoryStore, Mojave, Outcome,
    Receiver, RejectionKind, hoursmith::EventData, sign,
};
use http::{HeaderMap, HeaderValue, header::CONTENT_LENGTH};

mod window;
use window::Window;

const NOW: u64 = 1_717_603_500;
const HS_SECRET: &[u8] = b"whsec_hoursmith";
const MJ_SECRET: &[u8] = b"mojave_secret";

fn hoursmith_body(id: &str, event_type: &str, data: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"id":"{id}","type":"{event_type}","created":1717603200,
            "orgId":"00000000-0000-0000-0000-000000000000","livemode":true,"data":{data}}}"#
    ))
}

fn paid(id: &str) -> Bytes {
    hoursmith_body(
        id,
        "invoice.paid",
        r#"{"invoice":{"id":"inv_1"},"payment":{"id":"pay_1"}}"#,
    )
}

fn hoursmith_headers(body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    sign::hoursmith(HS_SECRET, NOW, body).insert_into(&mut headers);
    headers
}

struct Fixture {
    receiver: Receiver<Hoursmith, Arc<MemoryStore>>,
    store: Arc<MemoryStore>,
    clock: ManualClock,
}

fn fixture(hoursmith: Hoursmith) -> Fixture {
    let clock = ManualClock::at_unix_secs(NOW);
    let store = Arc::new(MemoryStore::new().clock(clock.clone()));
    let receiver = Receiver::new(hoursmith, store.clone())
        .expect("valid config")
        .clock(clock.clone());
    Fixture {
        receiver,
        store,
        clock,
    }
}

fn hoursmith() -> Hoursmith {
    Hoursmith::new(HS_SECRET).expect("valid")
}

#[tokio::test]
async fn new_event_is_accepted_with_typed_event_and_raw_body() {
    let f = fixture(hoursmith());
    let body = paid("evt_1");
    let outcome = f
        .receiver
        .receive(&hoursmith_headers(&body), body.clone())
        .await;
    let Ok(Outcome::Accepted { delivery, claim }) = outcome else {
        panic!("expected accepted, got {outcome:?}");
    };
    assert_eq!(delivery.provider(), "hoursmith");
    assert_eq!(delivery.raw_body(), &body);
    assert_eq!(delivery.dedupe_key().as_str(), "hoursmith:evt_1");
    assert_eq!(claim.key(), delivery.dedupe_key());
    assert_eq!(delivery.verified().secret_index(), 0);
    assert!(matches!(
        delivery.event().data(),
        EventData::InvoicePaid { invoice, payment }
            if invoice.id() == Some("inv_1") && payment.id() == Some("pay_1")
    ));
}

#[tokio::test]
async fn retry_while_in_flight_then_after_commit_is_a_duplicate() {
    let f = fixture(hoursmith());
    let body = paid("evt_1");
    let headers = hoursmith_headers(&body);
    let Ok(Outcome::Accepted { claim, .. }) = f.receiver.receive(&headers, body.clone()).await
    else {
        panic!("first delivery accepted");
    };
    // Provisional: the first delivery may still fail, so the retry is not
    // acknowledged (409) and comes back.
    let retry = f.receiver.receive(&headers, body.clone()).await;
    let refused = retry.expect_err("409");
    assert_eq!(refused.kind(), RejectionKind::InProgress);
    assert_eq!(refused.status(), 409);

    // Confirmed (taken on): the retry is a duplicate, acknowledged.
    assert!(f.receiver.confirm(&claim).await.expect("confirm"));
    let retry = f
        .receiver
        .receive(&headers, body.clone())
        .await
        .expect("200");
    assert!(
        matches!(
            retry,
            Outcome::Duplicate {
                state: Duplicate::InFlight,
                ..
            }
        ),
        "{retry:?}"
    );

    f.receiver.commit(&claim).await.expect("commit");
    let retry = f.receiver.receive(&headers, body).await.expect("200");
    assert!(
        matches!(
            retry,
            Outcome::Duplicate {
                state: Duplicate::Processed,
                ..
            }
        ),
        "{retry:?}"
    );
    assert_eq!(retry.label(), "duplicate");
    assert_eq!(retry.to_response().status(), 200);
}

#[tokio::test]
async fn released_claim_lets_the_retry_be_processed() {
    let f = fixture(hoursmith());
    let body = paid("evt_1");
    let headers = hoursmith_headers(&body);
    let Ok(Outcome::Accepted { claim, .. }) = f.receiver.receive(&headers, body.clone()).await
    else {
        panic!("first delivery accepted");
    };
    f.receiver.release(&claim).await.expect("release");
    let retry = f.receiver.receive(&headers, body).await.expect("200");
    assert!(matches!(retry, Outcome::Accepted { .. }), "{retry:?}");
}

#[tokio::test]
async fn a_retry_signed_later_is_still_the_same_event() {
    // Hoursmith re-signs each retry with a new t; the id is what dedupes.
    let f = fixture(hoursmith());
    let body = paid("evt_1");
    let Ok(Outcome::Accepted { claim, .. }) = f
        .receiver
        .receive(&hoursmith_headers(&body), body.clone())
        .await
    else {
        panic!("accepted");
    };
    f.receiver.commit(&claim).await.expect("commit");
    f.clock.advance(Duration::from_secs(3600));
    let mut later = HeaderMap::new();
    sign::hoursmith(HS_SECRET, NOW + 3600, &body).insert_into(&mut later);
    let retry = f.receiver.receive(&later, body).await.expect("200");
    assert!(matches!(retry, Outcome::Duplicate { .. }), "{retry:?}");
}

#[tokio::test]
async fn failed_verification_never_touches_the_store() {
    let f = fixture(hoursmith());
    let body = paid("evt_1");
    let mut forged = HeaderMap::new();
    sign::hoursmith(b"whsec_attacker", NOW, &body).insert_into(&mut forged);
    for headers in [forged, HeaderMap::new()] {
        let err = f
            .receiver
            .receive(&headers, body.clone())
            .await
            .expect_err("401");
        assert_eq!(err.status(), 401);
    }
    let stats = f.store.stats();
    assert_eq!((stats.claims, stats.duplicates, stats.keys), (0, 0, 0));
}

#[tokio::test]
async fn stale_signature_is_401_before_parsing() {
    let f = fixture(hoursmith());
    let body = Bytes::from_static(b"not even json");
    let mut headers = HeaderMap::new();
    sign::hoursmith(HS_SECRET, NOW - 301, &body).insert_into(&mut headers);
    let err = f.receiver.receive(&headers, body).await.expect_err("stale");
    assert_eq!(err.kind(), RejectionKind::TimestampTooOld);
}

#[tokio::test]
async fn verified_garbage_is_400_and_not_claimed() {
    let f = fixture(hoursmith());
    for body in [
        Bytes::from_static(b"{not json"),
        hoursmith_body("evt_1", "invoice.paid", r#"{"invoice":{"id":"i"}}"#),
    ] {
        let err = f
            .receiver
            .receive(&hoursmith_headers(&body), body.clone())
            .await
            .expect_err("400");
        assert_eq!(
            (err.status().as_u16(), err.code()),
            (400, "invalid_payload")
        );
    }
    assert_eq!(f.store.stats().keys, 0);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let f = fixture(hoursmith());
    let receiver = Receiver::new(hoursmith(), f.store.clone())
        .expect("valid")
        .body_limit(16)
        .expect("non-zero");
    let body = paid("evt_1");
    let err = receiver
        .receive(&hoursmith_headers(&body), body.clone())
        .await
        .expect_err("too large");
    assert_eq!(err.status(), 413);

    let mut declared = HeaderMap::new();
    declared.insert(CONTENT_LENGTH, HeaderValue::from(17));
    assert_eq!(
        receiver
            .check_content_length(&declared)
            .map_err(|r| r.kind()),
        Err(RejectionKind::PayloadTooLarge)
    );
    declared.insert(CONTENT_LENGTH, HeaderValue::from(16));
    assert!(receiver.check_content_length(&declared).is_ok());
    assert_eq!(receiver.limit(), 16);
    assert_eq!(hookwise_core::DEFAULT_BODY_LIMIT, 1 << 20);
}

#[tokio::test]
async fn test_events_are_delivered_marked_or_skipped_when_configured() {
    let body = Bytes::from(
        String::from_utf8_lossy(&hoursmith_body(
            "evt_test",
            "task.created",
            r#"{"test":true,"task":{"id":"t_1"}}"#,
        ))
        .replace(r#""livemode":true"#, r#""livemode":false"#),
    );

    let delivered = fixture(hoursmith());
    match delivered
        .receiver
        .receive(&hoursmith_headers(&body), body.clone())
        .await
    {
        Ok(Outcome::Accepted { delivery, .. }) => assert!(delivery.event().is_test()),
        other => panic!("{other:?}"),
    }

    let dropping = fixture(hoursmith().drop_test_events(true));
    let outcome = dropping
        .receiver
        .receive(&hoursmith_headers(&body), body)
        .await
        .expect("acknowledged");
    assert!(
        matches!(&outcome, Outcome::Skipped(d) if d.event().is_test()),
        "{outcome:?}"
    );
    assert_eq!(outcome.to_response().status(), 200);
    assert_eq!(
        dropping.store.stats().claims,
        0,
        "skipped events are not claimed"
    );
}

#[tokio::test]
async fn unknown_types_are_accepted() {
    let f = fixture(hoursmith());
    let body = hoursmith_body("evt_9", "invoice.voided", r#"{"invoice":{"id":"i"}}"#);
    match f.receiver.receive(&hoursmith_headers(&body), body).await {
        Ok(Outcome::Accepted { delivery, .. }) => {
            assert!(
                matches!(delivery.event().data(), EventData::Unknown { event_type, .. } if event_type == "invoice.voided")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn mojave_retry_of_the_same_bytes_is_a_duplicate_and_new_bytes_are_new() {
    let clock = ManualClock::at_unix_secs(NOW);
    let receiver = Receiver::new(Mojave::new(MJ_SECRET).expect("valid"), MemoryStore::new())
        .expect("valid")
        .clock(clock);
    let deliver = |body: Bytes| {
        let mut headers = HeaderMap::new();
        sign::mojave(MJ_SECRET, &body).insert_into(&mut headers);
        let receiver = &receiver;
        async move { receiver.receive(&headers, body).await }
    };
    let body = Bytes::from(format!(
        r#"{{"type":"invoice.paid","timestamp":{NOW},"data":{{"id":"inv_1"}}}}"#
    ));
    let first = deliver(body.clone()).await.expect("accepted");
    let Outcome::Accepted { delivery, claim } = first else {
        panic!("{first:?}")
    };
    assert!(delivery.dedupe_key().as_str().starts_with("mojave:"));
    receiver.commit(&claim).await.expect("commit");
    assert!(matches!(deliver(body).await, Ok(Outcome::Duplicate { .. })));

    let other = Bytes::from(format!(
        r#"{{"type":"invoice.paid","timestamp":{},"data":{{"id":"inv_1"}}}}"#,
        NOW + 1
    ));
    assert!(matches!(deliver(other).await, Ok(Outcome::Accepted { .. })));

    let stale = Bytes::from(format!(
        r#"{{"type":"invoice.paid","timestamp":{},"data":{{"id":"inv_1"}}}}"#,
        NOW - 86_401
    ));
    let err = deliver(stale).await.expect_err("too old");
    assert_eq!(err.kind(), RejectionKind::TimestampTooOld);
}

#[test]
fn replay_window_longer_than_retention_is_refused() {
    let short = MemoryStore::new()
        .retention(Duration::from_secs(3600))
        .expect("non-zero");
    let err = Receiver::new(Mojave::new(MJ_SECRET).expect("valid"), short)
        .expect_err("24 h max age > 1 h retention");
    assert!(matches!(
        err,
        ConfigError::ReplayWindowExceedsRetention {
            provider: "mojave",
            ..
        }
    ));

    // A 1 h max age with the 300 s tolerance: a payload is accepted from 300 s before
    // its timestamp until the second 1 h after it is over, 3901 s in all.
    let one_hour = || {
        Mojave::new(MJ_SECRET)
            .expect("valid")
            .max_age(Duration::from_secs(3600))
            .expect("non-zero")
    };
    let (whole, shorter) = (Duration::from_secs(3901), [Duration::from_secs(3600)]);
    window::retention_must_cover(one_hour, "mojave", whole, &shorter);
    assert_eq!(
        MemoryStore::new().retention_period(),
        Duration::from_secs(96 * 3600)
    );
}

#[tokio::test]
async fn one_store_serves_two_providers_without_key_clashes() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::at_unix_secs(NOW);
    let hs = Receiver::new(hoursmith(), store.clone())
        .expect("valid")
        .clock(clock.clone());
    let same_id = Mojave::new(MJ_SECRET)
        .expect("valid")
        .dedupe_key_with(|_, _| "evt_1".to_owned());
    let mj = Receiver::new(same_id, store.clone())
        .expect("valid")
        .clock(clock);

    let body = paid("evt_1");
    assert!(matches!(
        hs.receive(&hoursmith_headers(&body), body).await,
        Ok(Outcome::Accepted { .. })
    ));

    let body = Bytes::from(format!(r#"{{"type":"x","timestamp":{NOW},"data":{{}}}}"#));
    let mut headers = HeaderMap::new();
    sign::mojave(MJ_SECRET, &body).insert_into(&mut headers);
    assert!(matches!(
        mj.receive(&headers, body).await,
        Ok(Outcome::Accepted { .. })
    ));
    assert_eq!(store.stats().keys, 2);
}

#[tokio::test]
async fn restore_rebuilds_an_accepted_delivery_long_after_its_tolerance() {
    let clock = ManualClock::at_unix_secs(NOW);
    let receiver = Receiver::new(Mojave::new(MJ_SECRET).expect("valid"), MemoryStore::new())
        .expect("valid")
        .clock(clock.clone());
    let body = Bytes::from(format!(
        r#"{{"type":"invoice.paid","timestamp":{NOW},"data":{{"id":"inv_1"}}}}"#
    ));
    let mut headers = HeaderMap::new();
    sign::mojave(MJ_SECRET, &body).insert_into(&mut headers);
    let Ok(Outcome::Accepted { delivery, .. }) = receiver.receive(&headers, body.clone()).await
    else {
        panic!("accepted");
    };
    assert_eq!(delivery.received_at(), Duration::from_secs(NOW));

    // Two days later the payload is far past its max age, yet it was accepted then.
    clock.advance(Duration::from_secs(2 * 86_400));
    assert!(receiver.receive(&headers, body.clone()).await.is_err());
    let restored = receiver
        .restore(
            "",
            &headers,
            body,
            delivery.received_at(),
            *delivery.verified(),
        )
        .expect("restored as of its receipt");
    assert_eq!(restored.event(), delivery.event());
    assert_eq!(restored.dedupe_key(), delivery.dedupe_key());
    assert_eq!(restored.verified(), delivery.verified());
}

// Issue item 5: the retention check must cover the whole window of receiver time in
// which one delivery verifies, not just the tolerance. A signed `t` verifies while the
// whole seconds of `now` are within the tolerance of it, so from `t - tol` up to the
// last millisecond of the second `t + tol`; a Mojave payload `timestamp` from
// `timestamp - tolerance` to the last millisecond of the second `timestamp + max_age`.

#[test]
fn a_replay_after_retention_equal_to_the_tolerance_is_refused_at_construction() {
    // Tolerance 300 s: a signature is first seen at t - 300 and replayable until
    // t + 300 (and the rest of that second), so a 300 s retention forgets it in time
    // for the replay to be processed again.
    let tolerance_300 = || {
        hoursmith()
            .tolerance(Duration::from_secs(300))
            .expect("non-zero")
    };
    let (whole, shorter) = (Duration::from_secs(601), [Duration::from_secs(300)]);
    window::retention_must_cover(tolerance_300, "hoursmith", whole, &shorter);
}

#[test]
fn a_retention_of_twice_the_tolerance_misses_the_last_second_and_is_refused() {
    // `now` is compared in whole seconds: t still verifies at t + 300.999 s, 600.999 s
    // after it first could, so 600 s is not enough; 601 s is.
    let (whole, shorter) = (Duration::from_secs(601), [Duration::from_secs(600)]);
    window::retention_must_cover(hoursmith, "hoursmith", whole, &shorter);
}

#[tokio::test]
async fn a_hoursmith_replay_at_the_end_of_the_window_is_a_duplicate_under_the_shortest_retention_allowed()
 {
    // Signed at NOW with the default 300 s tolerance.
    let body = paid("evt_replayed");
    let headers = hoursmith_headers(&body);
    let signed = Window::signed(NOW, 300);
    window::replay_at_the_end_is_a_duplicate(hoursmith(), &headers, body, signed).await;
}

#[tokio::test]
async fn a_mojave_replay_at_the_end_of_the_window_is_a_duplicate_under_the_shortest_retention_allowed()
 {
    let mojave = Mojave::new(MJ_SECRET)
        .expect("valid")
        .max_age(Duration::from_secs(3600))
        .expect("non-zero");
    // Stamped NOW, with the default 300 s tolerance.
    let body = Bytes::from(format!(
        r#"{{"type":"invoice.paid","timestamp":{NOW},"data":{{"id":"inv_1"}}}}"#
    ));
    let mut headers = HeaderMap::new();
    sign::mojave(MJ_SECRET, &body).insert_into(&mut headers);
    let stamped = Window::payload(NOW, 3600, 300);
    window::replay_at_the_end_is_a_duplicate(mojave, &headers, body, stamped).await;
}
