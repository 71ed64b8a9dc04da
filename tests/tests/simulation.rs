//! The deterministic simulation (`roomcast_tests::sim`): a fixed set of seeds on every
//! `cargo test`, as many as wanted on demand, and bugs planted on purpose that it must catch.
//!
//! ```sh
//! # CI's fixed set: seeds 0..32, 2,000 steps each
//! cargo test -p roomcast-tests --test simulation
//! # thousands: seeds 0..1000, 10,000 steps each (release: about 5 minutes on one core)
//! SIM_SEEDS=1000 SIM_STEPS=10000 cargo test --release -p roomcast-tests --test simulation fixed_seeds -- --nocapture
//! # one seed, as a failure prints it
//! SIM_SEED=7 SIM_STEPS=2000 cargo test -p roomcast-tests --test simulation replay -- --nocapture
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

/// Runs seeds against a deliberately broken hub until one fails; the failure must be `what`.
fn caught(bug: Planted, what: &str) {
    let options = Options {
        steps: 2000,
        planted: Some(bug),
        ..Options::default()
    };
    for seed in 0..32 {
        if let Err(failure) = sim::run(seed, &options) {
            assert!(
                failure.message.contains(what),
                "{bug:?} caught as: {failure}"
            );
            println!("{bug:?} caught: seed {seed}, step {}", failure.step);
            return;
        }
    }
    panic!("{bug:?} went unnoticed in 32 seeds");
}

#[test]
fn a_resume_that_skips_a_message_is_caught() {
    caught(Planted::SkipOnResume, "a gap");
}

#[test]
fn an_answer_sent_twice_is_caught() {
    caught(Planted::DoubleAnswer, "answered twice");
}
