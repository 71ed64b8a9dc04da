//! A client that never stops sending: a bug on smol, found by the flood of `malformed_flood`, and
//! fixed.
//!
//! The bug (smol): the session run loop (`transports/io/src/session_task.rs`, `run_registered`,
//! the `loop` around `next_input`) took one input per turn and awaited the next at once; while
//! the socket always held another frame every await completed at once, and the task never
//! yielded. smol's IO (async-io) has no cooperative budget, so the flooded session held its
//! executor thread until its close timeout ended it; in `roomcast serve` (smol's global
//! executor: one thread unless `SMOL_THREADS` says otherwise) every other session, the hub's
//! task of the time and every timer waited that long. Measured: a ping waited 4.6 to 4.9 s on smol; on tokio,
//! whose IO charges a cooperative budget and forces a yield, it passed.
//!
//! The fix (transports/io): a session yields every 32 inputs (`YIELD_EVERY`), so a client that
//! never stops sending no longer stalls the whole server. (The hub has no task of its own any
//! more: each caller runs its operation inline.)

use std::time::{Duration, Instant};

use roomcast_core::hub::HubConfig;
use roomcast_hyper::Options;
use roomcast_tests::{Flavor, Server, on_every_runtime, within};
use serde_json::json;
use smol::io::AsyncWriteExt;

use crate::common::{ms, raw_request, request, sleep, upgrade_request};

/// While one client sends tiny frames as fast as it can for 2 s, ignoring what the server says
/// (at the default limits it is closed with 1008 after about 300 frames, and its frames are then
/// read and dropped until `close_timeout`, 5 s), another client on the same server pings every
/// 50 ms: each ping is answered within 500 ms.
fn a_flooding_client_does_not_stall_the_others(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::start(flavor, HubConfig::default(), Options::default(), 64).await;
        let mut alice = server.client("alice").await;
        // Mallory: a raw upgrade, then masked text frames `{}` (mask key 0) written as fast as her
        // own thread can, never reading, and so never taking the server's close for an answer.
        let upgrade = upgrade_request(server.addr, "/ws?user=mallory");
        let mut mallory = raw_request(server.addr, &upgrade).await;
        assert_eq!(mallory.status, 101, "{}", mallory.head);
        let frames: Vec<u8> = [0x81u8, 0x82, 0, 0, 0, 0, b'{', b'}'].repeat(512);
        let length = Duration::from_secs(2);
        let started = Instant::now();
        let flood = std::thread::spawn(move || {
            smol::block_on(async move {
                for _ in 0..10_000_000 {
                    let write = within("write", mallory.stream.write_all(&frames)).await;
                    if started.elapsed() >= length || write.is_err() {
                        break;
                    }
                }
                mallory.stream
            })
        });
        let pings = async {
            let mut worst = Duration::ZERO;
            for n in 0..1000u64 {
                if started.elapsed() >= length {
                    break;
                }
                let sent = Instant::now();
                let reply = request(&mut alice, json!({"type": "ping", "ref": n})).await;
                assert_eq!(reply["type"], "reply", "{reply}");
                worst = worst.max(sent.elapsed());
                sleep(ms(50)).await;
            }
            worst
        };
        let worst = pings.await;
        let _connection = flood.join().expect("the flood");
        assert!(
            worst < ms(500),
            "a ping waited {worst:?} while another client flooded the server"
        );
    });
}

on_every_runtime!(a_flooding_client_does_not_stall_the_others);
