//! roomcast-smol: roomcast on [smol](https://docs.rs/smol): the [`Runtime`] and a WebSocket
//! [`Transport`] over async-tungstenite, plus a small accept loop.
//!
//! ```no_run
//! use roomcast_core::hub::{Hub, HubConfig};
//! use roomcast_io::spawn_hub;
//! use roomcast_smol::{ServeOptions, SmolRuntime, serve};
//!
//! smol::block_on(async {
//!     let hub = spawn_hub(&SmolRuntime, Hub::new(HubConfig::default(), 42), 1024, 64);
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     serve(listener, hub, ServeOptions::default()).await // `?user=NAME` names the user
//! })
//! # .unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod serve;
mod websocket;

use std::future::Future;
use std::time::Instant;

use async_trait::async_trait;
use roomcast_io::Runtime;

pub use serve::{
    Authenticate, Refusal, SUBPROTOCOL, ServeOptions, echo, serve, serve_echo, user_from_query,
};
pub use websocket::{WsTransport, websocket_config};

/// The smol runtime: the global executor, async-io timers and the system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolRuntime;

#[async_trait]
impl Runtime for SmolRuntime {
    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep_until(&self, deadline: Instant) {
        smol::Timer::at(deadline).await;
    }

    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(task).detach();
    }
}
