//! A server process a test runs itself, to stop and start it again.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::PATIENCE;

/// A server started from `program` with `args`, listening on `port`.
pub struct ServerProcess {
    program: PathBuf,
    args: Vec<String>,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    run_as: Option<(u32, u32)>,
    stop_signal: nix::sys::signal::Signal,
}

impl ServerProcess {
    /// Starts it and waits until its port answers.
    pub fn start(program: impl Into<PathBuf>, args: Vec<String>, port: u16, log: PathBuf) -> Self {
        let mut server = ServerProcess {
            program: program.into(),
            args,
            port,
            log,
            child: None,
            run_as: None,
            stop_signal: nix::sys::signal::Signal::SIGTERM,
        };
        server.spawn();
        server
    }

    /// Starts it as user `uid`, group `gid`.
    pub fn start_as(
        program: impl Into<PathBuf>,
        args: Vec<String>,
        port: u16,
        log: PathBuf,
        run_as: Option<(u32, u32)>,
    ) -> Self {
        let mut server = ServerProcess {
            program: program.into(),
            args,
            port,
            log,
            child: None,
            run_as,
            stop_signal: nix::sys::signal::Signal::SIGTERM,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = Command::new(&self.program);
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt as _;
            command.uid(uid).gid(gid);
        }
        let child = command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {} (log: {})",
                self.program.display(),
                self.port,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it with `signal` from now on (SIGTERM by default).
    pub fn with_stop_signal(mut self, signal: nix::sys::signal::Signal) -> Self {
        self.stop_signal = signal;
        self
    }

    /// Stops it gracefully (its stop signal) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, self.stop_signal);
            let deadline = Instant::now() + PATIENCE;
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // The port is free once the server is gone.
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it and starts it again with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fresh directory under the target directory's temp space.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faas-test-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The user PostgreSQL runs as: `postgres` when the tests run as root
/// (PostgreSQL refuses root), else the current user.
pub fn postgres_user() -> Option<(u32, u32)> {
    if !nix::unistd::Uid::effective().is_root() {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a postgres user")
    };
    Some((id("-u"), id("-g")))
}

/// A private PostgreSQL on `port` with its cluster in `dir` (made with
/// initdb: superuser `faas`, trust on loopback), from the programs in
/// `$FAAS_POSTGRES_BIN`.
pub fn postgres_server(dir: &std::path::Path, port: u16) -> ServerProcess {
    let bin = PathBuf::from(super::server_env(
        "FAAS_POSTGRES_BIN",
        "PostgreSQL installation",
    ));
    let run_as = postgres_user();
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
        std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
    }
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "faas", "--auth=trust", "--no-sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((uid, gid)) = run_as {
        use std::os::unix::process::CommandExt as _;
        initdb.uid(uid).gid(gid);
    }
    assert!(initdb.status().unwrap().success(), "initdb failed");
    ServerProcess::start_as(
        bin.join("postgres"),
        vec![
            "-D".into(),
            data.display().to_string(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-c".into(),
            "unix_socket_directories=".into(),
            "-c".into(),
            "fsync=off".into(),
        ],
        port,
        dir.join("postgres.log"),
        run_as,
    )
    // SIGINT is PostgreSQL's fast shutdown: it closes client sessions
    // (SIGTERM would wait for every client to leave).
    .with_stop_signal(nix::sys::signal::Signal::SIGINT)
}
