//! Receiving for many tenants: each delivery verified with its tenant's secrets,
//! every way of refusing one answered with its code, dedupe scoped by tenant.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hookwise_core::{
    ConfigError, GitHub, Hoursmith, ManualClock, MemoryStore, Mojave, Outcome, Provider, Receiver,
    Rejection, RejectionKind, StandardWebhooks, Stripe, Verified, sign,
    tenant::{LookupError, TenantId, TenantLocator, Tenants},
};
use http::{HeaderMap, HeaderName};

const NOW: u64 = 1_717_603_500;
const TEMPLATE: &str = "whsec_template_never_used";

fn body(id: &str, org: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"id":"{id}","type":"invoice.paid","created":1717603200,"orgId":"{org}",
            "livemode":true,"data":{{"invoice":{{"id":"inv_1"}},"payment":{{"id":"pay_1"}}}}}}"#
    ))
}

fn signed(secret: &str, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    sign::hoursmith(secret.as_bytes(), NOW, body).insert_into(&mut headers);
    headers
}

/// acme (rotating: new, then old) and globex; anything else unknown; `broken`
/// fails; `slow` never answers.
async fn secrets_of(tenant: TenantId) -> Result<Option<Vec<String>>, LookupError> {
    match tenant.as_str() {
        "acme" => Ok(Some(vec!["whsec_acme_new".into(), "whsec_acme_old".into()])),
        "globex" => Ok(Some(vec!["whsec_globex".into()])),
        "broken" => Err(LookupError::new("the secrets database is down")),
        "slow" => std::future::pending().await,
        _ => Ok(None),
    }
}

fn receiver(locator: TenantLocator) -> Receiver<Hoursmith, MemoryStore> {
    let clock = ManualClock::at_unix_secs(NOW);
    let tenants = Tenants::new(locator, secrets_of)
        .lookup_timeout(Duration::from_millis(200))
        .expect("a valid timeout");
    Receiver::new(
        Hoursmith::new(TEMPLATE).expect("a secret"),
        MemoryStore::new().clock(clock.clone()),
    )
    .expect("config")
    .clock(clock)
    .tenants(tenants)
    .expect("Hoursmith takes tenants")
}

async fn receive_at(
    receiver: &Receiver<Hoursmith, MemoryStore>,
    path: &str,
    secret: &str,
    body: Bytes,
) -> Result<Outcome<hookwise_core::hoursmith::Event>, Rejection> {
    receiver
        .receive_at(path, &signed(secret, &body), body)
        .await
}

fn kind<E: std::fmt::Debug>(result: Result<Outcome<E>, Rejection>) -> RejectionKind {
    result.expect_err("refused").kind()
}

#[tokio::test]
async fn a_tenants_delivery_verifies_with_its_own_secrets_and_reports_which() {
    let receiver = receiver(TenantLocator::path_segment(2));
    let at = "/webhooks/hoursmith/acme";
    for (secret, index) in [("whsec_acme_new", 0), ("whsec_acme_old", 1)] {
        let id = format!("evt_{index}");
        match receive_at(&receiver, at, secret, body(&id, "o")).await {
            Ok(Outcome::Accepted { delivery, .. }) => {
                assert_eq!(delivery.tenant().map(TenantId::as_str), Some("acme"));
                assert_eq!(delivery.verified().secret_index(), index);
                assert_eq!(
                    delivery.dedupe_key().as_str(),
                    format!("hoursmith:acme:{id}")
                );
            }
            other => panic!("{secret}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn another_tenants_secret_and_the_template_secret_are_mismatches() {
    let receiver = receiver(TenantLocator::path_segment(2));
    let at = "/webhooks/hoursmith/acme";
    for secret in ["whsec_globex", TEMPLATE] {
        assert_eq!(
            kind(receive_at(&receiver, at, secret, body("evt_1", "o")).await),
            RejectionKind::SignatureMismatch,
            "{secret}"
        );
    }
}

#[tokio::test]
async fn an_unknown_tenant_is_refused_as_a_wrong_signature() {
    let receiver = receiver(TenantLocator::path_segment(2));
    for path in [
        "/webhooks/hoursmith/initech", // the source does not know it
        "/webhooks/hoursmith/a%3Ab",   // not a tenant id
        "/webhooks/hoursmith",         // no tenant at all
        &format!("/webhooks/hoursmith/{}", "x".repeat(65)),
    ] {
        // Whatever it is signed with, the template's secret included.
        for secret in ["whsec_acme_new", TEMPLATE, "anything"] {
            assert_eq!(
                kind(receive_at(&receiver, path, secret, body("evt_1", "o")).await),
                RejectionKind::SignatureMismatch,
                "{path} {secret}"
            );
        }
    }
    // A malformed or stale header gets its own code, as for a known tenant.
    let mut malformed = HeaderMap::new();
    malformed.insert("hoursmith-signature", "garbage".parse().expect("a value"));
    for path in ["/webhooks/hoursmith/initech", "/webhooks/hoursmith/acme"] {
        let answer = receiver
            .receive_at(path, &malformed, body("evt_1", "o"))
            .await;
        assert_eq!(kind(answer), RejectionKind::SignatureMalformed, "{path}");
    }
}

#[tokio::test]
async fn a_failed_or_slow_lookup_is_a_503() {
    let receiver = receiver(TenantLocator::path_segment(2));
    for tenant in ["broken", "slow"] {
        let path = format!("/webhooks/hoursmith/{tenant}");
        let rejection = receive_at(&receiver, &path, "s", body("evt_1", "o"))
            .await
            .expect_err("refused");
        assert_eq!(
            rejection.kind(),
            RejectionKind::SecretsUnavailable,
            "{tenant}"
        );
        assert_eq!(rejection.status().as_u16(), 503);
        assert_eq!(rejection.code(), "secrets_unavailable");
        assert!(rejection.retry_after().is_some());
    }
}

#[tokio::test]
async fn invalid_secrets_from_the_source_are_a_503_not_an_acceptance() {
    let source = |_tenant: TenantId| async { Ok(Some(vec!["whsec_not base64!".to_owned()])) };
    let receiver = Receiver::new(
        StandardWebhooks::new("whsec_dGVtcGxhdGU=").expect("a secret"),
        MemoryStore::new(),
    )
    .expect("config")
    .tenants(Tenants::new(TenantLocator::path_segment(0), source))
    .expect("takes tenants");
    let headers = HeaderMap::new();
    let refused = receiver
        .receive_at("/acme", &headers, Bytes::from_static(b"{}"))
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), RejectionKind::SecretsUnavailable);
}

#[tokio::test]
async fn dedupe_is_scoped_by_tenant() {
    let receiver = receiver(TenantLocator::path_segment(2));
    let acme = |receiver| {
        receive_at(
            receiver,
            "/webhooks/hoursmith/acme",
            "whsec_acme_new",
            body("evt_same", "o"),
        )
    };
    match acme(&receiver).await {
        Ok(Outcome::Accepted { claim, .. }) => receiver.commit(&claim).await.expect("committed"),
        other => panic!("{other:?}"),
    }
    let globex = receive_at(
        &receiver,
        "/webhooks/hoursmith/globex",
        "whsec_globex",
        body("evt_same", "o"),
    )
    .await;
    assert!(
        matches!(globex, Ok(Outcome::Accepted { .. })),
        "another tenant's event of the same id is its own: {globex:?}"
    );
    assert!(
        matches!(acme(&receiver).await, Ok(Outcome::Duplicate { .. })),
        "the same tenant's is a duplicate"
    );
}

#[tokio::test]
async fn a_tenant_is_found_in_a_header_or_in_the_unverified_body() {
    let header = receiver(TenantLocator::header(HeaderName::from_static("x-tenant")));
    let payload = body("evt_h", "o");
    let mut headers = signed("whsec_globex", &payload);
    headers.insert("x-tenant", "globex".parse().expect("a value"));
    let answer = header.receive_at("/hook", &headers, payload).await;
    assert!(matches!(answer, Ok(Outcome::Accepted { .. })), "{answer:?}");

    let field = receiver(TenantLocator::json_field("/orgId"));
    let answer = receive_at(&field, "/hook", "whsec_acme_new", body("evt_b", "acme")).await;
    match answer {
        Ok(Outcome::Accepted { delivery, .. }) => {
            assert_eq!(delivery.tenant().map(TenantId::as_str), Some("acme"));
        }
        other => panic!("{other:?}"),
    }
    // The body names acme but is signed with globex's secret.
    let forged = receive_at(&field, "/hook", "whsec_globex", body("evt_f", "acme")).await;
    assert_eq!(kind(forged), RejectionKind::SignatureMismatch);
}

#[tokio::test]
async fn lookups_are_cached_for_known_and_unknown_tenants() {
    let lookups = Arc::new(AtomicUsize::new(0));
    let counted = lookups.clone();
    let source = move |tenant: TenantId| {
        counted.fetch_add(1, Ordering::SeqCst);
        secrets_of(tenant)
    };
    let receiver = Receiver::new(
        Hoursmith::new(TEMPLATE).expect("a secret"),
        MemoryStore::new(),
    )
    .expect("config")
    .clock(ManualClock::at_unix_secs(NOW))
    .tenants(Tenants::new(TenantLocator::path_segment(0), source))
    .expect("takes tenants");
    for i in 0..20 {
        let known = receive_at(
            &receiver,
            "/acme",
            "whsec_acme_new",
            body(&format!("e{i}"), "o"),
        );
        assert!(matches!(known.await, Ok(Outcome::Accepted { .. })));
        let unknown = receive_at(&receiver, "/initech", "s", body(&format!("e{i}"), "o"));
        assert_eq!(kind(unknown.await), RejectionKind::SignatureMismatch);
    }
    assert_eq!(lookups.load(Ordering::SeqCst), 2, "one lookup per tenant");
}

#[tokio::test]
async fn a_restored_delivery_finds_its_tenant_again() {
    let receiver = receiver(TenantLocator::path_segment(2));
    let payload = body("evt_r", "o");
    let headers = signed("whsec_acme_new", &payload);
    let verified = Verified::new(0).signed_at(NOW);
    let restored = receiver
        .restore(
            "/webhooks/hoursmith/acme",
            &headers,
            payload.clone(),
            Duration::from_secs(NOW),
            verified,
        )
        .expect("restored");
    assert_eq!(restored.dedupe_key().as_str(), "hoursmith:acme:evt_r");
    assert_eq!(restored.tenant().map(TenantId::as_str), Some("acme"));
    let lost = receiver.restore(
        "/webhooks/hoursmith",
        &headers,
        payload,
        Duration::from_secs(NOW),
        verified,
    );
    assert_eq!(
        lost.expect_err("no tenant").kind(),
        RejectionKind::InvalidPayload
    );
}

/// Each built-in provider takes per-tenant secrets, keeping its settings.
#[test]
fn every_built_in_provider_takes_tenant_secrets() {
    let secrets = ["whsec_dGVuYW50".to_owned()];
    let built: [(&str, Result<(), ConfigError>); 5] = [
        (
            "hoursmith",
            Hoursmith::new("t")
                .and_then(|p| p.for_tenant(&secrets))
                .map(drop),
        ),
        (
            "mojave",
            Mojave::new("t")
                .and_then(|p| p.for_tenant(&secrets))
                .map(drop),
        ),
        (
            "stripe",
            Stripe::new("t")
                .and_then(|p| p.for_tenant(&secrets))
                .map(drop),
        ),
        (
            "github",
            GitHub::new("t")
                .and_then(|p| p.for_tenant(&secrets))
                .map(drop),
        ),
        (
            "standard-webhooks",
            StandardWebhooks::new("whsec_dA==")
                .and_then(|p| p.for_tenant(&secrets))
                .map(drop),
        ),
    ];
    for (name, result) in built {
        assert_eq!(result, Ok(()), "{name}");
    }
    assert_eq!(
        Hoursmith::new("t")
            .and_then(|p| p.for_tenant(&[]))
            .map(drop),
        Err(ConfigError::NoSecrets)
    );
}

/// Every built-in provider verifies a tenant's delivery with that tenant's secret,
/// and refuses the same delivery sent for another tenant.
#[tokio::test]
async fn every_built_in_provider_verifies_with_the_tenants_secret() {
    async fn check<P: Provider>(
        template: P,
        secret: &'static str,
        body: &[u8],
        mut headers: HeaderMap,
    ) {
        let name = template.name();
        let source = move |tenant: TenantId| async move {
            Ok((tenant.as_str() == "acme").then(|| vec![secret.to_owned()]))
        };
        let locator = TenantLocator::header(HeaderName::from_static("x-tenant"));
        let receiver = Receiver::new(template, MemoryStore::new())
            .expect("config")
            .tenants(Tenants::new(locator, source))
            .expect("takes tenants");
        for (tenant, accepted) in [("acme", true), ("globex", false)] {
            headers.insert("x-tenant", tenant.parse().expect("a value"));
            let answer = receiver
                .receive(&headers, Bytes::copy_from_slice(body))
                .await;
            match (accepted, answer) {
                (true, Ok(Outcome::Accepted { delivery, .. })) => {
                    assert_eq!(
                        delivery.tenant().map(TenantId::as_str),
                        Some("acme"),
                        "{name}"
                    );
                }
                (false, Err(rejection)) => {
                    assert_eq!(rejection.kind(), RejectionKind::SignatureMismatch, "{name}");
                }
                (_, other) => panic!("{name} for {tenant}: {other:?}"),
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let secret = "tenant-secret";

    let body = format!(r#"{{"type":"invoice.paid","timestamp":{now},"data":{{"id":"inv_1"}}}}"#);
    let mut headers = HeaderMap::new();
    sign::mojave(secret.as_bytes(), body.as_bytes()).insert_into(&mut headers);
    check(
        Mojave::new("t").expect("a secret"),
        secret,
        body.as_bytes(),
        headers,
    )
    .await;

    let body = br#"{"id":"evt_1","object":"event","type":"a","created":1717603200,"livemode":true,"data":{"object":{}}}"#;
    let mut headers = HeaderMap::new();
    sign::stripe(secret.as_bytes(), now, body).insert_into(&mut headers);
    check(Stripe::new("t").expect("a secret"), secret, body, headers).await;

    let body = br#"{"action":"opened"}"#;
    let mut headers = HeaderMap::new();
    sign::github(secret.as_bytes(), body).insert_into(&mut headers);
    headers.insert("x-github-delivery", "d-1".parse().expect("a value"));
    headers.insert("x-github-event", "issues".parse().expect("a value"));
    check(GitHub::new("t").expect("a secret"), secret, body, headers).await;

    let body = br#"{"type":"user.created","timestamp":"2024-06-05T16:00:00Z","data":{}}"#;
    let sw_secret = "whsec_dGVuYW50LXNlY3JldA==";
    let mut headers = HeaderMap::new();
    sign::standard_webhooks(sw_secret, "msg_1", now, body)
        .expect("a valid secret")
        .insert_into(&mut headers);
    check(
        StandardWebhooks::new("whsec_dA==").expect("a secret"),
        sw_secret,
        body,
        headers,
    )
    .await;
}
