//! Probes for `redis-server`, for the tests that run the scripts on a real one (see
//! `probe.rs`).

#[allow(unreachable_pub)]
#[path = "probe.rs"]
mod probe;

fn main() {
    probe::emit_build_cfg();
}
