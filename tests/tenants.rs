//! Many tenants over real sockets: the tower layer, the axum extractor and a durable
//! endpoint (Redis) each verify a delivery with its tenant's secret, found in the
//! path, refuse an unknown tenant as a wrong signature, and hand the handler the
//! tenant with a dedupe key scoped by it.

use std::time::Duration;

use axum::{
    Extension, Router,
    http::StatusCode,
    routing::{post, post_service},
};
use bytes::Bytes;
use hookwise::{
    Hoursmith, MemoryStore, Receiver, Webhooks,
    axum::Webhook,
    hoursmith,
    tenant::{LookupError, TenantId, TenantLocator, Tenants},
    tower::{WebhookEndpoint, WebhookLayer},
};
use hookwise_redis::{RedisQueue, RedisStore};
use hookwise_test_support::*;

/// acme and globex; everything else unknown; `down` fails.
async fn secrets_of(tenant: TenantId) -> Result<Option<Vec<String>>, LookupError> {
    match tenant.as_str() {
        "acme" => Ok(Some(vec!["whsec_acme".into()])),
        "globex" => Ok(Some(vec![
            "whsec_globex_new".into(),
            "whsec_globex_old".into(),
        ])),
        "down" => Err(LookupError::new("the tenants database is down")),
        _ => Ok(None),
    }
}

fn tenanted<S: hookwise::DedupeStore>(store: S) -> Receiver<Hoursmith, S> {
    Receiver::new(Hoursmith::new("per-tenant").expect("a secret"), store)
        .expect("config")
        .tenants(Tenants::new(TenantLocator::path_segment(1), secrets_of))
        .expect("Hoursmith takes tenants")
}

/// `id` as Hoursmith sends it, signed now with `secret`.
fn signed(secret: &str, id: &str) -> hookwise_test_support::Delivery {
    let body = Bytes::from(format!(
        r#"{{"id":"{id}","type":"task.created","created":1717603200,"orgId":"o",
            "livemode":true,"data":{{"task":{{"id":"t_1"}}}}}}"#
    ));
    let mut headers = http::HeaderMap::new();
    hookwise::sign::hoursmith(secret.as_bytes(), now(), &body).insert_into(&mut headers);
    hookwise_test_support::Delivery { headers, body }
}

/// The tenant and dedupe key a handler saw, as `tenant key`.
fn seen(delivery: &hookwise::Delivery<hoursmith::Event>) -> String {
    let tenant = delivery.tenant().map_or("-", TenantId::as_str);
    format!("{tenant} {}", delivery.dedupe_key())
}

/// The answers every adapter must give: the tenant's own secret accepted (its
/// rotation too), another tenant's or the template's refused, an unknown tenant
/// refused as a wrong signature, a failed lookup a 503.
async fn answers_every_case(client: &HttpClient, addr: std::net::SocketAddr, prefix: &str) {
    let cases = [
        ("acme", "whsec_acme", "evt_1", 200, ""),
        ("globex", "whsec_globex_old", "evt_1", 200, ""),
        (
            "acme",
            "whsec_globex_new",
            "evt_2",
            401,
            "signature_mismatch",
        ),
        ("acme", "per-tenant", "evt_3", 401, "signature_mismatch"),
        ("initech", "whsec_acme", "evt_4", 401, "signature_mismatch"),
        ("down", "whsec_acme", "evt_5", 503, "secrets_unavailable"),
    ];
    for (tenant, secret, id, status, code) in cases {
        let answer = send(
            client,
            addr,
            &format!("/{prefix}/{tenant}"),
            &signed(secret, id),
        )
        .await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{prefix} {tenant} {secret}: {answer:?}"
        );
        if !code.is_empty() {
            assert_eq!(
                answer.body,
                format!(r#"{{"error":"{code}"}}"#),
                "{prefix} {tenant}"
            );
        }
        if status == 503 {
            assert!(answer.headers.contains_key(http::header::RETRY_AFTER));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_and_the_extractor_verify_each_tenant_with_its_own_secret() {
    let recorder = Recorder::default();
    // The layer: the route's handler gets the verified delivery.
    let layered = Webhooks::new(tenanted(MemoryStore::new()));
    let on_layered = {
        let recorder = recorder.clone();
        move |Extension(delivery): Extension<hookwise::Delivery<hoursmith::Event>>| {
            recorder.record(&format!("layer {}", seen(&delivery)));
            std::future::ready(StatusCode::OK)
        }
    };
    // The extractor, run in the background by the runtime.
    let extracted = Webhooks::new(tenanted(MemoryStore::new()));
    let on_extracted = {
        let recorder = recorder.clone();
        move |webhook: Webhook<Hoursmith>| {
            let recorder = recorder.clone();
            async move {
                webhook
                    .process_in_background(move |delivery| {
                        recorder.record(&format!("extractor {}", seen(&delivery)));
                        std::future::ready(Ok::<(), std::convert::Infallible>(()))
                    })
                    .await
            }
        }
    };
    let app = Router::new()
        .route(
            "/layer/{tenant}",
            post(on_layered).route_layer(WebhookLayer::new(&layered).expect("in memory")),
        )
        .route("/extractor/{tenant}", post(on_extracted))
        .with_state(extracted.clone());
    let addr = serve(app).await;
    let client = client();
    answers_every_case(&client, addr, "layer").await;
    answers_every_case(&client, addr, "extractor").await;
    layered.shutdown(Duration::from_secs(5)).await;
    extracted.shutdown(Duration::from_secs(5)).await;
    let mut ids = recorder.ids();
    ids.sort();
    assert_eq!(
        ids,
        [
            "extractor acme hoursmith:acme:evt_1",
            "extractor globex hoursmith:globex:evt_1",
            "layer acme hoursmith:acme:evt_1",
            "layer globex hoursmith:globex:evt_1",
        ],
        "only the accepted ones ran, each with its tenant"
    );
}

/// A durable endpoint stores the delivery before its 200; the reader restores it
/// later, and finds the tenant again from the stored request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_endpoint_restores_each_delivery_with_its_tenant() {
    let Some(redis) = RedisServer::start("tenants on a durable queue") else {
        return;
    };
    let url = redis.url();
    let recorder = Recorder::default();
    let recording = recorder.clone();
    let webhooks = Webhooks::builder(tenanted(RedisStore::new(&url).expect("store")))
        .durable_queue(RedisQueue::new(&url).expect("queue"))
        .handler(
            "record",
            move |delivery: hookwise::Delivery<hoursmith::Event>| {
                recording.record(&seen(&delivery));
                std::future::ready(Ok::<(), std::convert::Infallible>(()))
            },
        )
        .build()
        .expect("valid");
    let endpoint = WebhookEndpoint::new(&webhooks, "record").expect("registered");
    let addr = serve(Router::new().route("/durable/{tenant}", post_service(endpoint))).await;
    answers_every_case(&client(), addr, "durable").await;
    assert_eq!(recorder.wait_for(2, Duration::from_secs(10)).await, 2);
    webhooks.shutdown(Duration::from_secs(5)).await;
    let mut ids = recorder.ids();
    ids.sort();
    assert_eq!(
        ids,
        ["acme hoursmith:acme:evt_1", "globex hoursmith:globex:evt_1"]
    );
}
