//! Built-in sample deliveries, one per documented event type, for `hookwise send`
//! without a file.
//!
//! Resource shapes are not documented beyond `id`, so a sample's resources carry
//! only an `id`. Every sample is a production event (`livemode: true`).

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use hookwise_core::hoursmith;

use crate::{
    error::CliError,
    provider::{Meta, ProviderName},
};

/// A sample body and what goes with it.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) body: Bytes,
    pub(crate) meta: Meta,
}

/// The event type `send` samples when `--event` is not given.
fn default_event_type(provider: ProviderName) -> &'static str {
    match provider {
        // The richest Hoursmith type: two snapshots.
        ProviderName::Hoursmith | ProviderName::StandardWebhooks => "invoice.paid",
        ProviderName::Mojave => "time_entry.created",
        ProviderName::Stripe => "payment_intent.succeeded",
        ProviderName::GitHub => "ping",
    }
}

/// The snapshots a Hoursmith event type carries in `data`; none for a type it does
/// not document.
fn hoursmith_data_keys(event_type: &str) -> &'static [&'static str] {
    hoursmith::EVENT_TYPES
        .iter()
        .find(|(known, _)| *known == event_type)
        .map_or(&[], |(_, keys)| keys)
}

/// A sample of `event_type` (the provider's default type when `None`), created at
/// `now` with a fresh id. A type without a built-in sample is sent with empty or
/// minimal data, as an unknown type would arrive.
pub(crate) fn sample(
    provider: ProviderName,
    event_type: Option<&str>,
    now: u64,
) -> Result<Sample, CliError> {
    let event_type = event_type.unwrap_or(default_event_type(provider));
    let uuid = new_id();
    let tag = short(&uuid);
    // The resource an event is about: `invoice` for `invoice.paid`.
    let resource = event_type.split('.').next().unwrap_or(event_type);
    let (id, body) = match provider {
        ProviderName::Hoursmith => {
            let data: Map<String, Value> = hoursmith_data_keys(event_type)
                .iter()
                .map(|key| ((*key).to_owned(), json!({ "id": format!("{key}_{tag}") })))
                .collect();
            let body = json!({
                "id": uuid,
                "type": event_type,
                "created": now,
                "orgId": "00000000-0000-4000-8000-000000000000",
                "livemode": true,
                "data": data,
            });
            (uuid, body)
        }
        ProviderName::Mojave => {
            let body = json!({
                "type": event_type,
                "timestamp": now,
                "data": { "id": format!("{resource}_{tag}") },
            });
            (uuid, body)
        }
        ProviderName::Stripe => {
            let id = format!("evt_{}", uuid.replace('-', ""));
            let body = json!({
                "id": id,
                "object": "event",
                "api_version": "2024-06-20",
                "created": now,
                "livemode": true,
                "type": event_type,
                "data": { "object": { "id": format!("{resource}_{tag}"), "object": resource } },
            });
            (id, body)
        }
        ProviderName::GitHub => {
            let body = match event_type {
                "ping" => json!({ "zen": "Keep it logically awesome.", "hook_id": 1 }),
                "push" => json!({ "ref": "refs/heads/main", "after": uuid.replace('-', "") }),
                "issues" => json!({ "action": "opened", "issue": { "number": 1 } }),
                "pull_request" => json!({ "action": "opened", "pull_request": { "number": 1 } }),
                _ => json!({}),
            };
            (uuid, body)
        }
        ProviderName::StandardWebhooks => {
            let body = json!({
                "type": event_type,
                "timestamp": rfc3339(now),
                "data": { "id": format!("{resource}_{tag}") },
            });
            (format!("msg_{}", uuid.replace('-', "")), body)
        }
    };
    let body = serde_json::to_vec(&body).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Sample {
        body: Bytes::from(body),
        meta: Meta {
            id,
            event: Some(event_type.to_owned()),
        },
    })
}

/// `2026-11-25T11:31:41Z` for Unix seconds (Standard Webhooks payloads carry an
/// RFC 3339 timestamp). Days to a civil date after Howard Hinnant's algorithm.
fn rfc3339(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The first group of an id, to make resource ids that differ between samples.
fn short(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

/// A new random id shaped like a UUID v4. Not for secrets: the randomness comes from
/// the standard library's hash seeds, the clock and a counter.
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let word = |salt: u64| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u64(count);
        hasher.write_u64(salt);
        hasher.finish()
    };
    let bits = (u128::from(word(1)) << 64) | u128::from(word(2));
    // Version 4, variant 10xx.
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::ValueEnum;
    use hookwise_core::mojave;

    use super::*;

    const NOW: u64 = 1_764_000_000;

    /// The types with a sample of their own: every documented Hoursmith and Mojave
    /// type; common Stripe and GitHub ones (others get a minimal object); Standard
    /// Webhooks has no fixed types.
    fn event_types(provider: ProviderName) -> Vec<&'static str> {
        match provider {
            ProviderName::Hoursmith => hoursmith::EVENT_TYPES.iter().map(|(t, _)| *t).collect(),
            ProviderName::Mojave => mojave::EVENT_TYPES.to_vec(),
            ProviderName::Stripe => vec!["payment_intent.succeeded", "customer.created"],
            ProviderName::GitHub => vec!["ping", "push", "issues", "pull_request"],
            ProviderName::StandardWebhooks => vec!["invoice.paid", "user.created"],
        }
    }

    /// Every sample, signed as the tool signs it, is accepted by a receiver and arrives
    /// as its own (known) type.
    #[test]
    fn every_sample_verifies_and_parses_as_its_type() {
        for provider in ProviderName::value_variants() {
            for event_type in event_types(*provider) {
                let sample = sample(*provider, Some(event_type), NOW).expect("a sample");
                assert!(
                    is_known(*provider, &sample.body),
                    "{provider:?} {event_type}"
                );
                let secret = match provider {
                    ProviderName::StandardWebhooks => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    _ => "secret",
                };
                let headers = provider
                    .sign(secret.as_bytes(), NOW, &sample.meta, &sample.body)
                    .expect("signed");
                let checked = provider
                    .check(
                        &[secret.into()],
                        &headers,
                        sample.body,
                        Duration::from_secs(NOW),
                    )
                    .expect("checked");
                let text = checked.to_string();
                assert!(
                    text.starts_with("verified"),
                    "{provider:?} {event_type}: {text}"
                );
                assert!(
                    text.contains(&format!("event type {event_type},")),
                    "{text}"
                );
            }
        }
    }

    /// Whether the body parses as one of the provider's documented types.
    fn is_known(provider: ProviderName, body: &[u8]) -> bool {
        match provider {
            ProviderName::Hoursmith => !matches!(
                hoursmith::Event::from_json(body).expect("parses").data(),
                hoursmith::EventData::Unknown { .. }
            ),
            ProviderName::Mojave => !matches!(
                mojave::Event::from_json(body).expect("parses").data(),
                mojave::EventData::Unknown { .. }
            ),
            // Types are open strings for these three.
            ProviderName::Stripe | ProviderName::GitHub | ProviderName::StandardWebhooks => true,
        }
    }

    #[test]
    fn an_undocumented_type_is_sent_with_empty_data() {
        let sample = sample(ProviderName::Hoursmith, Some("payroll.run"), NOW).expect("sample");
        let json: Value = serde_json::from_slice(&sample.body).expect("json");
        assert_eq!(json["type"], "payroll.run");
        assert_eq!(json["data"], json!({}));
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_614_265_330), "2021-02-25T15:02:10Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn ids_are_uuid_shaped_and_fresh() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4', "{a}");
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{a}");
    }
}
