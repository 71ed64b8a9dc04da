//! The table of SockJS sessions over HTTP (`endpoints/sockjs/`): what each carries, its id,
//! and the client address that opened it. Apart from the endpoints so that the shared state
//! (`context.rs`) can hold it without importing them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use roomcast_io::SockJsLink;

use crate::refusal::Refusal;

/// What a SockJS session carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Carried {
    /// STOMP frames, under `/stomp/`.
    Stomp,
    /// roomcast.v1 messages, under `/sockjs/`.
    V1,
}

/// A session: what it carries, and its id.
pub(crate) type Key = (Carried, String);

/// The live SockJS sessions of the HTTP transports, by what they carry and their id. Each is
/// an admitted session holding its count against its client's address, so the table is
/// bounded as sessions are.
#[derive(Clone, Default)]
pub(crate) struct Sessions {
    table: Arc<Mutex<HashMap<Key, Entry>>>,
}

struct Entry {
    link: SockJsLink,
    /// The address that opened it: the only one whose requests reach it.
    client: IpAddr,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Session `key` of `client`; `Err` when it is another address's.
    pub(crate) fn find(&self, key: &Key, client: IpAddr) -> Result<Option<SockJsLink>, Refusal> {
        match self.lock().get(key) {
            Some(entry) if entry.client == client => Ok(Some(entry.link.clone())),
            Some(_) => Err(no_such_session()),
            None => Ok(None),
        }
    }

    /// Puts `link` in as `key`, unless a request that raced this one did first: then that one.
    pub(crate) fn insert(
        &self,
        key: Key,
        link: SockJsLink,
        client: IpAddr,
    ) -> Result<SockJsLink, Refusal> {
        let mut table = self.lock();
        match table.get(&key) {
            Some(entry) if entry.client == client => Ok(entry.link.clone()),
            Some(_) => Err(no_such_session()),
            None => {
                table.insert(
                    key,
                    Entry {
                        link: link.clone(),
                        client,
                    },
                );
                Ok(link)
            }
        }
    }

    pub(crate) fn remove(&self, key: &Key) {
        self.lock().remove(key);
    }

    /// How many sessions the table holds.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

pub(crate) fn no_such_session() -> Refusal {
    Refusal::new(404, "no such SockJS session")
}
