//! Bugs planted on purpose, to prove that the simulation's invariants catch them: between the hub
//! and its sessions, or in the engine many hubs share. Never used outside the tests that say so.

use std::collections::BTreeSet;

use roomcast_core::delivery::{SessionId, Shared};
use roomcast_core::envelope::{Codec, ServerMessage};
use roomcast_core::hub::Transmit;

/// A deliberately broken hub (the real one, with its output altered), or shared engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planted {
    /// A resume inside the history window loses one replayed message (the second).
    SkipOnResume,
    /// Every 20th answer to a `ref` is sent twice.
    DoubleAnswer,
    /// The shared engine keeps no presence, as an engine of one node does: it relays none,
    /// and its snapshots are empty. Only many hubs show it.
    DeafToPresence,
    /// The shared engine sends every 50th answer to the next hub instead of the one that asked
    /// (under the asker's number, which the other hub may use too). Only many hubs show it.
    CrossedAnswers,
}

#[derive(Default)]
pub(crate) struct Breaker {
    /// Sessions whose next replay loses a message.
    skip_next_replay: BTreeSet<SessionId>,
    answers: u64,
}

impl Breaker {
    pub(crate) fn apply(&mut self, bug: Planted, codec: &Codec, transmit: &mut Transmit) {
        let Transmit::To {
            session,
            deliveries,
        } = transmit
        else {
            return;
        };
        match bug {
            Planted::SkipOnResume => {
                // The replay follows the reply, in the same batch or the next one.
                let reply = deliveries.iter().position(|d| replays_many(codec, d));
                let pending = self.skip_next_replay.remove(session);
                let from = match reply {
                    Some(at) => at + 1,
                    None if pending => 0,
                    None => return,
                };
                let streamed: Vec<usize> = (from..deliveries.len())
                    .filter(|&i| deliveries[i].stream.is_some())
                    .collect();
                match streamed.get(1) {
                    Some(&second) => drop(deliveries.remove(second)),
                    None if reply.is_some() => drop(self.skip_next_replay.insert(*session)),
                    None => {}
                }
            }
            Planted::DoubleAnswer => {
                let mut doubled = Vec::with_capacity(deliveries.len() + 1);
                for delivery in deliveries.drain(..) {
                    let answer = matches!(
                        codec.decode_server(delivery.frame.as_str()),
                        Ok(ServerMessage::Reply(_))
                    );
                    if answer {
                        self.answers += 1;
                        if self.answers.is_multiple_of(20) {
                            doubled.push(delivery.clone());
                        }
                    }
                    doubled.push(delivery);
                }
                *deliveries = doubled;
            }
            Planted::DeafToPresence | Planted::CrossedAnswers => {}
        }
    }
}

fn replays_many(codec: &Codec, delivery: &Shared) -> bool {
    matches!(
        codec.decode_server(delivery.frame.as_str()),
        Ok(ServerMessage::Reply(reply)) if reply.recovered == Some(true) && reply.replayed >= Some(2)
    )
}
