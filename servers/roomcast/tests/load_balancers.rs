//! The load balancer examples of docs/scaling.md, run: Debian's `nginx` and `haproxy`, each
//! with the configuration the docs show (written here into a fresh directory, on a loopback
//! port), in front of two `roomcast serve --redis` nodes, without sticky sessions. Clients that
//! connect through the balancer land on both nodes; WebSocket and SSE clients see every message;
//! a client that comes back through the balancer resumes exactly, wherever it lands.
//!
//! Without `nginx`, `haproxy` or `redis-server` these tests are ignored (`apt-get install nginx
//! haproxy redis-server`); `ROOMCAST_REQUIRE_BALANCERS=1` and `ROOMCAST_REQUIRE_REDIS=1` run them
//! anyway (CI).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, fresh_dir, joined};
use roomcast_tests::http::get;
use roomcast_tests::redis::RedisServer;
use serde_json::{Value, json};

const REDIS: &str = env!("ROOMCAST_TEST_REDIS_SERVER");

/// The nginx configuration of docs/scaling.md, with this test's ports and directory.
fn nginx_conf(dir: &str, listen: SocketAddr, nodes: [SocketAddr; 2]) -> String {
    format!(
        r#"worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # --- as in docs/scaling.md ---
    upstream roomcast {{
        server {a};
        server {b};
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://roomcast;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#,
        a = nodes[0],
        b = nodes[1],
    )
}

/// The HAProxy configuration of docs/scaling.md, with this test's ports.
fn haproxy_conf(listen: SocketAddr, nodes: [SocketAddr; 2]) -> String {
    format!(
        r#"defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend roomcast
    bind {listen}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /healthz
    server a {a} check inter 1s
    server b {b} check inter 1s
"#,
        a = nodes[0],
        b = nodes[1],
    )
}

/// A balancer process, killed when dropped.
struct Balancer {
    child: Child,
    addr: SocketAddr,
    _dir: PathBuf,
}

impl Balancer {
    fn start(kind: &str, nodes: [SocketAddr; 2]) -> Self {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let dir = fresh_dir(kind);
        std::fs::create_dir_all(&dir).expect("a fresh directory");
        let conf = dir.join(format!("{kind}.conf"));
        let mut command = if kind == "nginx" {
            let text = nginx_conf(&dir.display().to_string(), addr, nodes);
            std::fs::write(&conf, text).expect("config");
            let mut command = Command::new(env!("ROOMCAST_TEST_NGINX"));
            command
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&conf)
                .args(["-g", "daemon off;"]);
            command
        } else {
            std::fs::write(&conf, haproxy_conf(addr, nodes)).expect("config");
            let mut command = Command::new(env!("ROOMCAST_TEST_HAPROXY"));
            command.arg("-f").arg(&conf).arg("-db");
            command
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{kind}: {e} (apt-get install {kind})"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "{kind} did not listen in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    fn ws(&self, query: &str) -> String {
        format!("ws://{}/ws?{query}", self.addr)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn websockets(node: &Running) -> u64 {
    smol::block_on(async {
        let status = get(node.addr, "/api/status", &[]).await.json().await;
        status["connections"]["websocket"].as_u64().unwrap_or(0)
    })
}

fn through(kind: &str) {
    let redis = RedisServer::start(REDIS, &[]);
    let url = redis.url();
    let a = Running::start(&["--redis", &url]);
    let b = Running::start(&["--redis", &url, "--runtime", "smol"]);
    let balancer = Balancer::start(kind, [a.addr, b.addr]);
    smol::block_on(async {
        let mut clients = Vec::new();
        for n in 0..4 {
            clients.push(joined(&balancer.ws(&format!("user=user{n}")), "lobby").await);
        }
        let mut sse = roomcast_tests::http::get(
            balancer.addr,
            "/events?user=sse&rooms=lobby&broadcast=0",
            &[],
        )
        .await
        .events();
        sse.next_of("streams").await;
        // Round robin, no stickiness: both nodes hold some of them.
        let (on_a, on_b) = (websockets(&a), websockets(&b));
        assert!(on_a > 0 && on_b > 0, "{kind}: {on_a} on a, {on_b} on b");
        let mut ids = Vec::new();
        for n in 0..5 {
            let reference = json!(format!("p{n}"));
            clients[0]
                .send_json(json!({"type": "publish", "ref": reference, "room": "lobby", "data": n}))
                .await;
            let (reply, _) = clients[0].answer(&reference).await;
            ids.push(reply["id"].clone());
        }
        for client in &mut clients[1..] {
            for id in &ids {
                assert_eq!(&client.next_of("message").await["id"], id, "{kind}");
            }
        }
        for id in &ids {
            let (message, _) = sse.next_of("message").await;
            assert_eq!(&message["id"], id, "{kind}: SSE through the balancer");
        }
        // A client comes back through the balancer, wherever it lands, and resumes exactly.
        let mut again = joined(&balancer.ws("user=again"), "lobby").await;
        again
            .send_json(json!({"type": "leave", "ref": "l", "room": "lobby"}))
            .await;
        again.answer(&json!("l")).await;
        again
            .send_json(json!({"type": "join", "ref": "r", "room": "lobby", "since": ids[1]}))
            .await;
        let (reply, _): (Value, _) = again.answer(&json!("r")).await;
        assert_eq!(reply["recovered"], true, "{kind}: {reply}");
        assert_eq!(reply["replayed"], 3, "{kind}: {reply}");
    });
}

#[test]
#[cfg_attr(
    not(all(roomcast_balancers, roomcast_redis)),
    ignore = "needs nginx and redis-server: apt-get install nginx haproxy redis-server"
)]
fn nginx_in_front_of_two_nodes_as_the_docs_show() {
    through("nginx");
}

#[test]
#[cfg_attr(
    not(all(roomcast_balancers, roomcast_redis)),
    ignore = "needs haproxy and redis-server: apt-get install nginx haproxy redis-server"
)]
fn haproxy_in_front_of_two_nodes_as_the_docs_show() {
    through("haproxy");
}
