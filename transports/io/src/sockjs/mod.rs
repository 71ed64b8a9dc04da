//! SockJS (the SockJS protocol 0.3.3) as roomcast transports: what a `sockjs-client` reaches
//! roomcast by, carrying roomcast.v1 messages, or STOMP frames through a
//! [`StompTransport`](crate::StompTransport). The framing and the HTTP session's rules are the
//! core's (`roomcast_core::sockjs`); here they meet sockets and requests.
//!
//! - [`SockJsWs`]: SockJS's WebSocket transport, `o`, `a[...]`, `h`, `c[...]` over a
//!   [`WsTransport`](crate::WsTransport).
//! - [`SockJsLink`] and [`SockJsHttp`]: a session of the HTTP transports. The link is the
//!   session's shared state, held by the server's table of sessions; each receiving request
//!   takes its bytes through a [`SockJsReceiver`], each `xhr_send` hands its messages to
//!   [`SockJsLink::send`], and the session task runs on [`SockJsHttp`].

mod http;
mod websocket;

pub use http::{SockJsHttp, SockJsLink, SockJsReceiver};
pub use websocket::SockJsWs;
