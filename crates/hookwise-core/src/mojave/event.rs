//! The Mojave envelope and its typed event.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{Rejection, Snapshot, snapshot::parse_envelope};

/// A Mojave event: its type, payload timestamp and the typed [`EventData`].
///
/// ```
/// use hookwise_core::mojave::{Event, EventData};
///
/// let event = Event::from_json(br#"{"type":"time_entry.created","timestamp":1712742800,
///     "data":{"id":"te_83hskd9a","notes":"Kickoff call with client"}}"#)?;
/// assert_eq!(event.timestamp(), 1712742800);
/// match event.data() {
///     EventData::TimeEntryCreated(entry) => assert_eq!(entry.id(), Some("te_83hskd9a")),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), hookwise_core::Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    event_type: String,
    timestamp: i64,
    data: EventData,
}

/// The data of a Mojave event: the full resource, one variant per documented type.
///
/// Mojave says "more events will be added": those arrive as [`EventData::Unknown`],
/// never as an error.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventData {
    /// `time_entry.created`: the new time entry.
    TimeEntryCreated(Snapshot),
    /// `time_entry.updated`: the modified time entry.
    TimeEntryUpdated(Snapshot),
    /// `invoice.created`: the new invoice.
    InvoiceCreated(Snapshot),
    /// `invoice.paid`: the paid invoice.
    InvoicePaid(Snapshot),
    /// `project.archived`: the archived project.
    ProjectArchived(Snapshot),
    /// `user.invited`: the invited user.
    UserInvited(Snapshot),
    /// A type this version does not know, with its `data` as sent.
    Unknown {
        /// The `type` as sent.
        event_type: String,
        /// The `data` object as sent.
        data: Map<String, Value>,
    },
}

/// Every documented event type; any other arrives as [`EventData::Unknown`].
pub const EVENT_TYPES: &[&str] = &[
    "time_entry.created",
    "time_entry.updated",
    "invoice.created",
    "invoice.paid",
    "project.archived",
    "user.invited",
];

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    timestamp: i64,
    data: Map<String, Value>,
}

impl Event {
    /// Parses a (verified) body; not the envelope is
    /// [`RejectionKind::InvalidPayload`](crate::RejectionKind::InvalidPayload).
    pub fn from_json(body: &[u8]) -> Result<Self, Rejection> {
        let Envelope {
            event_type,
            timestamp,
            data,
        } = parse_envelope(body)?;
        let variant: Option<fn(Snapshot) -> EventData> = match event_type.as_str() {
            "time_entry.created" => Some(EventData::TimeEntryCreated),
            "time_entry.updated" => Some(EventData::TimeEntryUpdated),
            "invoice.created" => Some(EventData::InvoiceCreated),
            "invoice.paid" => Some(EventData::InvoicePaid),
            "project.archived" => Some(EventData::ProjectArchived),
            "user.invited" => Some(EventData::UserInvited),
            _ => None,
        };
        let typed = match variant {
            Some(variant) => variant(Snapshot::new(data)),
            None => EventData::Unknown {
                event_type: event_type.clone(),
                data,
            },
        };
        Ok(Self {
            event_type,
            timestamp,
            data: typed,
        })
    }

    /// The event type as sent, e.g. `invoice.paid`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The payload's `timestamp`, in Unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The typed data.
    pub fn data(&self) -> &EventData {
        &self.data
    }

    /// Consumes the event, returning its typed data.
    pub fn into_data(self) -> EventData {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RejectionKind;

    #[test]
    fn every_documented_type_parses_to_its_variant() {
        // The seed documents six types.
        assert_eq!(EVENT_TYPES.len(), 6);
        for &event_type in EVENT_TYPES {
            let body = format!(r#"{{"type":"{event_type}","timestamp":1,"data":{{"id":"r_1"}}}}"#);
            let event = Event::from_json(body.as_bytes()).expect(event_type);
            assert_eq!(event.event_type(), event_type);
            assert!(
                !matches!(event.data(), EventData::Unknown { .. }),
                "{event_type}"
            );
        }
    }

    #[test]
    fn unknown_type_keeps_type_and_data() {
        let event =
            Event::from_json(br#"{"type":"client.merged","timestamp":1,"data":{"id":"c"}}"#)
                .expect("unknown types are not errors");
        assert_eq!(
            event.into_data(),
            EventData::Unknown {
                event_type: "client.merged".into(),
                data: serde_json::from_str(r#"{"id":"c"}"#).expect("json"),
            }
        );
    }

    #[test]
    fn not_the_envelope_is_invalid() {
        for body in [
            "{}",
            r#"{"type":"invoice.paid","data":{}}"#,
            r#"{"type":"invoice.paid","timestamp":1.5,"data":{}}"#,
            r#"{"type":"invoice.paid","timestamp":1,"data":"inv"}"#,
            r#"{"type":1,"timestamp":1,"data":{}}"#,
        ] {
            let err = Event::from_json(body.as_bytes()).expect_err(body);
            assert_eq!(err.kind(), RejectionKind::InvalidPayload, "{body}");
        }
    }
}
