//! A GitHub delivery: its identity and event name from the headers, the JSON payload.

use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{DELIVERY_HEADER, EVENT_HEADER};
use crate::{Rejection, RejectionKind, provider::single_header, snapshot::parse_envelope};

/// A GitHub webhook delivery: the delivery GUID, the event name and the payload.
///
/// GitHub has dozens of event names, each with its own payload shape and actions, so
/// the payload stays raw JSON: read [`action`](Self::action) or
/// [`get`](Self::get) a field, or [`deserialize`](Self::deserialize) it into a struct
/// of your own. `ping` (sent when a webhook is created) is an ordinary event.
///
/// ```
/// use hookwise_core::github::Event;
/// use http::{HeaderMap, HeaderValue};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Issues { action: String, issue: Issue }
/// #[derive(Deserialize)]
/// struct Issue { number: u64 }
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-github-delivery", HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
/// headers.insert("x-github-event", HeaderValue::from_static("issues"));
/// let event = Event::from_request(&headers, br#"{"action":"opened","issue":{"number":7}}"#)?;
/// assert_eq!(event.name(), "issues");
/// assert_eq!(event.action(), Some("opened"));
/// let issues: Issues = event.deserialize()?;
/// assert_eq!(issues.issue.number, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    delivery: String,
    name: String,
    payload: Map<String, Value>,
}

impl Event {
    /// Builds the event from a (verified) delivery's headers and body.
    ///
    /// A missing, empty, repeated or non-ASCII `X-GitHub-Delivery` or
    /// `X-GitHub-Event`, or a body that is not a JSON object, is
    /// [`RejectionKind::InvalidPayload`]: the signature covers only the body, so these
    /// are not signature failures but a delivery without what the contract needs.
    pub fn from_request(headers: &HeaderMap, body: &[u8]) -> Result<Self, Rejection> {
        let delivery = required(headers, DELIVERY_HEADER)?;
        let name = required(headers, EVENT_HEADER)?;
        if body.starts_with(b"payload=") {
            return Err(Rejection::new(RejectionKind::InvalidPayload).with_detail(
                "a form-encoded payload: set the webhook's content type to application/json",
            ));
        }
        let payload = parse_envelope(body)?;
        Ok(Self {
            delivery,
            name,
            payload,
        })
    }

    /// The delivery GUID (`X-GitHub-Delivery`): the same for a redelivery.
    pub fn delivery(&self) -> &str {
        &self.delivery
    }

    /// The event name (`X-GitHub-Event`), e.g. `push`, `issues`, `ping`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The payload's `action` (`opened`, `closed`, ...), for the events that have one.
    pub fn action(&self) -> Option<&str> {
        self.payload.get("action").and_then(Value::as_str)
    }

    /// One top-level field of the payload.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.payload.get(field)
    }

    /// The payload, as sent.
    pub fn payload(&self) -> &Map<String, Value> {
        &self.payload
    }

    /// Deserializes the payload into a type of your own.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.payload)
    }

    /// Consumes the event, returning the payload.
    pub fn into_payload(self) -> Map<String, Value> {
        self.payload
    }
}

/// A header the envelope requires: present once, visible ASCII, not empty.
fn required(headers: &HeaderMap, name: &'static str) -> Result<String, Rejection> {
    let invalid = |problem: &str| {
        Rejection::new(RejectionKind::InvalidPayload).with_detail(format!("{name} {problem}"))
    };
    match single_header(headers, name) {
        Ok(Some(value)) => Ok(value.to_owned()),
        Ok(None) => Err(invalid("is missing or empty")),
        Err(_) => Err(invalid("is repeated or not visible ASCII")),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(delivery: Option<&'static str>, event: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(delivery) = delivery {
            headers.insert(DELIVERY_HEADER, HeaderValue::from_static(delivery));
        }
        if let Some(event) = event {
            headers.insert(EVENT_HEADER, HeaderValue::from_static(event));
        }
        headers
    }

    #[test]
    fn ping_is_an_ordinary_event() {
        let event = Event::from_request(
            &headers(Some("d-1"), Some("ping")),
            br#"{"zen":"Design for failure.","hook_id":1}"#,
        )
        .expect("valid");
        assert_eq!(event.delivery(), "d-1");
        assert_eq!(event.name(), "ping");
        assert_eq!(event.action(), None);
        assert_eq!(event.get("hook_id"), Some(&Value::from(1)));
        assert_eq!(event.into_payload().len(), 2);
    }

    #[test]
    fn missing_headers_or_non_object_bodies_are_invalid() {
        let body = br#"{"action":"opened"}"#;
        for headers in [
            headers(None, Some("issues")),
            headers(Some("d-1"), None),
            headers(Some(""), Some("issues")),
        ] {
            let err = Event::from_request(&headers, body).expect_err("missing header");
            assert_eq!(err.kind(), RejectionKind::InvalidPayload);
        }
        let both = headers(Some("d-1"), Some("issues"));
        for body in [&b""[..], b"[]", b"not json", b"payload=%7B%7D"] {
            let err = Event::from_request(&both, body).expect_err("not an object");
            assert_eq!(err.kind(), RejectionKind::InvalidPayload);
        }
    }

    #[test]
    fn a_repeated_delivery_header_is_invalid() {
        let mut repeated = headers(Some("d-1"), Some("push"));
        repeated.append(DELIVERY_HEADER, HeaderValue::from_static("d-2"));
        let err = Event::from_request(&repeated, b"{}").expect_err("two deliveries");
        assert_eq!(err.kind(), RejectionKind::InvalidPayload);
    }
}
