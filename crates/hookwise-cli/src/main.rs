//! `hookwise`: sign, send and verify webhook deliveries while testing an endpoint.
//!
//! ```text
//! hookwise sign   --provider hoursmith --secret S [--timestamp T] FILE
//! hookwise send   --provider hoursmith --secret S --url URL [--repeat N] [--event TYPE] [FILE]
//! hookwise verify --provider hoursmith --secret S --header 'NAME: VALUE' FILE
//! ```
//!
//! Signing and verifying go through `hookwise-core` (its `sign` module and its
//! `Receiver`), so the tool answers exactly as a hookwise receiver would.
//!
//! # Exit codes
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done: headers printed, every answer a 2xx, or the delivery verified |
//! | 1 | the answer was no: a non-2xx answer, or the delivery did not verify |
//! | 2 | the command could not run: bad arguments, unreadable file, no connection |

#![forbid(unsafe_code)]

mod args;
mod error;
mod provider;
mod samples;
mod send;

use std::{
    io::Write,
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use clap::Parser;

use crate::{
    args::{Cli, Command, SendArgs, SignArgs, VerifyArgs},
    error::CliError,
    provider::Checked,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hookwise: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Sign(args) => sign(args),
        Command::Send(args) => send(args),
        Command::Verify(args) => verify(args),
    }
}

/// Prints the headers a sender would send with the file's bytes.
fn sign(args: SignArgs) -> Result<ExitCode, CliError> {
    if args.id.is_some() && !args.provider.id_in_header() {
        return Err(header_only("--id", args.provider));
    }
    if args.event.is_some() && !args.provider.event_in_header() {
        return Err(header_only("--event", args.provider));
    }
    let body = read_body(&args.file)?;
    let timestamp = args.timestamp.map_or_else(unix_now, Ok)?;
    let meta = provider::Meta {
        id: args.id.unwrap_or_else(samples::new_id),
        event: args.event,
    };
    let headers = args
        .provider
        .sign(args.secret.as_bytes(), timestamp, &meta, &body)?;
    let mut out = std::io::stdout().lock();
    for (name, value) in &headers {
        // Values are built from digits, hex, base64 and the arguments, all checked
        // to be visible ASCII when the header map was built.
        writeln!(out, "{}: {}", name, value.to_str().unwrap_or_default())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Signs a delivery (a file or a built-in sample), POSTs it, and prints each answer.
fn send(args: SendArgs) -> Result<ExitCode, CliError> {
    let (body, meta) = match &args.file {
        Some(_) if args.event.is_some() && !args.provider.event_in_header() => {
            return Err(CliError::Usage(format!(
                "--event picks a built-in sample; with a FILE, {} reads the type from the body",
                args.provider.name()
            )));
        }
        Some(file) => (
            read_body(file)?,
            provider::Meta {
                id: samples::new_id(),
                event: args.event.clone(),
            },
        ),
        None => {
            let sample = samples::sample(args.provider, args.event.as_deref(), unix_now()?)?;
            (sample.body, sample.meta)
        }
    };
    let url = send::Target::parse(&args.url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut all_ok = true;
    for attempt in 0..=args.repeat {
        // A sender's retry: the same event and bytes, signed again at send time.
        let headers = args
            .provider
            .sign(args.secret.as_bytes(), unix_now()?, &meta, &body)?;
        let answer = runtime.block_on(url.post(headers, body.clone(), args.timeout()))?;
        all_ok &= answer.status.is_success();
        let label = if attempt == 0 { "sent" } else { "retry" };
        println!("{label} {}: {answer}", attempt + 1);
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Says whether a captured delivery verifies, and if not, why.
fn verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let body = read_body(&args.file)?;
    let headers = args::header_map(&args.headers)?;
    let now = match args.now {
        Some(secs) => Duration::from_secs(secs),
        None => Duration::from_secs(unix_now()?),
    };
    let checked = args.provider.check(&args.secrets, &headers, body, now)?;
    println!("{checked}");
    Ok(match checked {
        Checked::Verified { .. } => ExitCode::SUCCESS,
        Checked::Refused { .. } => ExitCode::FAILURE,
    })
}

/// A flag for a value the provider does not send in a header.
fn header_only(flag: &str, provider: provider::ProviderName) -> CliError {
    CliError::Usage(format!(
        "{flag} applies to providers that send it in a header; {} does not",
        provider.name()
    ))
}

/// The largest file the tool reads: far above any provider's body limit, so a
/// mistaken path (a disk image) fails clearly instead of filling memory.
const MAX_FILE: u64 = 64 * 1024 * 1024;

fn read_body(path: &std::path::Path) -> Result<Bytes, CliError> {
    let unreadable = |source| CliError::File {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(unreadable)?.len();
    if len > MAX_FILE {
        return Err(CliError::FileTooLarge {
            path: path.to_owned(),
            len,
        });
    }
    std::fs::read(path).map(Bytes::from).map_err(unreadable)
}

fn unix_now() -> Result<u64, CliError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| CliError::Clock)
}
