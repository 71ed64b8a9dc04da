//! Nchan (Debian `nginx-light` with `libnginx-mod-nchan`) as a peer: started by the tool in a
//! fresh directory on a free loopback port, as one process (`master_process off`: the one
//! worker is the process measured, as roomcast runs one thread); stopped and the directory
//! removed. Subscribers open a WebSocket at `/sub/<channel>`; `POST /pub/<channel>` publishes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::procs::{ServerProc, ServerSpec, free_addr};

const PROGRAM: &str = "/usr/sbin/nginx";
const MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// A running Nchan, and its directory, removed once the server is stopped.
pub(crate) struct Nchan {
    pub(crate) server: ServerProc,
    pub(crate) dir: Dir,
}

/// Removes the directory when dropped (after the server, which is declared first).
pub(crate) struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts Nchan on a free port, as `label`; waits until it accepts.
pub(crate) async fn start(label: &'static str, connections: usize) -> Result<Nchan, String> {
    for path in [PROGRAM, MODULE] {
        if !Path::new(path).exists() {
            return Err(format!(
                "{path} not found: apt-get install nginx-light libnginx-mod-nchan to run Nchan \
                 as a peer"
            ));
        }
    }
    let addr: SocketAddr = free_addr()?;
    let dir = std::env::temp_dir().join(format!(
        "roomcast-bench-nchan-{}-{}",
        std::process::id(),
        addr.port()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = Dir(dir);
    let d = dir.0.display();
    let files = connections + 1000;
    let config = format!(
        "load_module {MODULE};\n\
         daemon off;\nmaster_process off;\nworker_processes 1;\n\
         worker_rlimit_nofile {files};\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections {files}; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         server {{\n    listen {addr};\n    \
         location ~ ^/sub/(\\w+)$ {{ nchan_subscriber; nchan_channel_id $1; }}\n    \
         location ~ ^/pub/(\\w+)$ {{ nchan_publisher; nchan_channel_id $1; }}\n  }}\n}}\n"
    );
    let path = dir.0.join("nginx.conf");
    std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = ServerSpec {
        label,
        program: PROGRAM.into(),
        args: vec![
            "-p".into(),
            dir.0.to_string_lossy().into_owned(),
            "-c".into(),
            path.to_string_lossy().into_owned(),
            "-e".into(),
            dir.0.join("error.log").to_string_lossy().into_owned(),
        ],
        env: Vec::new(),
        wrapper: Vec::new(),
    };
    let server = ServerProc::start(spec, addr).await?;
    Ok(Nchan { server, dir })
}
