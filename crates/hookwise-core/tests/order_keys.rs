//! What each built-in provider orders by: the resource an event is about, and the
//! provider's time for it.

use hookwise_core::{
    GitHub, Hoursmith, Mojave, Provider, StandardWebhooks, Stripe, github, hoursmith, mojave,
    ordering::OrderKey, standard_webhooks, stripe,
};

fn hoursmith_key(event_type: &str, data: &str) -> Option<OrderKey> {
    let body = format!(
        r#"{{"id":"evt_1","type":"{event_type}","created":1717603200,"orgId":"o","livemode":true,"data":{data}}}"#
    );
    let event = hoursmith::Event::from_json(body.as_bytes()).expect("an event");
    Hoursmith::new("whsec_x").expect("secret").order_key(&event)
}

#[test]
fn hoursmith_orders_by_the_main_snapshot_at_created() {
    let paid = hoursmith_key(
        "invoice.paid",
        r#"{"invoice":{"id":"inv_1"},"payment":{"id":"pay_1"}}"#,
    );
    assert_eq!(paid, Some(OrderKey::new("invoice:inv_1").at(1717603200)));
    let task = hoursmith_key("task.completed", r#"{"task":{"id":"t_9"}}"#);
    assert_eq!(task.as_ref().map(OrderKey::resource), Some("task:t_9"));
    // A type this version does not know: its prefix's object, when there is one.
    let unknown = hoursmith_key("invoice.refunded", r#"{"invoice":{"id":"inv_2"}}"#);
    assert_eq!(
        unknown.as_ref().map(OrderKey::resource),
        Some("invoice:inv_2")
    );
    assert_eq!(
        hoursmith_key("audit.logged", r#"{"entry":{"id":"a"}}"#),
        None
    );
    // A snapshot without an id names no resource.
    assert_eq!(hoursmith_key("client.created", r#"{"client":{}}"#), None);
}

#[test]
fn mojave_orders_by_the_resource_named_by_the_type_at_its_timestamp() {
    let body =
        br#"{"type":"invoice.paid","timestamp":1717603200,"data":{"id":"inv_7","total":10}}"#;
    let event = mojave::Event::from_json(body).expect("an event");
    assert_eq!(
        Mojave::new("secret").expect("secret").order_key(&event),
        Some(OrderKey::new("invoice:inv_7").at(1717603200))
    );
}

#[test]
fn stripe_orders_by_the_object_at_created() {
    let body = br#"{"id":"evt_1","type":"customer.updated","created":1717603200,"livemode":false,
        "data":{"object":{"id":"cus_1","object":"customer"}}}"#;
    let event = stripe::Event::from_json(body).expect("an event");
    assert_eq!(
        Stripe::new("whsec_x").expect("secret").order_key(&event),
        Some(OrderKey::new("cus_1").at(1717603200))
    );
}

fn github_key(payload: &str) -> Option<OrderKey> {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-github-event", "issues".parse().expect("header"));
    headers.insert("x-github-delivery", "d-1".parse().expect("header"));
    let event = github::Event::from_request(&headers, payload.as_bytes()).expect("an event");
    GitHub::new("secret").expect("secret").order_key(&event)
}

#[test]
fn github_orders_by_issue_or_pull_request_else_repository_without_a_time() {
    let repo = r#""repository":{"full_name":"octo/hello"}"#;
    assert_eq!(
        github_key(&format!(
            r#"{{"action":"edited","issue":{{"number":12}},{repo}}}"#
        )),
        Some(OrderKey::new("octo/hello#12"))
    );
    assert_eq!(
        github_key(&format!(
            r#"{{"action":"opened","pull_request":{{"number":3}},{repo}}}"#
        )),
        Some(OrderKey::new("octo/hello#3"))
    );
    assert_eq!(
        github_key(&format!(r#"{{"ref":"refs/heads/main",{repo}}}"#)),
        Some(OrderKey::new("octo/hello"))
    );
    assert_eq!(github_key(r#"{"zen":"Keep it logically awesome."}"#), None);
}

#[test]
fn standard_webhooks_names_no_resource() {
    let event = standard_webhooks::Event::from_parts(
        "msg_1",
        1717603200,
        br#"{"type":"invoice.paid","data":{"id":"inv_1"}}"#,
    )
    .expect("an event");
    let provider = StandardWebhooks::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
    assert_eq!(provider.order_key(&event), None);
}
