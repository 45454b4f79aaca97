//! The command line: commands, their flags, and the help text.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{error::CliError, provider::ProviderName};

/// Sign, send and verify webhook deliveries, exactly as hookwise receives them.
///
/// Exit codes: 0 done (every answer 2xx, or the delivery verified); 1 the answer was
/// no (a non-2xx answer, or the delivery did not verify); 2 the command could not run
/// (bad arguments, unreadable file, no connection).
#[derive(Debug, Parser)]
#[command(name = "hookwise", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the headers a provider would send with FILE's bytes.
    ///
    /// Each line is `Name: value`, ready for `curl -H`.
    Sign(SignArgs),
    /// Sign a delivery and POST it to a URL, then print each answer.
    ///
    /// Without FILE, a built-in sample of the event type (--event) is sent, with a
    /// fresh event id and the current time.
    Send(SendArgs),
    /// Say whether a captured delivery verifies, and if not, why.
    ///
    /// Checks the signature over FILE's exact bytes, then parses the body, as a
    /// hookwise receiver does.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// Whose scheme to sign with.
    #[arg(long, short, value_enum)]
    pub(crate) provider: ProviderName,
    /// The webhook secret, as the provider shows it.
    #[arg(long, short, env = "HOOKWISE_SECRET", hide_env_values = true)]
    pub(crate) secret: String,
    /// The signature time, in Unix seconds [default: now].
    #[arg(long, short)]
    pub(crate) timestamp: Option<u64>,
    /// The delivery id, for providers that send one in a header (github,
    /// standard-webhooks) [default: a new random id].
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// The event name, for providers that send it in a header (github: `X-GitHub-Event`,
    /// default `ping`).
    #[arg(long, short)]
    pub(crate) event: Option<String>,
    /// The body to sign, byte for byte.
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Whose scheme to sign with.
    #[arg(long, short, value_enum)]
    pub(crate) provider: ProviderName,
    /// The webhook secret, as the provider shows it.
    #[arg(long, short, env = "HOOKWISE_SECRET", hide_env_values = true)]
    pub(crate) secret: String,
    /// Where to POST, e.g. http://127.0.0.1:3000/webhooks/hoursmith (http only: this
    /// tool is for local endpoints).
    #[arg(long, short)]
    pub(crate) url: String,
    /// Send the same event N more times after the first, as a sender's retries would
    /// (same id and bytes, signed again).
    #[arg(long, short, default_value_t = 0, value_name = "N")]
    pub(crate) repeat: u32,
    /// The event type of the built-in sample (e.g. invoice.paid); any other type is
    /// sent with empty data. For github it is the `X-GitHub-Event` header.
    #[arg(long, short)]
    pub(crate) event: Option<String>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub(crate) timeout: u64,
    /// The body to send, byte for byte [default: a built-in sample].
    pub(crate) file: Option<PathBuf>,
}

impl SendArgs {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Whose scheme the delivery claims.
    #[arg(long, short, value_enum)]
    pub(crate) provider: ProviderName,
    /// A secret to try; repeat it to try several (rotation): the answer says which
    /// one matched.
    #[arg(
        long = "secret",
        short,
        required = true,
        env = "HOOKWISE_SECRET",
        hide_env_values = true,
        value_delimiter = None
    )]
    pub(crate) secrets: Vec<String>,
    /// A header of the captured delivery, `'Name: value'`; repeat for each.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Check against this time (Unix seconds) instead of now, e.g. for a delivery
    /// captured earlier than the provider's tolerance.
    #[arg(long, value_name = "UNIX_SECS")]
    pub(crate) now: Option<u64>,
    /// The captured body, byte for byte.
    pub(crate) file: PathBuf,
}

/// Builds a header map from `Name: value` arguments.
pub(crate) fn header_map(headers: &[String]) -> Result<HeaderMap, CliError> {
    let mut map = HeaderMap::new();
    for header in headers {
        let bad = || CliError::Header(header.clone());
        let (name, value) = header.split_once(':').ok_or_else(bad)?;
        let name = HeaderName::try_from(name.trim()).map_err(|_| bad())?;
        let value = HeaderValue::try_from(value.trim()).map_err(|_| bad())?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_repeats_and_trim() {
        let map = header_map(&["A: 1".into(), "a:2 ".into()]).expect("valid headers");
        let values: Vec<_> = map.get_all("a").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn a_header_without_colon_is_an_error() {
        let err = header_map(&["Hoursmith-Signature t=1".into()]).expect_err("no colon");
        assert!(err.to_string().contains("Name: value"), "{err}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
