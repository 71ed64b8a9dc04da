//! Live sessions in a slab. A session id holds its slot index, which drivers may use to keep
//! their own per-session state in a `Vec` (see [`SessionId::index`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::access::Grants;
use crate::delivery::SessionId;
use crate::names::{RoomName, UserId};

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) id: SessionId,
    pub(super) user: UserId,
    /// Rooms joined, each with this session's position in the room's member list once it
    /// receives the room (`None` while its join waits for the engine).
    pub(super) rooms: BTreeMap<RoomName, Option<u32>>,
    /// Position in the broadcast followers, when receiving the feed.
    pub(super) all_position: Option<u32>,
    /// It follows the broadcast feed (receiving it, or starting to).
    pub(super) broadcast: bool,
    /// What its credentials grant.
    pub(super) grants: Arc<Grants>,
    /// What a subscription token or the application's hook admitted it to: each one join or
    /// one publish of a room.
    pub(super) admitted: Vec<(Admission, RoomName)>,
}

/// What an admission is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admission {
    Join,
    Publish,
}

impl Slot {
    /// Takes the admission of `kind` to `room`, if there is one.
    pub(super) fn take_admission(&mut self, kind: Admission, room: &RoomName) -> bool {
        let found = self
            .admitted
            .iter()
            .position(|(k, r)| *k == kind && r == room);
        found.map(|at| self.admitted.remove(at)).is_some()
    }
}

#[derive(Debug, Default)]
pub(super) struct Slots {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    live: usize,
    serial: u32,
}

impl Slots {
    pub(super) fn insert(&mut self, user: UserId, grants: Arc<Grants>) -> SessionId {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 sessions")
        });
        self.serial = self.serial.wrapping_add(1);
        let id = SessionId::new(self.serial, index);
        self.slots[index as usize] = Some(Slot {
            id,
            user,
            rooms: BTreeMap::new(),
            all_position: None,
            broadcast: false,
            grants,
            admitted: Vec::new(),
        });
        self.live += 1;
        id
    }

    pub(super) fn remove(&mut self, id: SessionId) -> Option<Slot> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.as_ref().is_none_or(|slot| slot.id != id) {
            return None;
        }
        self.free.push(id.index() as u32);
        self.live -= 1;
        slot.take()
    }

    pub(super) fn get(&self, id: SessionId) -> Option<&Slot> {
        let slot = self.slots.get(id.index())?.as_ref()?;
        (slot.id == id).then_some(slot)
    }

    pub(super) fn get_mut(&mut self, id: SessionId) -> Option<&mut Slot> {
        let slot = self.slots.get_mut(id.index())?.as_mut()?;
        (slot.id == id).then_some(slot)
    }

    pub(super) fn len(&self) -> usize {
        self.live
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }
}
