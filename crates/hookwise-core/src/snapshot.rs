//! Resource snapshots: the JSON objects inside an event's `data`.
//!
//! Neither provider documents its resource shapes beyond `id`, so a snapshot stays raw
//! JSON: read the `id`, look at fields, or deserialize into a struct of your own.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, error::Category};

/// A JSON object describing a resource (an invoice, a time entry, ...), as sent.
///
/// ```
/// use hookwise_core::Snapshot;
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Invoice { id: String, total_cents: u64 }
///
/// let snapshot: Snapshot = serde_json::from_str(r#"{"id":"inv_1","total_cents":4200}"#)?;
/// assert_eq!(snapshot.id(), Some("inv_1"));
/// let invoice: Invoice = snapshot.deserialize()?;
/// assert_eq!(invoice.total_cents, 4200);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct Snapshot(Map<String, Value>);

impl Snapshot {
    /// Wraps a JSON object.
    pub fn new(object: Map<String, Value>) -> Self {
        Self(object)
    }

    /// The resource's `id`, when it is a string.
    pub fn id(&self) -> Option<&str> {
        self.0.get("id").and_then(Value::as_str)
    }

    /// One field of the resource.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }

    /// Deserializes the resource into a type of your own.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.0)
    }

    /// The JSON object.
    pub fn as_object(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Consumes the snapshot, returning the JSON object.
    pub fn into_object(self) -> Map<String, Value> {
        self.0
    }
}

/// Parses a verified body as the provider's envelope type; any failure is a 400.
///
/// The detail names what is wrong and where, never the body's content: serde_json's
/// own message quotes the offending value (`invalid type: string "..."`), and the
/// detail ends up in logs.
pub(crate) fn parse_envelope<T: DeserializeOwned>(body: &[u8]) -> Result<T, crate::Rejection> {
    serde_json::from_slice(body).map_err(|e| {
        let message = e.to_string();
        let what = match e.classify() {
            // `missing field `id``: the name is ours, not the sender's.
            Category::Data if message.starts_with("missing field") => {
                message.split(" at line ").next().unwrap_or("missing field")
            }
            Category::Data => "a field has the wrong type or value",
            Category::Syntax => "not JSON",
            Category::Eof => "truncated JSON",
            Category::Io => "unreadable",
        };
        crate::Rejection::new(crate::RejectionKind::InvalidPayload).with_detail(format!(
            "not the envelope: {what} at line {} column {}",
            e.line(),
            e.column()
        ))
    })
}

/// Takes the snapshot a known event type requires out of its `data`; missing or not
/// an object is a 400.
pub(crate) fn take(
    data: &mut Map<String, Value>,
    key: &'static str,
    event_type: &str,
) -> Result<Snapshot, crate::Rejection> {
    match data.remove(key) {
        Some(Value::Object(object)) => Ok(Snapshot(object)),
        _ => Err(crate::Rejection::new(crate::RejectionKind::InvalidPayload)
            .with_detail(format!("{event_type} requires data.{key} to be an object"))),
    }
}
