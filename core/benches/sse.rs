//! SSE codec speed against baselines measured in the same run: `sse-stream` 0.3 and
//! `eventsource-stream` 0.2 for decoding, `write!` for encoding. Prints the ratios at the end.
//!
//! `cargo bench -p roomcast-core --bench sse` (add `-- --quick` for a short run).

use std::convert::Infallible;
use std::hint::black_box;
use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use eventsource_stream::Eventsource as _;
use futures_util::StreamExt as _;
use roomcast_core::sse::{Decoder, Fields};

const SMALL_EVENTS: usize = 100_000;

/// 100,000 events of about 120 bytes: an id, an event type and one JSON data line.
fn small_events() -> Vec<u8> {
    let mut out = Vec::new();
    for n in 0..SMALL_EVENTS {
        write!(
            out,
            "id: {n}\nevent: message.created\ndata: {{\"room\":\"lobby\",\"user\":\"alice\",\"seq\":{n},\"text\":\"hello there, world\"}}\n\n"
        )
        .expect("write to a Vec");
    }
    out
}

/// 32 events of 64 KiB each, in data lines of 100 bytes.
fn large_events() -> Vec<u8> {
    let line = format!("data: {}\n", "x".repeat(94));
    let mut out = Vec::new();
    for _ in 0..32 {
        for _ in 0..(64 * 1024 / line.len()) {
            out.extend_from_slice(line.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

fn chunks(bytes: &[u8], size: usize) -> Vec<Bytes> {
    let all = Bytes::copy_from_slice(bytes);
    (0..bytes.len())
        .step_by(size)
        .map(|start| all.slice(start..(start + size).min(bytes.len())))
        .collect()
}

/// Our decoder; returns (events, data bytes) so every decoder is checked to agree.
fn roomcast(chunks: &[Bytes]) -> (usize, usize) {
    let mut decoder = Decoder::new();
    let (mut events, mut bytes) = (0, 0);
    for chunk in chunks {
        let mut input = &chunk[..];
        while let Some(event) = decoder.decode(&mut input).expect("within limits") {
            events += 1;
            bytes += black_box(event).data.len();
        }
    }
    (events, bytes)
}

/// Our decoder, keeping an owned copy of each event as the baselines do.
fn roomcast_owned(chunks: &[Bytes]) -> (usize, usize) {
    let mut decoder = Decoder::new();
    let (mut events, mut bytes) = (0, 0);
    for chunk in chunks {
        let mut input = &chunk[..];
        while let Some(event) = decoder.decode(&mut input).expect("within limits") {
            events += 1;
            bytes += black_box(event.into_owned()).data.len();
        }
    }
    (events, bytes)
}

fn sse_stream(chunks: &[Bytes]) -> (usize, usize) {
    let input = futures_util::stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    let mut stream = sse_stream::SseByteStream::new(input);
    futures_executor::block_on(async {
        let (mut events, mut bytes) = (0, 0);
        while let Some(event) = stream.next().await {
            let event = black_box(event.expect("valid stream"));
            if let Some(data) = event.data {
                events += 1;
                bytes += data.len();
            }
        }
        (events, bytes)
    })
}

fn eventsource_stream(chunks: &[Bytes]) -> (usize, usize) {
    let input = futures_util::stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    let mut stream = input.eventsource();
    futures_executor::block_on(async {
        let (mut events, mut bytes) = (0, 0);
        while let Some(event) = stream.next().await {
            events += 1;
            bytes += black_box(event.expect("valid stream")).data.len();
        }
        (events, bytes)
    })
}

type DecodeFn = fn(&[Bytes]) -> (usize, usize);

fn bench_decode(
    c: &mut Criterion,
    name: &str,
    bytes: &[u8],
    chunk: usize,
    rivals: &[(&str, DecodeFn)],
) {
    let input = chunks(bytes, chunk);
    let expected = roomcast(&input);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(10);
    group.bench_function("roomcast", |b| b.iter(|| roomcast(&input)));
    group.bench_function("roomcast_owned", |b| b.iter(|| roomcast_owned(&input)));
    for (rival, decode) in rivals {
        assert_eq!(
            decode(&input),
            expected,
            "{rival} decodes {name} differently"
        );
        group.bench_function(*rival, |b| b.iter(|| decode(&input)));
    }
    group.finish();
}

const ENCODE_DATA: &str =
    r#"{"room":"lobby","user":"alice","seq":12345,"text":"hello there, world"}"#;

fn encode_ids() -> Vec<String> {
    (0..SMALL_EVENTS).map(|n| n.to_string()).collect()
}

fn encode_roomcast(out: &mut Vec<u8>, ids: &[String]) -> usize {
    out.clear();
    for id in ids {
        let fields = Fields::data(ENCODE_DATA).id(id).event("message.created");
        fields.encode(out).expect("valid fields");
    }
    out.len()
}

fn encode_write_macro(out: &mut Vec<u8>, ids: &[String]) -> usize {
    out.clear();
    for id in ids {
        write!(
            out,
            "id: {id}\nevent: message.created\ndata: {ENCODE_DATA}\n\n"
        )
        .expect("Vec");
    }
    out.len()
}

fn bench_encode(c: &mut Criterion) {
    let ids = encode_ids();
    let mut group = c.benchmark_group("encode_100k_small");
    group.sample_size(10);
    let mut out = Vec::with_capacity(16 << 20);
    assert_eq!(
        encode_roomcast(&mut out, &ids),
        encode_write_macro(&mut out, &ids)
    );
    group.bench_function("roomcast", |b| {
        b.iter(|| black_box(encode_roomcast(&mut out, &ids)))
    });
    group.bench_function("write_macro", |b| {
        b.iter(|| black_box(encode_write_macro(&mut out, &ids)))
    });
    group.finish();
}

/// The bench's clock: the core is sans-IO and `core/clippy.toml` bans reading the clock there.
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Times `ours` and `theirs` alternately, `rounds` times; returns their median times in ns. A
/// slow phase of a shared machine then slows both rather than one, which one-after-the-other
/// measurement cannot promise.
fn interleaved(rounds: usize, mut ours: impl FnMut(), mut theirs: impl FnMut()) -> (f64, f64) {
    let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let start = now();
        ours();
        a.push(start.elapsed().as_nanos() as f64);
        let start = now();
        theirs();
        b.push(start.elapsed().as_nanos() as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut a), median(&mut b))
}

fn print_ratio(
    case: &str,
    ours: &str,
    baseline: &str,
    (time, theirs): (f64, f64),
    target: Option<f64>,
) {
    let ratio = theirs / time;
    let verdict = match target {
        Some(target) if ratio >= target => format!(" (target {target}x) meets target"),
        Some(target) => format!(" (target {target}x) MISSES target"),
        None => String::new(),
    };
    println!(
        "  {case:31} {ours:14} vs {baseline:18} {ratio:6.2}x{verdict}; {:.2} ms vs {:.2} ms",
        time / 1e6,
        theirs / 1e6
    );
}

type Case<'a> = (&'a str, &'a [Bytes], &'a str, DecodeFn, usize, f64);

/// The ratios the targets are judged on: ours and each baseline timed alternately, in this run.
fn print_ratios(small: &[u8], large: &[u8]) {
    println!(
        "\nratios, each pair timed alternately in this run (medians; baseline time / roomcast time):"
    );
    let (small_64k, small_7, large_64k) = (
        chunks(small, 64 * 1024),
        chunks(small, 7),
        chunks(large, 64 * 1024),
    );
    // (case, input, baseline, its decoder, rounds, target)
    let cases: [Case<'_>; 4] = [
        (
            "decode_100k_small_64KiB_chunks",
            &small_64k,
            "sse_stream",
            sse_stream,
            21,
            2.0,
        ),
        (
            "decode_100k_small_64KiB_chunks",
            &small_64k,
            "eventsource_stream",
            eventsource_stream,
            5,
            20.0,
        ),
        (
            "decode_100k_small_7B_chunks",
            &small_7,
            "sse_stream",
            sse_stream,
            15,
            1.5,
        ),
        (
            "decode_64KiB_events_many_lines",
            &large_64k,
            "sse_stream",
            sse_stream,
            51,
            1.0,
        ),
    ];
    for (case, input, baseline, theirs, rounds, target) in cases {
        // "roomcast" borrows each event from the decoder; "roomcast_owned" copies it out.
        for (ours, decode, target) in [
            ("roomcast", roomcast as DecodeFn, Some(target)),
            ("roomcast_owned", roomcast_owned, None),
        ] {
            let times = interleaved(
                rounds,
                || {
                    black_box(decode(input));
                },
                || {
                    black_box(theirs(input));
                },
            );
            print_ratio(case, ours, baseline, times, target);
        }
    }
    let ids = encode_ids();
    let mut out = Vec::with_capacity(16 << 20);
    let mut theirs_out = Vec::with_capacity(16 << 20);
    let times = interleaved(
        21,
        || {
            black_box(encode_roomcast(&mut out, &ids));
        },
        || {
            black_box(encode_write_macro(&mut theirs_out, &ids));
        },
    );
    print_ratio(
        "encode_100k_small",
        "roomcast",
        "write_macro",
        times,
        Some(1.0),
    );
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let small = small_events();
    let large = large_events();
    let both: &[(&str, DecodeFn)] = &[
        ("sse_stream", sse_stream),
        ("eventsource_stream", eventsource_stream),
    ];
    let sse_only: &[(&str, DecodeFn)] = &[("sse_stream", sse_stream)];
    // Untimed, the same for every contender: `--quick` hardly warms up, and the first bench of
    // the process would otherwise pay for cold caches and a CPU still raising its clock.
    let warm = chunks(&small, 64 * 1024);
    for decode in [roomcast, roomcast_owned, sse_stream] {
        for _ in 0..20 {
            black_box(decode(&warm));
        }
    }
    bench_decode(
        &mut c,
        "decode_100k_small_64KiB_chunks",
        &small,
        64 * 1024,
        both,
    );
    bench_decode(&mut c, "decode_100k_small_7B_chunks", &small, 7, sse_only);
    bench_decode(
        &mut c,
        "decode_64KiB_events_many_lines",
        &large,
        64 * 1024,
        sse_only,
    );
    bench_encode(&mut c);
    c.final_summary();
    print_ratios(&small, &large);
}
