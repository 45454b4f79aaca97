//! `Receiver::receive` for one whole delivery: verify, parse, dedupe claim; then the
//! commit the processor does once the handler succeeded.
//!
//! `cargo bench -p hookwise-bench --bench receive`

#![forbid(unsafe_code)]

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookwise_bench::{
    HOURSMITH_SECRET, KIB, MOJAVE_SECRET, event_id, hoursmith_body, hoursmith_headers, mojave_body,
    mojave_headers, now_secs, ready,
};
use hookwise_core::{Hoursmith, MemoryStore, Mojave, Outcome, Receiver};

fn receive(c: &mut Criterion) {
    let hoursmith = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("receiver");
    let mojave = Receiver::new(
        Mojave::new(MOJAVE_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("receiver");

    let mut group = c.benchmark_group("receive");
    let mut n = 0;
    for size in [KIB, 64 * KIB] {
        group.throughput(Throughput::Bytes(size as u64));
        // A fresh event each iteration, built and signed outside the timing.
        group.bench_function(BenchmarkId::new("hoursmith/accept_commit", size), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let now = now_secs();
                    let body = hoursmith_body(&event_id(2, n), now, size);
                    (hoursmith_headers(&body, now), body)
                },
                |(headers, body)| match ready(hoursmith.receive(&headers, body)) {
                    Ok(Outcome::Accepted { claim, .. }) => {
                        ready(hoursmith.commit(&claim)).expect("commit")
                    }
                    other => panic!("a fresh event must be accepted: {other:?}"),
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function(BenchmarkId::new("mojave/accept_commit", size), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let body = mojave_body(n, now_secs(), size);
                    (mojave_headers(&body), body)
                },
                |(headers, body)| match ready(mojave.receive(&headers, body)) {
                    Ok(Outcome::Accepted { claim, .. }) => {
                        ready(mojave.commit(&claim)).expect("commit")
                    }
                    other => panic!("a fresh event must be accepted: {other:?}"),
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, receive);
criterion_main!(benches);
