//! A real nginx reverse proxy on a loopback port, with a generated configuration, in front of a
//! WebSocket server — with or without the headers that let the Upgrade through.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx; stopped (and its folder removed) when dropped.
pub struct Nginx {
    child: Child,
    prefix: PathBuf,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

/// Where nginx is installed, if it is.
pub fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

impl Nginx {
    /// Proxy `127.0.0.1:<port>/ws` to `upstream`. With `forward_upgrade` the config carries
    /// `proxy_http_version 1.1` and the `Upgrade`/`Connection` headers; without, it is the
    /// classic misconfiguration that breaks WebSockets.
    pub fn start(upstream: SocketAddr, forward_upgrade: bool) -> Result<Nginx, String> {
        let binary = binary().ok_or("nginx is not installed (apt-get install nginx-light)")?;
        let port = free_port();
        let prefix =
            std::env::temp_dir().join(format!("steadyws-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(prefix.join("logs")).map_err(|e| e.to_string())?;
        let upgrade = if forward_upgrade {
            "proxy_http_version 1.1;\n            proxy_set_header Upgrade $http_upgrade;\n            proxy_set_header Connection \"upgrade\";"
        } else {
            ""
        };
        let p = prefix.display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {p}/logs/error.log warn;\npid {p}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {p}/body;\n    proxy_temp_path {p}/proxy;\n\
                 fastcgi_temp_path {p}/fastcgi;\n    uwsgi_temp_path {p}/uwsgi;\n    scgi_temp_path {p}/scgi;\n\
                 server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            proxy_pass http://{upstream};\n            {upgrade}\n            proxy_read_timeout 60s;\n        }}\n    }}\n}}\n"
        );
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, config).map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let nginx = Nginx {
            child,
            prefix,
            port,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                let log = std::fs::read_to_string(nginx.prefix.join("logs/error.log"))
                    .unwrap_or_default();
                return Err(format!("nginx did not listen on {port} within 10 s: {log}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("bound").port()
}
