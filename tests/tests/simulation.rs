//! The deterministic simulation (`roomcast_tests::sim`): a fixed set of seeds on every
//! `cargo test`, as many as wanted on demand, and bugs planted on purpose that it must catch.
//! Each seed draws one, two or three hubs sharing one engine (`SIM_HUBS` forces a number).
//!
//! ```sh
//! # CI's fixed set: seeds 0..32, 2,000 steps each, two thirds of them on many hubs
//! cargo test -p roomcast-tests --test simulation
//! # thousands: seeds 0..1000, 10,000 steps each
//! SIM_SEEDS=1000 SIM_STEPS=10000 cargo test --release -p roomcast-tests --test simulation fixed_seeds -- --nocapture
//! # one seed, as a failure prints it (with SIM_HUBS if the failure names it)
//! SIM_SEED=7 SIM_STEPS=2000 cargo test -p roomcast-tests --test simulation replay -- --nocapture
//! # answers lost with a broken link fail though stored: odd seeds, or every seed with
//! SIM_AMBIGUOUS=1 SIM_SEED=2 SIM_STEPS=2000 cargo test -p roomcast-tests --test simulation replay -- --nocapture
//! ```

use std::time::Instant;

use roomcast_tests::sim::{self, Options, Planted, Summary};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().expect("a number"))
}

fn options(planted: Option<Planted>) -> Options {
    Options {
        steps: env("SIM_STEPS", 2000) as usize,
        planted,
        hubs: std::env::var("SIM_HUBS")
            .ok()
            .map(|n| n.parse().expect("a number")),
        ambiguous: std::env::var("SIM_AMBIGUOUS").is_ok(),
        ..Options::default()
    }
}

#[test]
fn fixed_seeds_keep_every_promise() {
    let first = env("SIM_FIRST_SEED", 0);
    let seeds = env("SIM_SEEDS", 32);
    let options = options(None);
    let started = Instant::now();
    let mut total = Summary::default();
    for seed in first..first + seeds {
        match sim::run(seed, &options) {
            Ok(summary) => total.add(&summary),
            Err(failure) => panic!("{failure}"),
        }
        if (seed - first + 1).is_multiple_of(100) {
            println!(
                "{} seeds passed, {:.1?}",
                seed - first + 1,
                started.elapsed()
            );
        }
    }
    println!(
        "{seeds} seeds x {} steps in {:.1?}: {total:?}",
        options.steps,
        started.elapsed()
    );
    // The faults and resumes the promises are about did happen.
    assert!(total.resumed > 0 && total.not_recovered > 0, "{total:?}");
    assert!(
        total.slow_consumer_closes > 0 && total.heartbeat_closes > 0,
        "{total:?}"
    );
    assert!(total.storms > 0 && total.received > 0, "{total:?}");
    // Many hubs: clients moved between them and resumed there, hubs died; the shared engine
    // relayed presence, lost `Live`s and tails, and its links went down.
    if options.hubs.is_none_or(|hubs| hubs > 1) {
        assert!(total.multi_hub_runs > 0 && total.moved > 0, "{total:?}");
        assert!(total.resumed_elsewhere > 0 && total.typing > 0, "{total:?}");
        assert!(total.hubs_killed > 0, "{total:?}");
        let engine = total.engine;
        assert!(engine.relays > 0 && engine.snapshots > 0, "{total:?}");
        assert!(
            engine.lives_dropped > 0 && engine.link_flaps > 0,
            "{total:?}"
        );
        assert!(
            engine.tails_lost > 0 && engine.records_lost > 0,
            "{total:?}"
        );
    }
}

#[test]
fn replay() {
    let seed = env("SIM_SEED", 0);
    match sim::run(seed, &options(None)) {
        Ok(summary) => println!("seed {seed}: {summary:?}"),
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn a_seed_replays_exactly() {
    let options = Options {
        steps: 500,
        ..Options::default()
    };
    let first = format!("{:?}", sim::run(3, &options).expect("passes"));
    assert_eq!(
        format!("{:?}", sim::run(3, &options).expect("passes")),
        first
    );
}

/// Runs seeds on `hubs` hubs against a deliberately broken hub or engine until one fails; the
/// failure must be one of `what`.
fn caught(bug: Planted, what: &[&str], hubs: usize) {
    let options = Options {
        steps: 2000,
        planted: Some(bug),
        hubs: Some(hubs),
        ..Options::default()
    };
    for seed in 0..32 {
        if let Err(failure) = sim::run(seed, &options) {
            assert!(
                what.iter().any(|what| failure.message.contains(what)),
                "{bug:?} on {hubs} hubs caught as: {failure}"
            );
            println!(
                "{bug:?} on {hubs} hubs caught: seed {seed}, step {}: {}",
                failure.step, failure.message
            );
            return;
        }
    }
    panic!("{bug:?} on {hubs} hubs went unnoticed in 32 seeds");
}

#[test]
fn a_resume_that_skips_a_message_is_caught() {
    for hubs in 1..=3 {
        caught(Planted::SkipOnResume, &["a gap"], hubs);
    }
}

#[test]
fn an_answer_sent_twice_is_caught() {
    for hubs in 1..=3 {
        caught(Planted::DoubleAnswer, &["answered twice"], hubs);
    }
}

#[test]
fn an_engine_that_keeps_no_presence_is_caught() {
    for hubs in 2..=3 {
        caught(Planted::DeafToPresence, &["presence", "sees"], hubs);
    }
}

#[test]
fn an_answer_sent_to_the_wrong_hub_is_caught() {
    for hubs in 2..=3 {
        caught(Planted::CrossedAnswers, &["waits for", "quiet"], hubs);
    }
}

/// The Redis driver fails an append whose answer a link failure lost once its retry window is
/// over, though Redis may have stored it: answered `unavailable`, and then delivered. The hub
/// must then deliver the message to its publisher too, or it has a silent gap where its own
/// message is (exclude-sender holds only while a reply is to come). Every seed here loses
/// answers so; it failed on seeds 1, 6 and 7 before the hub handled it.
#[test]
fn an_append_stored_but_answered_unavailable_leaves_no_gap() {
    let options = Options {
        steps: 2000,
        ambiguous: true,
        ..Options::default()
    };
    for seed in 0..8 {
        if let Err(failure) = sim::run(seed, &options) {
            panic!("{failure}");
        }
    }
}
