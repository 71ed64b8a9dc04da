//! A loopback TCP proxy that can freeze: it forwards bytes both ways between its clients and a
//! target until [`Proxy::freeze`], after which it forwards nothing, in either direction, while
//! keeping every socket open. That is a half-open connection as the ends see it (a cable pulled,
//! a NAT entry gone, a peer frozen): no FIN, no RST, just silence. [`Proxy::thaw`] resumes
//! forwarding, bytes held back included, so a test can then read what the server said meanwhile.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use event_listener::Event;
use futures_lite::future;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};

/// The proxy; dropping it stops it and closes every socket it holds.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    _accept: smol::Task<()>,
}

#[derive(Default)]
struct State {
    frozen: AtomicBool,
    /// Only the server's replies held back: what clients send still reaches the server.
    replies_frozen: AtomicBool,
    changed: Event,
    /// The forwarding tasks, cancelled (their sockets closed) with the proxy.
    pipes: Mutex<Vec<smol::Task<()>>>,
}

impl State {
    /// Whether the direction (server to client: `downstream`) forwards nothing now.
    fn is_frozen(&self, downstream: bool) -> bool {
        self.frozen.load(Ordering::SeqCst)
            || (downstream && self.replies_frozen.load(Ordering::SeqCst))
    }

    fn set(&self, flag: &AtomicBool, frozen: bool) {
        flag.store(frozen, Ordering::SeqCst);
        self.changed.notify(usize::MAX);
    }

    /// Completes once the direction is in the state `frozen`.
    async fn until(&self, downstream: bool, frozen: bool) {
        loop {
            let listener = self.changed.listen();
            if self.is_frozen(downstream) == frozen {
                return;
            }
            listener.await;
        }
    }
}

impl Proxy {
    /// A proxy on an ephemeral 127.0.0.1 port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State::default());
        let accept = smol::spawn({
            let state = state.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(target).await else {
                        continue; // the client sees its connection end
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let pipe = smol::spawn(pipe(client, server, state.clone()));
                    state.pipes.lock().expect("not poisoned").push(pipe);
                }
            }
        });
        Self {
            addr,
            state,
            _accept: accept,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops forwarding both ways; every socket stays open.
    pub fn freeze(&self) {
        self.state.set(&self.state.frozen, true);
    }

    /// Holds back only the server's replies: requests still reach it (an answer lost on the
    /// way back, as a partition that starts after a request left shows it).
    pub fn freeze_replies(&self) {
        self.state.set(&self.state.replies_frozen, true);
    }

    /// Forwards again, both ways, starting with what was held back.
    pub fn thaw(&self) {
        self.state.set(&self.state.replies_frozen, false);
        self.state.set(&self.state.frozen, false);
    }
}

/// Both directions of one proxied connection.
async fn pipe(client: TcpStream, server: TcpStream, state: Arc<State>) {
    let upstream = forward(client.clone(), server.clone(), state.clone(), false);
    let downstream = forward(server, client, state, true);
    future::zip(upstream, downstream).await;
}

/// Copies `from` to `to` while not frozen. A read or write in progress when the proxy freezes is
/// abandoned (smol's reads and writes are cancel-safe: nothing is lost, nothing half-sent), and
/// bytes read but not yet written wait for the thaw. At the end of `from` the end is passed on.
async fn forward(mut from: TcpStream, mut to: TcpStream, state: Arc<State>, downstream: bool) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        state.until(downstream, false).await;
        let read = future::or(async { Some(from.read(&mut buffer).await) }, async {
            state.until(downstream, true).await;
            None
        });
        let n = match read.await {
            None => continue,
            Some(Ok(0) | Err(_)) => {
                let _ = to.close().await;
                return;
            }
            Some(Ok(n)) => n,
        };
        let mut sent = 0;
        while sent < n {
            state.until(downstream, false).await;
            let write = future::or(async { Some(to.write(&buffer[sent..n]).await) }, async {
                state.until(downstream, true).await;
                None
            });
            match write.await {
                None => continue,
                Some(Ok(0) | Err(_)) => return,
                Some(Ok(written)) => sent += written,
            }
        }
    }
}
