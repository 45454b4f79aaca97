//! Why a command could not run (exit code 2): one clear line each.

use std::path::PathBuf;

/// A failure to run the command, as opposed to a negative answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The body file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The body file is larger than any receiver would take.
    #[error("{} is {len} bytes, over the 64 MiB this tool reads", path.display())]
    FileTooLarge { path: PathBuf, len: u64 },
    /// A `--header` argument is not `Name: value`.
    #[error("--header {0:?} is not `Name: value` with a valid name and value")]
    Header(String),
    /// The provider refuses the secret (e.g. empty, or not `whsec_` + base64).
    #[error("the secret is not usable: {0}")]
    Secret(#[from] hookwise_core::ConfigError),
    /// An argument is not usable with this provider.
    #[error("{0}")]
    Usage(String),
    /// The URL is not an `http://` URL.
    #[error("--url {url:?}: {why}")]
    Url { url: String, why: &'static str },
    /// The request could not be sent or answered.
    #[error("POST {url}: {why}")]
    Http { url: String, why: String },
    /// Writing the output, or starting the runtime, failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The system clock is before 1970.
    #[error("the system clock is before 1970; pass --timestamp")]
    Clock,
}
