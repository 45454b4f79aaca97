//! The Stripe event envelope.

use serde::Deserialize;

use crate::{Rejection, RejectionKind, Snapshot, snapshot::parse_envelope};

/// A Stripe event (a snapshot event, `"object": "event"`): the envelope fields, the
/// object the event is about, and what changed.
///
/// Stripe has hundreds of event types and adds more with every API version, so the
/// type stays a string: match on [`event_type`](Self::event_type) and deserialize
/// [`object`](Self::object) into the struct you need.
///
/// ```
/// use hookwise_core::stripe::Event;
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Customer { id: String, email: Option<String> }
///
/// let event = Event::from_json(br#"{"id":"evt_1","object":"event","type":"customer.updated",
///     "created":1533204620,"livemode":false,"api_version":"2017-05-25",
///     "data":{"object":{"id":"cus_1","object":"customer","email":"new@example.com"},
///             "previous_attributes":{"email":"old@example.com"}}}"#)?;
/// assert_eq!(event.event_type(), "customer.updated");
/// let customer: Customer = event.object().deserialize()?;
/// assert_eq!(customer.email.as_deref(), Some("new@example.com"));
/// let before = event.previous_attributes().and_then(|p| p.get("email"));
/// assert_eq!(before.and_then(|v| v.as_str()), Some("old@example.com"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    id: String,
    event_type: String,
    created: i64,
    livemode: bool,
    api_version: Option<String>,
    object: Snapshot,
    previous_attributes: Option<Snapshot>,
}

/// The wire shape; extra envelope fields (`account`, `request`, ...) are ignored.
#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    livemode: bool,
    #[serde(default)]
    api_version: Option<String>,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: Snapshot,
    #[serde(default)]
    previous_attributes: Option<Snapshot>,
}

impl Event {
    /// Parses a (verified) body. Not the envelope (including a "thin" event without
    /// `data.object`), or an empty `id`, is
    /// [`RejectionKind::InvalidPayload`](crate::RejectionKind::InvalidPayload).
    pub fn from_json(body: &[u8]) -> Result<Self, Rejection> {
        let Envelope {
            id,
            event_type,
            created,
            livemode,
            api_version,
            data,
        } = parse_envelope(body)?;
        if id.is_empty() {
            return Err(
                Rejection::new(RejectionKind::InvalidPayload).with_detail("the event id is empty")
            );
        }
        Ok(Self {
            id,
            event_type,
            created,
            livemode,
            api_version,
            object: data.object,
            previous_attributes: data.previous_attributes,
        })
    }

    /// The event id (`evt_...`): shared by every retry of this event.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event type as sent, e.g. `invoice.paid`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// When the event was created, in Unix seconds (not the signature time).
    pub fn created(&self) -> i64 {
        self.created
    }

    /// `true` for live-mode events, `false` for test mode.
    pub fn livemode(&self) -> bool {
        self.livemode
    }

    /// The API version the event was rendered with, when Stripe sent one.
    pub fn api_version(&self) -> Option<&str> {
        self.api_version.as_deref()
    }

    /// `data.object`: the object the event is about, as it was when the event
    /// happened.
    pub fn object(&self) -> &Snapshot {
        &self.object
    }

    /// `data.previous_attributes`: for `*.updated` events, the changed fields' old
    /// values.
    pub fn previous_attributes(&self) -> Option<&Snapshot> {
        self.previous_attributes.as_ref()
    }

    /// Consumes the event, returning `data.object`.
    pub fn into_object(self) -> Snapshot {
        self.object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_fields_are_carried() {
        let event = Event::from_json(
            br#"{"id":"evt_1","type":"invoice.paid","created":7,"livemode":true,
                 "data":{"object":{"id":"in_1"}}}"#,
        )
        .expect("valid");
        assert_eq!(event.id(), "evt_1");
        assert_eq!(event.event_type(), "invoice.paid");
        assert_eq!(event.created(), 7);
        assert!(event.livemode());
        assert_eq!(event.api_version(), None);
        assert_eq!(event.previous_attributes(), None);
        assert_eq!(event.into_object().id(), Some("in_1"));
    }

    #[test]
    fn null_api_version_and_previous_attributes_are_none() {
        let event = Event::from_json(
            br#"{"id":"evt_1","type":"x","created":7,"livemode":true,"api_version":null,
                 "data":{"object":{},"previous_attributes":null}}"#,
        )
        .expect("valid");
        assert_eq!(event.api_version(), None);
        assert_eq!(event.previous_attributes(), None);
    }

    #[test]
    fn not_the_envelope_is_invalid() {
        for body in [
            "",
            "[]",
            r#"{"id":"evt_1","type":"x","created":1,"livemode":true}"#,
            r#"{"id":"evt_1","type":"x","created":1,"livemode":true,"data":{}}"#,
            r#"{"id":"evt_1","type":"x","created":1,"livemode":true,"data":{"object":"cus_1"}}"#,
            r#"{"id":"evt_1","type":"x","created":"now","livemode":true,"data":{"object":{}}}"#,
            r#"{"id":"","type":"x","created":1,"livemode":true,"data":{"object":{}}}"#,
            r#"{"id":"evt_1","object":"v2.core.event","type":"x","created":"2022-02-15T00:27:45.330Z","livemode":true}"#,
        ] {
            let err = Event::from_json(body.as_bytes()).expect_err(body);
            assert_eq!(err.kind(), RejectionKind::InvalidPayload, "{body}");
        }
    }
}
