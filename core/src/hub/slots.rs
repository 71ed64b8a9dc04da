//! Live sessions in a slab, each with the queue of deliveries its driver has not taken yet.
//!
//! A session id holds its slot index, so finding a session's queue during fan-out is one array
//! access; the rest of the id makes ids of reused slots differ.

use std::collections::{BTreeMap, VecDeque};

use crate::delivery::{SessionId, Shared};
use crate::names::{RoomName, UserId};

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) index: u32,
    pub(super) id: SessionId,
    pub(super) user: UserId,
    /// Rooms joined, each with this session's position in the room's member list.
    pub(super) rooms: BTreeMap<RoomName, u32>,
    /// Position in the broadcast followers, when following.
    pub(super) all_position: Option<u32>,
    queue: VecDeque<Shared>,
    queued_bytes: usize,
    /// In the ready list.
    ready: bool,
}

impl Slot {
    pub(super) fn queued(&self) -> impl Iterator<Item = &Shared> {
        self.queue.iter()
    }

    pub(super) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }
}

/// The queue budget, per session.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    pub(super) bytes: usize,
    pub(super) frames: usize,
}

#[derive(Debug, Default)]
pub(super) struct Slots {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Slots with queued deliveries, in the order they got their first.
    ready: VecDeque<u32>,
    live: usize,
    serial: u32,
}

impl Slots {
    pub(super) fn insert(&mut self, user: UserId) -> SessionId {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 sessions")
        });
        self.serial = self.serial.wrapping_add(1);
        let id = SessionId(u64::from(self.serial) << 32 | u64::from(index));
        self.slots[index as usize] = Some(Slot {
            index,
            id,
            user,
            rooms: BTreeMap::new(),
            all_position: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            ready: false,
        });
        self.live += 1;
        id
    }

    pub(super) fn remove(&mut self, id: SessionId) -> Option<Slot> {
        let index = index_of(id);
        let slot = self.slots.get_mut(index as usize)?;
        if slot.as_ref().is_none_or(|slot| slot.id != id) {
            return None;
        }
        self.free.push(index);
        self.live -= 1;
        slot.take()
    }

    pub(super) fn get(&self, id: SessionId) -> Option<&Slot> {
        let slot = self.slots.get(index_of(id) as usize)?.as_ref()?;
        (slot.id == id).then_some(slot)
    }

    pub(super) fn get_mut(&mut self, id: SessionId) -> Option<&mut Slot> {
        let slot = self.slots.get_mut(index_of(id) as usize)?.as_mut()?;
        (slot.id == id).then_some(slot)
    }

    /// The live slot at `index`; indices come from member lists, which hold live slots only.
    pub(super) fn at(&self, index: u32) -> &Slot {
        self.slots[index as usize]
            .as_ref()
            .expect("member lists hold live slots")
    }

    pub(super) fn at_mut(&mut self, index: u32) -> &mut Slot {
        self.slots[index as usize]
            .as_mut()
            .expect("member lists hold live slots")
    }

    pub(super) fn is_live(&self, index: u32) -> bool {
        matches!(self.slots.get(index as usize), Some(Some(_)))
    }

    pub(super) fn len(&self) -> usize {
        self.live
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    /// Queues a live `delivery` for the session at `index`. False when that would break its
    /// budget: nothing is queued, and the caller evicts the session.
    #[inline]
    pub(super) fn push(&mut self, index: u32, delivery: &Shared, budget: Budget) -> bool {
        let Some(Some(slot)) = self.slots.get_mut(index as usize) else {
            return true; // evicted earlier in this fan-out: nothing to do
        };
        let bytes = slot.queued_bytes + delivery.frame.len();
        if bytes > budget.bytes || slot.queue.len() >= budget.frames {
            return false;
        }
        slot.queue.push_back(delivery.clone());
        slot.queued_bytes = bytes;
        if !slot.ready {
            slot.ready = true;
            self.ready.push_back(index);
        }
        true
    }

    /// Queues a replay: accepted whole unless the queue is over budget already. A replay is
    /// bounded by the history it comes from, and its frames are shared with that history, so a
    /// resume that misses more than the budget can still complete instead of being evicted on
    /// every attempt.
    pub(super) fn push_batch(
        &mut self,
        index: u32,
        deliveries: Vec<Shared>,
        budget: Budget,
    ) -> bool {
        let Some(Some(slot)) = self.slots.get_mut(index as usize) else {
            return true;
        };
        if slot.queued_bytes > budget.bytes || slot.queue.len() > budget.frames {
            return false;
        }
        for delivery in deliveries {
            slot.queued_bytes += delivery.frame.len();
            slot.queue.push_back(delivery);
        }
        if !slot.ready && !slot.queue.is_empty() {
            slot.ready = true;
            self.ready.push_back(index);
        }
        true
    }

    /// Moves everything queued for the next ready session into `out`.
    pub(super) fn take_ready(&mut self, out: &mut Vec<Shared>) -> Option<SessionId> {
        while let Some(index) = self.ready.pop_front() {
            let Some(Some(slot)) = self.slots.get_mut(index as usize) else {
                continue; // removed since
            };
            if !slot.ready {
                continue; // removed, and the slot reused since
            }
            slot.ready = false;
            slot.queued_bytes = 0;
            out.extend(slot.queue.drain(..));
            return Some(slot.id);
        }
        None
    }
}

fn index_of(id: SessionId) -> u32 {
    id.0 as u32
}
