//! A single-member etcd started from `PATH` on free loopback ports, for
//! `hotreload fleet-bench` and the fleet tests: started, killed and
//! started again on the same data directory.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or killed) etcd.
#[derive(Debug)]
pub struct EtcdServer {
    child: Option<Child>,
    dir: PathBuf,
    client: u16,
    peer: u16,
    /// Remove `dir` when dropped.
    owned: bool,
    /// Served over TLS, checking clients' certificates.
    tls: bool,
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// A new directory name under the system's temporary one.
fn temporary(stem: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("{stem}-{}-{nanos}", std::process::id()))
}

/// A program on `PATH`, or `None`.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// The `etcd` program on `PATH`.
pub fn etcd_program() -> Option<PathBuf> {
    which("etcd")
}

impl EtcdServer {
    /// Starts etcd with its data in `dir` (created), on two free ports.
    ///
    /// # Errors
    /// No `etcd` on `PATH`, or it did not become healthy within 20 s.
    pub fn start(dir: &Path) -> Result<EtcdServer, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut server = EtcdServer {
            child: None,
            dir: dir.to_owned(),
            client: free_port()?,
            peer: free_port()?,
            owned: false,
            tls: false,
        };
        server.restart()?;
        Ok(server)
    }

    /// As [`EtcdServer::start_temporary`], served over TLS with client
    /// certificates checked: a CA, etcd's certificate (for 127.0.0.1) and a
    /// client's, made with `openssl` in its directory ([`EtcdServer::ca`],
    /// [`EtcdServer::client_cert`], [`EtcdServer::client_key`]).
    ///
    /// # Errors
    /// No `openssl`, and as [`EtcdServer::start`].
    pub fn start_tls_temporary() -> Result<EtcdServer, String> {
        let dir = temporary("hotreload-etcd-tls");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ssl = |args: &str| openssl(&dir, &args.split(' ').collect::<Vec<_>>());
        ssl(
            "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=hotreload-test-ca",
        )?;
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")
            .map_err(|e| e.to_string())?;
        for who in ["server", "client"] {
            ssl(&format!(
                "req -newkey rsa:2048 -nodes -keyout {who}.key -out {who}.csr -subj /CN={who}"
            ))?;
            ssl(&format!(
                "x509 -req -in {who}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {who}.pem \
                 -days 2 -extfile {who}.ext"
            ))?;
        }
        let mut server = EtcdServer {
            child: None,
            dir,
            client: free_port()?,
            peer: free_port()?,
            owned: true,
            tls: true,
        };
        server.restart()?;
        Ok(server)
    }

    /// The CA that signed etcd's and the client's certificates (TLS only).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A client certificate etcd accepts (TLS only).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    /// Its private key (TLS only).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// As [`EtcdServer::start`], in a new directory under the system's
    /// temporary one, removed when the server is dropped.
    ///
    /// # Errors
    /// As [`EtcdServer::start`].
    pub fn start_temporary() -> Result<EtcdServer, String> {
        let mut server = EtcdServer::start(&temporary("hotreload-etcd"))?;
        server.owned = true;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT` (`https://` over TLS), for clients.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client)
    }

    /// Starts it again (after [`EtcdServer::kill`]) on the same data and
    /// ports, and waits until it is healthy.
    ///
    /// # Errors
    /// As [`EtcdServer::start`].
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let program = etcd_program().ok_or("no `etcd` on PATH (Debian's etcd-server)")?;
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let log = std::fs::File::create(self.dir.join("etcd.log"))
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let mut cmd = Command::new(program);
        if self.tls {
            cmd.args(["--cert-file", "server.pem", "--key-file", "server.key"])
                .args(["--client-cert-auth", "--trusted-ca-file", "ca.pem"]);
        }
        let child = cmd
            .current_dir(&self.dir)
            .args(["--name", "hotreload-test"])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("hotreload-test={peer}")])
            .args(["--logger", "zap", "--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start etcd: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.healthy() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
                return Err(format!("etcd exited ({status}): {log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("etcd did not become healthy within 20 s".into())
    }

    /// `GET /health` says `true` (over TLS: etcd logged that it serves).
    fn healthy(&self) -> bool {
        if self.tls {
            return std::fs::read_to_string(self.dir.join("etcd.log"))
                .is_ok_and(|l| l.contains("serving client traffic securely"));
        }
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.client)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// SIGKILLs it (its data stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
