//! Ordering keys: which resource an event is about, and when its provider made it.
//!
//! Senders deliver concurrently and retry late, so an `invoice.paid` can arrive
//! before the `invoice.sent` of the same invoice, or a retried old update after a
//! newer one. A runtime that orders by [`OrderKey`] runs the events of one resource
//! one after another and those of different resources in parallel, and may skip an
//! event older than the last one applied for its resource.
//!
//! Every built-in provider says what its events are about
//! ([`Provider::order_key`](crate::Provider::order_key)):
//!
//! | provider | resource | time |
//! |---|---|---|
//! | Hoursmith | the event's main snapshot (`invoice:<id>`, `task:<id>`, ...) | `created` |
//! | Mojave | the resource, named by the type's prefix (`invoice:<id>`) | `timestamp` |
//! | Stripe | `data.object.id` | `created` |
//! | GitHub | `owner/repo#number` for issues and pull requests, else `owner/repo` | none |
//! | Standard Webhooks | none: the spec names no resource field | |
//!
//! A time of `None` orders by arrival only: no event is ever skipped as stale. Where a
//! provider names no resource, or not the one you order by, give the runtime your
//! own key function (e.g. `OrderKey::new(id).at(event.timestamp() as i64)`).
//!
//! ```
//! use hookwise_core::{Provider, Stripe, ordering::OrderKey};
//!
//! let stripe = Stripe::new("whsec_...")?;
//! let body = br#"{"id":"evt_1","type":"invoice.paid","created":1717603200,"livemode":false,
//!     "data":{"object":{"id":"in_1","object":"invoice"}}}"#;
//! let event = hookwise_core::stripe::Event::from_json(body)?;
//! assert_eq!(stripe.order_key(&event), Some(OrderKey::new("in_1").at(1717603200)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

/// The longest resource name kept: a longer one (which no built-in provider makes)
/// is cut, so that a key's memory is bounded whatever the payload holds.
pub const MAX_RESOURCE_LEN: usize = 256;

/// What orders an event among others: the resource it is about, and when its
/// provider made it (seconds since the Unix epoch, as the provider sends it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderKey {
    resource: String,
    at: Option<i64>,
}

impl OrderKey {
    /// The key of events about `resource`, with no time. A resource longer than
    /// [`MAX_RESOURCE_LEN`] bytes is cut at a character boundary below it.
    pub fn new(resource: impl Into<String>) -> Self {
        let mut resource = resource.into();
        if resource.len() > MAX_RESOURCE_LEN {
            let mut end = MAX_RESOURCE_LEN;
            while !resource.is_char_boundary(end) {
                end -= 1;
            }
            resource.truncate(end);
        }
        Self { resource, at: None }
    }

    /// The same key, made by the provider at `at` (seconds since the Unix epoch).
    #[must_use]
    pub fn at(mut self, at: i64) -> Self {
        self.at = Some(at);
        self
    }

    /// The resource the event is about.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// When the provider made the event, if it says.
    pub fn time(&self) -> Option<i64> {
        self.at
    }
}

impl fmt::Display for OrderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource)
    }
}

/// `<kind>:<id>` for a snapshot with an id, as Hoursmith and Mojave name resources.
pub(crate) fn named(kind: &str, id: Option<&str>) -> Option<OrderKey> {
    id.filter(|id| !id.is_empty())
        .map(|id| OrderKey::new(format!("{kind}:{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_resource_is_cut_at_a_character_boundary() {
        let key = OrderKey::new("é".repeat(200));
        assert!(key.resource().len() <= MAX_RESOURCE_LEN);
        assert_eq!(key.resource().chars().count(), MAX_RESOURCE_LEN / 2);
    }

    #[test]
    fn an_empty_id_names_no_resource() {
        assert_eq!(named("invoice", Some("")), None);
        assert_eq!(named("invoice", None), None);
        assert_eq!(
            named("invoice", Some("in_1")).map(|k| k.resource().to_owned()),
            Some("invoice:in_1".to_owned())
        );
    }
}
