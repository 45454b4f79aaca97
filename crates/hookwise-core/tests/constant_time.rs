//! Constant time: rejecting a forged signature costs the same wherever it differs from
//! the expected one. Statistical, so it only runs when asked, best in release:
//!
//! ```text
//! cargo test --release -p hookwise-core --test constant_time -- --ignored --nocapture
//! ```
//!
//! `Secrets::verify` computes one HMAC, then compares it with every signature given.
//! One comparison of 32 bytes is far below timer noise, so each call here carries
//! 4096 forged signatures, all differing from the expected tag at the same byte: the
//! comparisons then dominate the call, and an early exit would show as a cost
//! growing with the position. A naive early-exit comparison measured the same way is
//! the control: it proves the measurement can see such a leak.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use hookwise_core::{Secrets, secret::Digest, sign};

const SECRET: &str = "whsec_timing";
const BODY: &[u8] = br#"{"type":"invoice.paid","timestamp":1717603200,"data":{"id":"inv_1"}}"#;
const SIGNATURES: usize = 4096;
const ROUNDS: usize = 301;
/// Where the forged signatures differ: the first byte, the middle, the last.
const POSITIONS: [usize; 3] = [0, 16, 31];

fn expected_tag() -> Digest {
    let header = sign::mojave(SECRET.as_bytes(), BODY);
    hookwise_core::secret::decode_hex_digest(header.value()).expect("64 hex digits")
}

/// `SIGNATURES` copies of the tag with one bit flipped at `position`.
fn forged_at(tag: Digest, position: usize) -> Vec<Digest> {
    let mut forged = tag;
    forged[position] ^= 0x01;
    vec![forged; SIGNATURES]
}

/// The median time of `call` for each position, measured in interleaved rounds so
/// that drift (frequency scaling, other load) hits every position alike.
fn medians(call: impl Fn(&[Digest]) -> bool, forged: &[Vec<Digest>]) -> Vec<Duration> {
    let mut samples = vec![Vec::with_capacity(ROUNDS); forged.len()];
    for round in 0..ROUNDS {
        for k in 0..forged.len() {
            let k = (k + round) % forged.len();
            let started = Instant::now();
            let matched = call(black_box(&forged[k]));
            samples[k].push(started.elapsed());
            assert!(!matched, "a forged signature matched");
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_unstable();
            s[s.len() / 2]
        })
        .collect()
}

fn spread(medians: &[Duration]) -> f64 {
    let max = medians.iter().max().expect("positions");
    let min = medians.iter().min().expect("positions");
    max.as_secs_f64() / min.as_secs_f64()
}

/// Compares byte by byte and stops at the first difference: the leak to look for.
fn early_exit_eq(a: &Digest, b: &Digest) -> bool {
    for i in 0..a.len() {
        if black_box(a[i]) != black_box(b[i]) {
            return false;
        }
    }
    true
}

#[test]
#[ignore = "statistical timing; run alone, in release: \
            cargo test --release -p hookwise-core --test constant_time -- --ignored"]
fn rejecting_a_forgery_costs_the_same_wherever_it_differs() {
    let secrets = Secrets::new([SECRET]).expect("secret");
    let tag = expected_tag();
    let forged: Vec<_> = POSITIONS.iter().map(|&p| forged_at(tag, p)).collect();

    // The control first: an early exit is visible to this measurement.
    let naive = medians(
        |signatures| signatures.iter().any(|s| early_exit_eq(&tag, s)),
        &forged,
    );
    // The compare path under test: one HMAC, then every signature in constant time.
    let verify = medians(
        |signatures| secrets.verify(&[BODY], signatures).is_some(),
        &forged,
    );

    eprintln!(
        "median per call over {ROUNDS} rounds, {SIGNATURES} forged signatures differing at \
         byte {POSITIONS:?}: Secrets::verify {verify:?} (spread {:.3}); early-exit control \
         {naive:?} (spread {:.3})",
        spread(&verify),
        spread(&naive)
    );
    assert!(
        naive[2] > naive[0].mul_f64(1.5),
        "the control should show the early exit: {naive:?}"
    );
    // Generous: noise and cache effects stay well inside 15 %, while an early exit
    // shows as the control does (several times slower at the last byte).
    assert!(
        spread(&verify) < 1.15,
        "verify's cost depends on where the forgery differs: {verify:?}"
    );
}

#[test]
fn every_forged_position_is_rejected() {
    // The functional half, in every run: a one-bit difference anywhere is refused,
    // and the right tag among forgeries is found whatever its place.
    let secrets = Secrets::new([SECRET]).expect("secret");
    let tag = expected_tag();
    for position in 0..tag.len() {
        let mut signatures = forged_at(tag, position);
        signatures.truncate(3);
        assert_eq!(
            secrets.verify(&[BODY], &signatures),
            None,
            "byte {position}"
        );
        signatures[position % 3] = tag;
        assert_eq!(
            secrets.verify(&[BODY], &signatures),
            Some(0),
            "byte {position}"
        );
    }
}

/// A tenant's delivery with a wrong signature, and one for a tenant the source does
/// not know (remembered as unknown): both refused `signature_mismatch`, and in the
/// same time, so that timing does not tell which tenant ids exist.
#[test]
#[ignore = "statistical timing; run alone, in release: \
            cargo test --release -p hookwise-core --test constant_time -- --ignored"]
fn an_unknown_tenant_costs_what_a_wrong_signature_costs() {
    use bytes::Bytes;
    use hookwise_core::{
        Hoursmith, ManualClock, MemoryStore, Receiver, RejectionKind,
        tenant::{LookupError, TenantId, TenantLocator, Tenants},
    };

    const NOW: u64 = 1_717_603_500;
    async fn source(tenant: TenantId) -> Result<Option<Vec<String>>, LookupError> {
        Ok((tenant.as_str() == "acme").then(|| vec!["whsec_acme".to_owned()]))
    }
    let receiver = Receiver::new(
        Hoursmith::new("template").expect("a secret"),
        MemoryStore::new(),
    )
    .expect("config")
    .clock(ManualClock::at_unix_secs(NOW))
    .tenants(Tenants::new(TenantLocator::path_segment(0), source))
    .expect("takes tenants");
    let body = Bytes::from(format!(
        r#"{{"id":"e1","type":"invoice.paid","created":1717603200,"orgId":"o","livemode":true,"data":{{"pad":"{}"}}}}"#,
        "x".repeat(900)
    ));
    let mut headers = http::HeaderMap::new();
    sign::hoursmith(b"whsec_forged", NOW, &body).insert_into(&mut headers);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let mut malformed = http::HeaderMap::new();
    malformed.insert("hoursmith-signature", "t=1,v1=zz".parse().expect("a value"));
    // The control: a known tenant's delivery refused before any MAC (a malformed
    // header), which this measurement must tell apart.
    let cases = [
        ("/acme", &headers, RejectionKind::SignatureMismatch),
        ("/initech", &headers, RejectionKind::SignatureMismatch),
        ("/acme", &malformed, RejectionKind::SignatureMalformed),
    ];
    let call = |(path, headers, kind): (&str, &http::HeaderMap, RejectionKind)| {
        let answer = runtime.block_on(receiver.receive_at(path, headers, body.clone()));
        assert_eq!(answer.expect_err("refused").kind(), kind);
    };
    for case in cases {
        call(case); // looked up once, then cached (known, and unknown)
    }
    const CALLS: usize = 64;
    let mut samples = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for round in 0..ROUNDS {
        for k in 0..cases.len() {
            let k = (k + round) % cases.len();
            let started = Instant::now();
            for _ in 0..CALLS {
                call(black_box(cases[k]));
            }
            samples[k].push(started.elapsed());
        }
    }
    let medians: Vec<Duration> = samples
        .into_iter()
        .map(|mut s| {
            s.sort_unstable();
            s[s.len() / 2] / CALLS as u32
        })
        .collect();
    eprintln!(
        "median per delivery over {ROUNDS} rounds of {CALLS}: known tenant, wrong signature \
         {:?}; unknown tenant {:?} (spread {:.3}); control, refused before the MAC {:?}",
        medians[0],
        medians[1],
        spread(&medians[..2]),
        medians[2]
    );
    assert!(
        medians[0] > medians[2].mul_f64(1.15),
        "the control should show the missing MAC: {medians:?}"
    );
    assert!(
        spread(&medians[..2]) < 1.15,
        "an unknown tenant is told apart by time: {medians:?}"
    );
}
