//! A real `redis-server` for the tests, and a proxy that delays its replies. Plain
//! TCP and processes: no Redis client library.

mod cluster;
mod delay_proxy;

pub use cluster::RedisCluster;
pub use delay_proxy::DelayProxy;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// A running `redis-server`: started on a free loopback port in a temporary
/// directory, stopped (and its directory removed) on drop.
///
/// When `redis-server` is not installed, [`start`](Self::start) says so and gives
/// `None`, for the test to skip, unless `HOOKWISE_REQUIRE_REDIS=1` (set by CI),
/// where a missing server fails the test.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    dir: PathBuf,
    persistent: bool,
    /// Arguments beyond the defaults (a cluster node's).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server without persistence; `None` (after saying so) when
    /// `redis-server` is not installed and CI did not require it.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, false, &[])
    }

    /// Starts a server with append-only persistence, so a restart keeps the data.
    pub fn start_persistent(test: &str) -> Option<Self> {
        Self::start_with(test, true, &[])
    }

    fn start_with(test: &str, persistent: bool, extra: &[&str]) -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("HOOKWISE_REQUIRE_REDIS").as_deref() != Ok("1"),
                "redis-server is not installed, and HOOKWISE_REQUIRE_REDIS=1 requires it"
            );
            eprintln!(
                "SKIPPED {test}: redis-server is not installed (apt-get install redis-server)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir =
            std::env::temp_dir().join(format!("hookwise-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = Self {
            child: None,
            port,
            dir,
            persistent,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let appendonly = if self.persistent { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start within 10 s"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// The URL to connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Runs one command with `redis-cli` and returns its raw output, trimmed: for
    /// looking at what the code under test left in Redis without a client library
    /// of the tests' own.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("run redis-cli (it comes with redis-server)");
        assert!(output.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Stops the server (SIGKILL: no chance to save anything more).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
