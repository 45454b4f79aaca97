//! The Hoursmith envelope and its typed event.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    Rejection, Snapshot,
    snapshot::{parse_envelope, take},
};

/// A Hoursmith event: the envelope fields and the typed [`EventData`].
///
/// ```
/// use hookwise_core::hoursmith::{Event, EventData};
///
/// let body = br#"{"id":"4f9c2a1e-0000-4000-8000-000000000001","type":"invoice.paid",
///   "created":1717603200,"orgId":"00000000-0000-0000-0000-000000000000","livemode":true,
///   "data":{"invoice":{"id":"inv_1"},"payment":{"id":"pay_1"}}}"#;
/// let event = Event::from_json(body)?;
/// assert_eq!(event.event_type(), "invoice.paid");
/// match event.data() {
///     EventData::InvoicePaid { invoice, payment } => {
///         assert_eq!(invoice.id(), Some("inv_1"));
///         assert_eq!(payment.id(), Some("pay_1"));
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), hookwise_core::Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    id: String,
    event_type: String,
    created: i64,
    org_id: String,
    livemode: bool,
    test: bool,
    data: EventData,
}

/// The data of a Hoursmith event, one variant per documented type.
///
/// Types Hoursmith adds later arrive as [`EventData::Unknown`], never as an error.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventData {
    /// `invoice.sent`: an invoice was sent to a client.
    InvoiceSent {
        /// The invoice.
        invoice: Snapshot,
    },
    /// `invoice.paid`: an invoice was marked paid.
    InvoicePaid {
        /// The invoice.
        invoice: Snapshot,
        /// The payment that succeeded.
        payment: Snapshot,
    },
    /// `invoice.payment_failed`: a payment attempt on an invoice failed.
    InvoicePaymentFailed {
        /// The invoice.
        invoice: Snapshot,
        /// The payment that failed.
        payment: Snapshot,
    },
    /// `time_entry.created`: a time entry was created.
    TimeEntryCreated {
        /// The time entry.
        time_entry: Snapshot,
    },
    /// `task.completed`: a task was marked complete.
    TaskCompleted {
        /// The task.
        task: Snapshot,
    },
    /// `task.created`: a task was created.
    TaskCreated {
        /// The task.
        task: Snapshot,
    },
    /// `client.created`: a client was created.
    ClientCreated {
        /// The client.
        client: Snapshot,
    },
    /// `project.created`: a project was created.
    ProjectCreated {
        /// The project.
        project: Snapshot,
    },
    /// A type this version does not know, with its `data` as sent.
    Unknown {
        /// The `type` as sent.
        event_type: String,
        /// The `data` object as sent.
        data: Map<String, Value>,
    },
}

/// Every documented event type, with the snapshots its `data` must hold (the seed's
/// table). [`Event::from_json`] refuses a listed type missing one of them; a type not
/// listed arrives as [`EventData::Unknown`].
///
/// ```
/// use hookwise_core::hoursmith::EVENT_TYPES;
///
/// assert!(EVENT_TYPES.contains(&("invoice.paid", &["invoice", "payment"][..])));
/// ```
pub const EVENT_TYPES: &[(&str, &[&str])] = &[
    ("invoice.sent", &["invoice"]),
    ("invoice.paid", &["invoice", "payment"]),
    ("invoice.payment_failed", &["invoice", "payment"]),
    ("time_entry.created", &["time_entry"]),
    ("task.completed", &["task"]),
    ("task.created", &["task"]),
    ("client.created", &["client"]),
    ("project.created", &["project"]),
];

/// The wire shape; extra envelope fields are ignored.
#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(rename = "orgId")]
    org_id: String,
    livemode: bool,
    data: Map<String, Value>,
}

impl Event {
    /// Parses a (verified) body. Not the envelope, or a known type without its data
    /// keys, is [`RejectionKind::InvalidPayload`](crate::RejectionKind::InvalidPayload).
    pub fn from_json(body: &[u8]) -> Result<Self, Rejection> {
        let Envelope {
            id,
            event_type,
            created,
            org_id,
            livemode,
            mut data,
        } = parse_envelope(body)?;
        if id.is_empty() {
            return Err(Rejection::new(crate::RejectionKind::InvalidPayload)
                .with_detail("the event id is empty"));
        }
        let test = data.get("test").and_then(Value::as_bool) == Some(true);
        let d = &mut data;
        let t = event_type.as_str();
        let typed = match t {
            "invoice.sent" => EventData::InvoiceSent {
                invoice: take(d, "invoice", t)?,
            },
            "invoice.paid" => EventData::InvoicePaid {
                invoice: take(d, "invoice", t)?,
                payment: take(d, "payment", t)?,
            },
            "invoice.payment_failed" => EventData::InvoicePaymentFailed {
                invoice: take(d, "invoice", t)?,
                payment: take(d, "payment", t)?,
            },
            "time_entry.created" => EventData::TimeEntryCreated {
                time_entry: take(d, "time_entry", t)?,
            },
            "task.completed" => EventData::TaskCompleted {
                task: take(d, "task", t)?,
            },
            "task.created" => EventData::TaskCreated {
                task: take(d, "task", t)?,
            },
            "client.created" => EventData::ClientCreated {
                client: take(d, "client", t)?,
            },
            "project.created" => EventData::ProjectCreated {
                project: take(d, "project", t)?,
            },
            _ => EventData::Unknown {
                event_type: event_type.clone(),
                data,
            },
        };
        Ok(Self {
            id,
            event_type,
            created,
            org_id,
            livemode,
            test,
            data: typed,
        })
    }

    /// The event id (a UUID): shared by every retry of this event.
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

    /// The workspace id (`orgId`).
    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    /// `true` only for production events.
    pub fn livemode(&self) -> bool {
        self.livemode
    }

    /// A test event: `livemode` is false or `data.test` is true.
    pub fn is_test(&self) -> bool {
        !self.livemode || self.test
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

    fn envelope(event_type: &str, data: &str) -> String {
        format!(
            r#"{{"id":"evt_1","type":"{event_type}","created":1717603200,
               "orgId":"org_1","livemode":true,"data":{data}}}"#
        )
    }

    /// `EVENT_TYPES` is what `from_json` does: each listed type with its snapshots
    /// parses to its own variant, and without any one of them is refused.
    #[test]
    fn every_documented_type_parses_to_its_variant() {
        let data = |keys: &[&str]| {
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!(r#""{k}":{{"id":"x"}}"#))
                .collect();
            format!("{{{}}}", fields.join(","))
        };
        for (event_type, keys) in EVENT_TYPES {
            let event = Event::from_json(envelope(event_type, &data(keys)).as_bytes())
                .unwrap_or_else(|e| panic!("{event_type}: {e}"));
            assert_eq!(event.event_type(), *event_type);
            assert!(
                !matches!(event.data(), EventData::Unknown { .. }),
                "{event_type}"
            );
            for missing in *keys {
                let rest: Vec<&str> = keys.iter().copied().filter(|k| k != missing).collect();
                let err = Event::from_json(envelope(event_type, &data(&rest)).as_bytes())
                    .expect_err(missing);
                assert_eq!(err.kind(), RejectionKind::InvalidPayload, "{event_type}");
            }
        }
    }

    #[test]
    fn envelope_fields_are_carried() {
        let event =
            Event::from_json(envelope("task.created", r#"{"task":{"id":"t_9"}}"#).as_bytes())
                .expect("valid");
        assert_eq!(event.id(), "evt_1");
        assert_eq!(event.created(), 1717603200);
        assert_eq!(event.org_id(), "org_1");
        assert!(event.livemode());
        assert!(!event.is_test());
        match event.into_data() {
            EventData::TaskCreated { task } => assert_eq!(task.id(), Some("t_9")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn known_type_without_its_data_key_is_invalid() {
        for (event_type, data) in [
            ("invoice.paid", r#"{"invoice":{"id":"x"}}"#),
            ("invoice.sent", r#"{}"#),
            ("task.created", r#"{"task":"t_1"}"#),
        ] {
            let err =
                Event::from_json(envelope(event_type, data).as_bytes()).expect_err(event_type);
            assert_eq!(err.kind(), RejectionKind::InvalidPayload);
        }
    }

    #[test]
    fn unknown_type_keeps_type_and_data() {
        let event = Event::from_json(
            envelope("invoice.voided", r#"{"invoice":{"id":"x"},"n":1}"#).as_bytes(),
        )
        .expect("unknown types are not errors");
        match event.data() {
            EventData::Unknown { event_type, data } => {
                assert_eq!(event_type, "invoice.voided");
                assert_eq!(data["n"], 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_events_are_visible() {
        let body = r#"{"id":"e","type":"task.created","created":1,"orgId":"o","livemode":false,
                       "data":{"test":true,"task":{"id":"t"}}}"#;
        assert!(Event::from_json(body.as_bytes()).expect("valid").is_test());
    }

    #[test]
    fn not_the_envelope_is_invalid() {
        for body in [
            "",
            "not json",
            "[]",
            r#"{"type":"task.created"}"#,
            r#"{"id":"e","type":"x","created":"yesterday","orgId":"o","livemode":true,"data":{}}"#,
            r#"{"id":"e","type":"x","created":1,"orgId":"o","livemode":true,"data":[]}"#,
            r#"{"id":"","type":"x","created":1,"orgId":"o","livemode":true,"data":{}}"#,
        ] {
            let err = Event::from_json(body.as_bytes()).expect_err(body);
            assert_eq!(err.kind(), RejectionKind::InvalidPayload, "{body}");
        }
    }
}
