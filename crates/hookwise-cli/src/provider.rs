//! The providers the tool speaks, each mapped onto `hookwise-core`: its signer for
//! `sign` and `send`, its `Receiver` for `verify`.

use std::{fmt, time::Duration};

use bytes::Bytes;
use hookwise_core::{
    Diagnosis, GitHub, Hoursmith, ManualClock, MemoryStore, Mojave, Outcome, Provider, Receiver,
    RejectionKind, Secrets, StandardWebhooks, Stripe, github, sign,
};
use http::{HeaderMap, HeaderValue};

use crate::error::CliError;

/// A provider, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProviderName {
    /// `Hoursmith-Signature: t=..,v1=..`
    Hoursmith,
    /// `X-Mojave-Signature: <hex>`
    Mojave,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` (Svix)
    StandardWebhooks,
    /// `X-Hub-Signature-256: sha256=<hex>`, `X-GitHub-Delivery`, `X-GitHub-Event`
    #[value(name = "github")]
    GitHub,
    /// `Stripe-Signature: t=..,v1=..`
    Stripe,
}

/// What a delivery carries besides its body, for providers that send it in headers.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    /// The delivery's id.
    pub(crate) id: String,
    /// The event name.
    pub(crate) event: Option<String>,
}

/// The event name GitHub sends when a webhook is created, and the default here.
const GITHUB_DEFAULT_EVENT: &str = "ping";

impl ProviderName {
    /// The name as typed on the command line.
    pub(crate) fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_owned())
    }

    /// Whether the provider sends the delivery id in a header (so `--id` applies).
    pub(crate) fn id_in_header(self) -> bool {
        matches!(self, Self::StandardWebhooks | Self::GitHub)
    }

    /// Whether the provider sends the event type in a header (so `--event` names it
    /// for any body), rather than in the body.
    pub(crate) fn event_in_header(self) -> bool {
        self == Self::GitHub
    }

    /// The headers the provider sends with `body`, signed with `secret` at `timestamp`.
    pub(crate) fn sign(
        self,
        secret: &[u8],
        timestamp: u64,
        meta: &Meta,
        body: &[u8],
    ) -> Result<HeaderMap, CliError> {
        // The same check the provider makes when it is built: an empty secret signs
        // nothing any receiver would accept.
        Secrets::new([secret])?;
        let mut headers = HeaderMap::new();
        match self {
            Self::Hoursmith => sign::hoursmith(secret, timestamp, body).insert_into(&mut headers),
            Self::Mojave => sign::mojave(secret, body).insert_into(&mut headers),
            Self::Stripe => sign::stripe(secret, timestamp, body).insert_into(&mut headers),
            Self::StandardWebhooks => {
                let secret = std::str::from_utf8(secret).map_err(|_| {
                    CliError::Usage("a Standard Webhooks secret is whsec_ and base64".to_owned())
                })?;
                sign::standard_webhooks(secret, &meta.id, timestamp, body)?
                    .insert_into(&mut headers);
            }
            Self::GitHub => {
                sign::github(secret, body).insert_into(&mut headers);
                let event = meta.event.as_deref().unwrap_or(GITHUB_DEFAULT_EVENT);
                headers.insert(github::DELIVERY_HEADER, header_value("--id", &meta.id)?);
                headers.insert(github::EVENT_HEADER, header_value("--event", event)?);
            }
        }
        Ok(headers)
    }

    /// Runs the delivery through a receiver for this provider, with `secrets` and
    /// `now`, and says what it would answer.
    pub(crate) fn check(
        self,
        secrets: &[String],
        headers: &HeaderMap,
        body: Bytes,
        now: Duration,
    ) -> Result<Checked, CliError> {
        let tried = secrets.len();
        let encoded = secrets;
        let secrets = Secrets::new(secrets)?;
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let delivery = Captured {
            headers,
            body,
            now,
            tried,
        };
        runtime.block_on(async {
            match self {
                Self::Hoursmith => delivery.check(Hoursmith::with_secrets(secrets)).await,
                Self::Mojave => delivery.check(Mojave::with_secrets(secrets)).await,
                Self::Stripe => delivery.check(Stripe::with_secrets(secrets)).await,
                Self::GitHub => delivery.check(GitHub::with_secrets(secrets)).await,
                Self::StandardWebhooks => {
                    let provider = StandardWebhooks::with_encoded_secrets(encoded)?;
                    delivery.check(provider).await
                }
            }
        })
    }
}

/// A header value from an argument.
fn header_value(flag: &str, value: &str) -> Result<HeaderValue, CliError> {
    HeaderValue::from_str(value)
        .map_err(|_| CliError::Usage(format!("{flag} {value:?} is not a valid header value")))
}

/// What a receiver would make of a captured delivery.
#[derive(Debug)]
pub(crate) enum Checked {
    /// It would be accepted.
    Verified {
        /// Which secret matched: 0 is the first `--secret`.
        secret_index: usize,
        /// How many secrets were tried.
        secrets: usize,
        /// The event's type.
        event_type: String,
        /// The dedupe key, as a receiver would store it.
        key: String,
        /// What the receiver's diagnostics found (a retired secret).
        diagnoses: Vec<Diagnosis>,
    },
    /// It would be refused.
    Refused {
        /// Why.
        kind: RejectionKind,
        /// The receiver's detail, if any.
        detail: Option<String>,
        /// What the receiver's diagnostics found: a re-encoded body, a secret of
        /// the wrong kind, the clock skew.
        diagnoses: Vec<Diagnosis>,
    },
}

/// A captured delivery and how to check it.
struct Captured<'h> {
    headers: &'h HeaderMap,
    body: Bytes,
    now: Duration,
    /// How many secrets the provider was given.
    tried: usize,
}

impl Captured<'_> {
    async fn check<P: Provider>(self, provider: P) -> Result<Checked, CliError> {
        let receiver = Receiver::new(provider, MemoryStore::new())?
            .clock(ManualClock::at_unix_secs(self.now.as_secs()))
            .diagnostics(true);
        let delivery = match receiver.receive(self.headers, self.body).await {
            Ok(Outcome::Accepted { delivery, .. } | Outcome::Skipped(delivery)) => delivery,
            Ok(Outcome::Duplicate { .. }) => {
                return Err(CliError::Usage(
                    "a fresh dedupe store reported a duplicate".to_owned(),
                ));
            }
            Err(rejection) => {
                return Ok(Checked::Refused {
                    kind: rejection.kind(),
                    detail: rejection.detail().map(str::to_owned),
                    diagnoses: rejection.diagnoses().to_vec(),
                });
            }
        };
        let secret = delivery.verified().secret_index();
        Ok(Checked::Verified {
            diagnoses: (secret > 0)
                .then_some(Diagnosis::RetiredSecret { secret })
                .into_iter()
                .collect(),
            secret_index: secret,
            secrets: self.tried,
            event_type: receiver.provider().event_type(delivery.event()).to_owned(),
            key: delivery.dedupe_key().to_string(),
        })
    }
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Verified {
                secret_index,
                secrets,
                event_type,
                key,
                diagnoses,
            } => {
                write!(f, "verified: ")?;
                if *secrets > 1 {
                    write!(f, "secret #{} of {secrets} matched, ", secret_index + 1)?;
                }
                write!(f, "event type {event_type}, dedupe key {key}")?;
                diagnoses.iter().try_for_each(|d| write!(f, "\n  - {d}"))
            }
            Self::Refused {
                kind,
                detail,
                diagnoses,
            } => {
                if *kind == RejectionKind::InvalidPayload {
                    write!(f, "the signature is valid, but the body is refused: ")?;
                } else {
                    write!(f, "not verified: ")?;
                }
                write!(f, "{} ({})", kind.code(), kind.status().as_u16())?;
                if let Some(detail) = detail {
                    write!(f, ": {detail}")?;
                }
                if matches!(
                    kind,
                    RejectionKind::TimestampTooOld | RejectionKind::TimestampTooNew
                ) {
                    write!(
                        f,
                        " (pass --now with the delivery's time to check the signature alone)"
                    )?;
                }
                diagnoses.iter().try_for_each(|d| write!(f, "\n  - {d}"))
            }
        }
    }
}
