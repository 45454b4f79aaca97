//! What the `receiver` and `actix` examples share: configuration from the
//! environment, logging to stderr, and the one JSON line per processed event.

use std::{
    future::Future,
    io::{IsTerminal, Write},
    net::SocketAddr,
    process::ExitCode,
};

use tracing_subscriber::EnvFilter;

/// The examples' configuration, from the environment.
pub(crate) struct Config {
    /// `HOOKWISE_ADDR`, default `127.0.0.1:3000`.
    pub(crate) addr: SocketAddr,
    /// `MOJAVE_WEBHOOK_SECRET`, required.
    pub(crate) mojave_secret: String,
    /// `HOURSMITH_WEBHOOK_SECRET`, required.
    pub(crate) hoursmith_secret: String,
}

impl Config {
    /// Reads the configuration; the error is one line saying what to set.
    pub(crate) fn from_env() -> Result<Self, String> {
        let addr = std::env::var("HOOKWISE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        let addr = addr
            .parse()
            .map_err(|e| format!("HOOKWISE_ADDR={addr:?} is not a socket address: {e}"))?;
        Ok(Self {
            addr,
            mojave_secret: secret("MOJAVE_WEBHOOK_SECRET")?,
            hoursmith_secret: secret("HOURSMITH_WEBHOOK_SECRET")?,
        })
    }
}

/// A required, non-empty environment variable.
fn secret(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        Ok(_) => Err(format!(
            "{name} is empty: set it to the webhook secret shown by the provider"
        )),
        Err(_) => Err(format!(
            "{name} is not set: set it to the webhook secret shown by the provider"
        )),
    }
}

/// Runs an example's server: logging set up, configuration read (exit code 2 and one
/// line when it is incomplete), then `run`, whose error is one line and exit code 1.
pub(crate) async fn main<F, Fut>(example: &str, run: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = Result<ExitCode, Box<dyn std::error::Error>>>,
{
    init_logging();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{example}: {message}");
            return ExitCode::from(2);
        }
    };
    run(config).await.unwrap_or_else(|error| {
        eprintln!("{example}: {error}");
        ExitCode::FAILURE
    })
}

/// Logs to stderr, at `RUST_LOG` (default `info`), in colour only on a terminal.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
}

/// Prints one processed event as a JSON line on stdout.
pub(crate) fn print_event(provider: &str, id: &str, event_type: &str, livemode: bool) {
    let line = serde_json::json!({
        "provider": provider,
        "id": id,
        "type": event_type,
        "livemode": livemode,
    });
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not fail the event: the line is informational.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
