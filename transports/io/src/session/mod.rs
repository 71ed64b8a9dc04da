//! The session run loop: one task per connection drives a [`Session`] between its transport,
//! its mailbox (what the hub left for it) and its timer, as one future ([`SessionDriver`]).
//!
//! - `driver.rs`: the future and its steps (`drive_recv`, `drive_deliveries`,
//!   `drive_transmit`, `drive_timer`);
//! - `timing.rs`: the timer's policies as pure functions (the wake grid, keep or reset).
//!
//! [`Session`]: roomcast_core::session::Session

mod driver;
mod timing;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use roomcast_core::access::Grants;
use roomcast_core::delivery::SessionId;
use roomcast_core::envelope::Codec;
use roomcast_core::hub::Connect;
use roomcast_core::names::UserId;
use roomcast_core::session::{SessionConfig, SessionKind};

pub use self::driver::SessionDriver;
use crate::credentials::CredentialsRef;
use crate::hooks::HooksRef;
use crate::hub::{ConnectError, HubHandle};
use crate::mailbox::Mailbox;
pub use crate::observer::Ended;
use crate::observer::Observe;
use crate::runtime::Runtime;
use crate::shutdown::Shutdown;
use crate::transport::Transport;

/// How a session runs.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// WebSocket or SSE.
    pub kind: SessionKind,
    /// The session's limits and timings.
    pub config: SessionConfig,
    /// The codec (frame limit, application message types).
    pub codec: Codec,
    /// Longest a write may take before the connection counts as dead: 10 s.
    pub write_timeout: Duration,
    /// The server's shutdown switch (see [`Shutdown`]); the default is never triggered.
    pub shutdown: Shutdown,
    /// Who hears about the session, for metrics; the default ignores everything.
    pub observe: Observe,
    /// The transport's name in those reports: `"websocket"` by default.
    pub transport: &'static str,
    /// How late the session's timer may fire, at most: 250 ms by default, zero for exact
    /// timers. A deadline is put off to a point of a grid every session shares, at most 1/16
    /// of the time left to it, so the heartbeats of 10,000 sessions wake the server a few times
    /// a second, not 400 times.
    pub timer_slack: Duration,
    /// Checks the tokens a session presents in band (a `join`'s subscription token, a
    /// `refresh`); `None` (the default): they go to the hub unchecked, which admits nobody by
    /// a token and refuses `refresh`.
    pub credentials: Option<CredentialsRef>,
    /// Asks the application about joins and publishes where its hooks decide; `None` (the
    /// default): no hook.
    pub hooks: Option<HooksRef>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            kind: SessionKind::WebSocket,
            config: SessionConfig::default(),
            codec: Codec::new(),
            write_timeout: Duration::from_secs(10),
            shutdown: Shutdown::new(),
            observe: Observe::default(),
            transport: "websocket",
            timer_slack: DEFAULT_TIMER_SLACK,
            credentials: None,
            hooks: None,
        }
    }
}

/// The default [`SessionOptions::timer_slack`].
pub const DEFAULT_TIMER_SLACK: Duration = Duration::from_millis(250);

/// A connection registered with the hub whose session has not started yet: what
/// [`HubHandle::register`] returns, so an HTTP handler can refuse a connection the hub refuses
/// before it sends a response. Dropping it unrun removes it from the hub.
#[derive(Debug)]
pub struct Registered {
    hub: HubHandle,
    id: SessionId,
    user: UserId,
    mailbox: Option<Arc<Mailbox>>,
    grants: Arc<Grants>,
    expires: Option<SystemTime>,
}

impl Registered {
    /// Its session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Its credentials expire at `at`: the session is told ahead, then closed with 4003 (an
    /// SSE stream ends) unless it refreshes them.
    pub fn expires(mut self, at: Option<SystemTime>) -> Self {
        self.expires = at;
        self
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(mailbox) = &self.mailbox {
            // Never run: it leaves the hub now.
            mailbox.close();
            self.hub.disconnect_now(self.id);
        }
    }
}

impl HubHandle {
    /// Registers a connection with the hub, for [`run_registered`].
    pub async fn register(&self, connect: Connect) -> Result<Registered, ConnectError> {
        let user = connect.user.clone();
        let grants = Arc::clone(&connect.access.grants);
        let (id, mailbox) = self.connect(connect).await?;
        Ok(Registered {
            hub: self.clone(),
            id,
            user,
            mailbox: Some(mailbox),
            grants,
            expires: None,
        })
    }
}

/// Registers the connection with the hub, then runs its session until it ends (see
/// [`SessionDriver`]). No lock is held across an await, and nothing awaits another session.
pub async fn run_session<R: Runtime, T: Transport>(
    runtime: &R,
    hub: &HubHandle,
    transport: T,
    connect: Connect,
    options: SessionOptions,
) -> Result<Ended, ConnectError> {
    let registered = hub.register(connect).await?;
    Ok(run_registered(runtime, transport, registered, options).await)
}

/// The session of a connection already [registered](HubHandle::register), as a future that
/// ends with it. However it ends, even if the future is dropped midway (its connection went),
/// the session leaves the hub.
pub fn run_registered<R: Runtime, T: Transport>(
    runtime: &R,
    transport: T,
    mut registered: Registered,
    options: SessionOptions,
) -> SessionDriver<R, T> {
    let mailbox = registered.mailbox.take().expect("a registration runs once");
    SessionDriver::new(
        runtime.clone(),
        transport,
        registered.hub.clone(),
        registered.id,
        registered.user.clone(),
        mailbox,
        options,
    )
    .credentials(Arc::clone(&registered.grants), registered.expires)
}
