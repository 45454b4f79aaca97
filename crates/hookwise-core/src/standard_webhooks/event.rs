//! A Standard Webhooks message: its id and timestamp from the headers, the JSON payload.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Rejection, snapshot::parse_envelope};

/// A Standard Webhooks (Svix) message: the signed id and timestamp, and the payload.
///
/// The specification recommends, without requiring, the payload shape
/// `{"type": ..., "timestamp": ..., "data": ...}`; [`event_type`](Self::event_type)
/// and [`data`](Self::data) read it when it is there. Any JSON payload is accepted and
/// kept as sent: [`deserialize`](Self::deserialize) it into a type of your own.
///
/// ```
/// use hookwise_core::standard_webhooks::Event;
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Contact { email: String }
///
/// let event = Event::from_parts("msg_1", 1614265330, br#"{"type":"contact.created",
///     "timestamp":"2021-02-25T15:02:10Z","data":{"email":"jane@example.com"}}"#)?;
/// assert_eq!(event.id(), "msg_1");
/// assert_eq!(event.event_type(), Some("contact.created"));
/// let contact: Contact = serde_json::from_value(event.data().cloned().unwrap_or_default())?;
/// assert_eq!(contact.email, "jane@example.com");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    id: String,
    timestamp: u64,
    payload: Value,
}

impl Event {
    /// Builds the event from a (verified) message's id, timestamp and body. A body
    /// that is not JSON is
    /// [`RejectionKind::InvalidPayload`](crate::RejectionKind::InvalidPayload).
    pub fn from_parts(
        id: impl Into<String>,
        timestamp: u64,
        body: &[u8],
    ) -> Result<Self, Rejection> {
        Ok(Self {
            id: id.into(),
            timestamp,
            payload: parse_envelope(body)?,
        })
    }

    /// The message id (`webhook-id`): the same for every retry of this message.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The signed timestamp (`webhook-timestamp`), in Unix seconds: the time of this
    /// attempt, not of the event.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The payload's `type`, when the payload is an object with a string `type`.
    pub fn event_type(&self) -> Option<&str> {
        self.payload.get("type").and_then(Value::as_str)
    }

    /// The payload's `data`, when the payload is an object with one.
    pub fn data(&self) -> Option<&Value> {
        self.payload.get("data")
    }

    /// The payload, as sent.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// Deserializes the whole payload into a type of your own.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.payload)
    }

    /// Consumes the event, returning the payload.
    pub fn into_payload(self) -> Value {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RejectionKind;

    #[test]
    fn any_json_payload_is_kept() {
        let event = Event::from_parts("msg_1", 5, br#"{"test": 2432232314}"#).expect("json");
        assert_eq!(event.event_type(), None);
        assert_eq!(event.data(), None);
        assert_eq!(event.payload()["test"], 2432232314_u64);
        let list = Event::from_parts("msg_2", 5, b"[1,2]").expect("json");
        assert_eq!(list.event_type(), None);
        assert_eq!(list.into_payload(), serde_json::json!([1, 2]));
    }

    #[test]
    fn a_non_string_type_is_no_type() {
        let event = Event::from_parts("m", 1, br#"{"type":7,"data":{}}"#).expect("json");
        assert_eq!(event.event_type(), None);
        assert!(event.data().is_some());
    }

    #[test]
    fn not_json_is_invalid() {
        for body in ["", "not json", "{\"type\":"] {
            let err = Event::from_parts("m", 1, body.as_bytes()).expect_err(body);
            assert_eq!(err.kind(), RejectionKind::InvalidPayload, "{body}");
        }
    }
}
