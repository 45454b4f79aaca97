//! Verification next to raw HMAC-SHA256 of the same bytes, header parsing, and
//! envelope parsing into the typed event.
//!
//! `cargo bench -p hookwise-bench --bench verify`

#![forbid(unsafe_code)]

use std::{hint::black_box, time::Duration};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use hookwise_bench::{
    HOURSMITH_SECRET, KIB, MOJAVE_SECRET, event_id, hoursmith_body, hoursmith_headers, mojave_body,
    mojave_headers, now_secs,
};
use hookwise_core::{Hoursmith, Mojave, Provider, hoursmith, mojave};

const SIZES: [usize; 2] = [KIB, 64 * KIB];

/// Raw HMAC-SHA256 with the key schedule computed once, as the providers keep it:
/// the floor any verification pays.
fn raw_hmac(key: &Hmac<sha2::Sha256>, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = key.clone();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn verification(c: &mut Criterion) {
    let now = now_secs();
    let now_d = Duration::from_secs(now);
    let hoursmith = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
    let mojave = Mojave::new(MOJAVE_SECRET).expect("secret");
    let hoursmith_key =
        <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(HOURSMITH_SECRET.as_bytes())
            .expect("any key length");
    let mojave_key = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(MOJAVE_SECRET.as_bytes())
        .expect("any key length");

    let mut group = c.benchmark_group("verify");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));

        let body = hoursmith_body(&event_id(1, 1), now, size);
        let headers = hoursmith_headers(&body, now);
        let t = now.to_string();
        group.bench_with_input(
            BenchmarkId::new("raw_hmac/hoursmith", size),
            &body,
            |b, body| b.iter(|| raw_hmac(&hoursmith_key, &[t.as_bytes(), b".", black_box(body)])),
        );
        group.bench_with_input(BenchmarkId::new("hoursmith", size), &body, |b, body| {
            b.iter(|| {
                hoursmith
                    .verify(black_box(&headers), black_box(body), now_d)
                    .expect("verifies")
            })
        });

        let body = mojave_body(1, now, size);
        let headers = mojave_headers(&body);
        group.bench_with_input(
            BenchmarkId::new("raw_hmac/mojave", size),
            &body,
            |b, body| b.iter(|| raw_hmac(&mojave_key, &[black_box(body)])),
        );
        group.bench_with_input(BenchmarkId::new("mojave", size), &body, |b, body| {
            b.iter(|| {
                mojave
                    .verify(black_box(&headers), black_box(body), now_d)
                    .expect("verifies")
            })
        });
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
    let now = now_secs();
    let mut group = c.benchmark_group("envelope");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let body = hoursmith_body(&event_id(1, 1), now, size);
        group.bench_with_input(BenchmarkId::new("hoursmith", size), &body, |b, body| {
            b.iter(|| hoursmith::Event::from_json(black_box(body)).expect("valid"))
        });
        let body = mojave_body(1, now, size);
        group.bench_with_input(BenchmarkId::new("mojave", size), &body, |b, body| {
            b.iter(|| mojave::Event::from_json(black_box(body)).expect("valid"))
        });
    }
    group.finish();
}

/// A provider's name, one raw HMAC, one verification.
type Case<'a> = (&'static str, Box<dyn FnMut() + 'a>, Box<dyn FnMut() + 'a>);

/// The target's ratio measured robustly: provider verify vs raw HMAC throughput, in
/// alternating rounds of the same length, so that noise from other work on the
/// machine hits both alike. Prints the median over the rounds, with the range.
fn interleaved_ratio(_: &mut Criterion) {
    const ROUNDS: usize = 21;
    const PER_ROUND: u32 = 50;
    let now = now_secs();
    let now_d = Duration::from_secs(now);
    let hoursmith = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
    let mojave = Mojave::new(MOJAVE_SECRET).expect("secret");
    let hoursmith_key =
        <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(HOURSMITH_SECRET.as_bytes())
            .expect("any key length");
    let mojave_key = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(MOJAVE_SECRET.as_bytes())
        .expect("any key length");
    let time = |f: &mut dyn FnMut()| {
        let started = std::time::Instant::now();
        for _ in 0..PER_ROUND {
            f();
        }
        started.elapsed().as_secs_f64()
    };
    println!();
    println!("verify / raw HMAC-SHA256 throughput, {ROUNDS} alternating rounds of {PER_ROUND}:");
    for size in SIZES {
        let h_body = hoursmith_body(&event_id(1, 1), now, size);
        let h_headers = hoursmith_headers(&h_body, now);
        let t = now.to_string();
        let m_body = mojave_body(1, now, size);
        let m_headers = mojave_headers(&m_body);
        let cases: [Case<'_>; 2] = [
            (
                "hoursmith",
                Box::new(|| {
                    black_box(raw_hmac(
                        &hoursmith_key,
                        &[t.as_bytes(), b".", black_box(&h_body)],
                    ));
                }),
                Box::new(|| {
                    black_box(hoursmith.verify(&h_headers, black_box(&h_body), now_d)).ok();
                }),
            ),
            (
                "mojave",
                Box::new(|| {
                    black_box(raw_hmac(&mojave_key, &[black_box(&m_body)]));
                }),
                Box::new(|| {
                    black_box(mojave.verify(&m_headers, black_box(&m_body), now_d)).ok();
                }),
            ),
        ];
        for (name, mut raw, mut verify) in cases {
            let mut ratios: Vec<f64> = (0..ROUNDS)
                .map(|round| {
                    let (raw_s, verify_s) = if round % 2 == 0 {
                        let r = time(&mut raw);
                        (r, time(&mut verify))
                    } else {
                        let v = time(&mut verify);
                        (time(&mut raw), v)
                    };
                    raw_s / verify_s
                })
                .collect();
            ratios.sort_by(f64::total_cmp);
            println!(
                "  {name:9} {:>5} KiB: {:.3} (min {:.3}, max {:.3})",
                size / KIB,
                ratios[ROUNDS / 2],
                ratios[0],
                ratios[ROUNDS - 1]
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
