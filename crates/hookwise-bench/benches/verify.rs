//! Verification next to raw HMAC-SHA256 of the same bytes, header parsing, and
//! envelope parsing into the typed event, for each of the five providers.
//!
//! `cargo bench -p hookwise-bench --bench verify`

#![forbid(unsafe_code)]

use std::{hint::black_box, time::Duration};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use hookwise_bench::{
    GITHUB_SECRET, HOURSMITH_SECRET, KIB, MOJAVE_SECRET, STANDARD_WEBHOOKS_SECRET, STRIPE_SECRET,
    event_id, github_body, github_headers, hoursmith_body, hoursmith_headers, mojave_body,
    mojave_headers, now_secs, standard_webhooks_body, standard_webhooks_headers, stripe_body,
    stripe_headers,
};
use hookwise_core::{
    GitHub, Hoursmith, Mojave, Provider, StandardWebhooks, Stripe, hoursmith, standard_webhooks,
};
use http::HeaderMap;
use sha2::Sha256;

const SIZES: [usize; 2] = [KIB, 64 * KIB];

/// Raw HMAC-SHA256 with the key schedule computed once, as the providers keep it:
/// the floor any verification pays.
fn raw_hmac(key: &Hmac<Sha256>, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = key.clone();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn hmac_key(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length")
}

/// A provider's check, erased to what the benchmarks call.
type Check = Box<dyn Fn(&HeaderMap, &Bytes) -> bool>;

/// One provider's signed delivery of one size, and what is measured on it.
struct Case {
    name: &'static str,
    headers: HeaderMap,
    body: Bytes,
    /// The HMAC key, and what the provider signs before the body (`t.` for the
    /// `t=,v1=` scheme, `id.t.` for Standard Webhooks, nothing for a body-only HMAC).
    key: Hmac<Sha256>,
    signed_prefix: Vec<u8>,
    /// `Provider::verify` at the signing time.
    verify: Check,
    /// `Provider::parse`: the body into the typed event.
    parse: Check,
}

impl Case {
    fn new<P: Provider + 'static>(
        name: &'static str,
        provider: P,
        (headers, body): (HeaderMap, Bytes),
        key: &[u8],
        signed_prefix: String,
        now: Duration,
    ) -> Self {
        let provider = std::rc::Rc::new(provider);
        let parser = provider.clone();
        Self {
            name,
            headers,
            body,
            key: hmac_key(key),
            signed_prefix: signed_prefix.into_bytes(),
            verify: Box::new(move |headers, body| provider.verify(headers, body, now).is_ok()),
            parse: Box::new(move |headers, body| parser.parse(headers, body, now).is_ok()),
        }
    }

    fn raw_hmac(&self) -> [u8; 32] {
        raw_hmac(&self.key, &[&self.signed_prefix, black_box(&self.body)])
    }

    fn verify(&self) -> bool {
        (self.verify)(black_box(&self.headers), black_box(&self.body))
    }

    fn parse(&self) -> bool {
        (self.parse)(black_box(&self.headers), black_box(&self.body))
    }
}

/// Every provider's delivery of `size` bytes, signed now.
fn cases(size: usize) -> Vec<Case> {
    let t = now_secs();
    let now = Duration::from_secs(t);
    let svix_key = standard_webhooks::decode_secret(STANDARD_WEBHOOKS_SECRET).expect("secret");
    let body = hoursmith_body(&event_id(1, 1), t, size);
    let hoursmith = (hoursmith_headers(&body, t), body);
    let body = mojave_body(1, t, size);
    let mojave = (mojave_headers(&body), body);
    let body = stripe_body(1, t, size);
    let stripe = (stripe_headers(&body, t), body);
    let body = github_body(1, size);
    let github = (github_headers(&body, 1), body);
    let body = standard_webhooks_body(1, t, size);
    let svix = (standard_webhooks_headers(&body, 1, t), body);
    vec![
        Case::new(
            "hoursmith",
            Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
            hoursmith,
            HOURSMITH_SECRET.as_bytes(),
            format!("{t}."),
            now,
        ),
        Case::new(
            "mojave",
            Mojave::new(MOJAVE_SECRET).expect("secret"),
            mojave,
            MOJAVE_SECRET.as_bytes(),
            String::new(),
            now,
        ),
        Case::new(
            "stripe",
            Stripe::new(STRIPE_SECRET).expect("secret"),
            stripe,
            STRIPE_SECRET.as_bytes(),
            format!("{t}."),
            now,
        ),
        Case::new(
            "github",
            GitHub::new(GITHUB_SECRET).expect("secret"),
            github,
            GITHUB_SECRET.as_bytes(),
            String::new(),
            now,
        ),
        Case::new(
            "standard_webhooks",
            StandardWebhooks::new(STANDARD_WEBHOOKS_SECRET).expect("secret"),
            svix,
            &svix_key,
            format!("msg_1.{t}."),
            now,
        ),
    ]
}

fn verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for case in cases(size) {
            assert!(case.verify(), "{} must verify", case.name);
            group.bench_function(
                BenchmarkId::new(format!("raw_hmac/{}", case.name), size),
                |b| b.iter(|| case.raw_hmac()),
            );
            group.bench_function(BenchmarkId::new(case.name, size), |b| {
                b.iter(|| case.verify())
            });
        }
    }
    group.finish();
}

fn header_parsing(c: &mut Criterion) {
    let one = hookwise_core::sign::hoursmith(b"k", 1_700_000_000, b"{}");
    let two = hookwise_core::sign::hoursmith_with_secrets(&[b"new", b"old"], 1_700_000_000, b"{}");
    let mut group = c.benchmark_group("header");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hoursmith/one_v1", |b| {
        b.iter(|| hoursmith::SignatureHeader::parse(black_box(one.value())).expect("valid"))
    });
    group.bench_function("hoursmith/two_v1", |b| {
        b.iter(|| hoursmith::SignatureHeader::parse(black_box(two.value())).expect("valid"))
    });
    group.finish();
}

fn envelope_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for case in cases(size) {
            assert!(case.parse(), "{} must parse", case.name);
            group.bench_function(BenchmarkId::new(case.name, size), |b| {
                b.iter(|| case.parse())
            });
        }
    }
    group.finish();
}

/// The target's ratio measured robustly: provider verify vs raw HMAC throughput, in
/// alternating rounds of the same length, so that noise from other work on the
/// machine hits both alike. Prints the median over the rounds, with the range.
fn interleaved_ratio(_: &mut Criterion) {
    const PER_ROUND: u32 = 50;
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`, CI's smoke
    // run, an unoptimized build) one round shows that the code runs.
    let rounds: usize = if std::env::args().any(|arg| arg == "--bench") {
        21
    } else {
        1
    };
    let time = |f: &dyn Fn()| {
        let started = std::time::Instant::now();
        for _ in 0..PER_ROUND {
            f();
        }
        started.elapsed().as_secs_f64()
    };
    println!();
    println!("verify / raw HMAC-SHA256 throughput, {rounds} alternating rounds of {PER_ROUND}:");
    for size in SIZES {
        for case in cases(size) {
            let raw = || {
                black_box(case.raw_hmac());
            };
            let verify = || {
                black_box(case.verify());
            };
            let mut ratios: Vec<f64> = (0..rounds)
                .map(|round| {
                    let (raw_s, verify_s) = if round % 2 == 0 {
                        let r = time(&raw);
                        (r, time(&verify))
                    } else {
                        let v = time(&verify);
                        (time(&raw), v)
                    };
                    raw_s / verify_s
                })
                .collect();
            ratios.sort_by(f64::total_cmp);
            println!(
                "  {:17} {:>5} KiB: {:.3} (min {:.3}, max {:.3})",
                case.name,
                size / KIB,
                ratios[rounds / 2],
                ratios[0],
                ratios[rounds - 1]
            );
        }
    }
}

criterion_group!(
    benches,
    verification,
    header_parsing,
    envelope_parsing,
    interleaved_ratio
);
criterion_main!(benches);
