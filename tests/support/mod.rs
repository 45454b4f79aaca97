//! Running an example binary as a real server: start it, find its address, stop it
//! with SIGTERM, and collect what it printed.
#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError, mpsc},
    thread,
    time::{Duration, Instant},
};

/// The compiled example `name` (`cargo test` builds examples next to the tests).
pub fn example_binary(name: &str) -> PathBuf {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop(); // the test binary
    if path.ends_with("deps") {
        path.pop();
    }
    let binary = path.join("examples").join(name);
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test`, which builds the examples",
        binary.display()
    );
    binary
}

/// A running example server.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
    /// Every line printed on stdout so far, read as it comes.
    stdout: Arc<Mutex<Vec<String>>>,
    stdout_reader: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Starts example `name` on a free loopback port with `env`, and waits until it
    /// logs `listening addr=...` on stderr.
    pub fn start(name: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(example_binary(name))
            .envs(env.iter().copied())
            .env("HOOKWISE_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines, stderr_lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let printed = stdout.clone();
        let out = child.stdout.take().expect("piped stdout");
        let stdout_reader = thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                printed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr_lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{name} did not log its address within 30 s"));
            if let Some(addr) = line.split("addr=").nth(1) {
                let addr = addr.split_whitespace().next().unwrap_or_default();
                break addr.parse().expect("a socket address after addr=");
            }
        };
        Self {
            child,
            addr,
            stderr: stderr_lines,
            stdout,
            stdout_reader: Some(stdout_reader),
        }
    }

    /// The lines printed on stdout so far.
    pub fn printed(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends SIGTERM and waits (up to 30 s) for the exit; returns the status and
    /// everything printed on stdout.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the example did not exit within 30 s of SIGTERM"
            );
            thread::sleep(Duration::from_millis(20));
        };
        (status, self.all_printed())
    }

    /// Kills the process with SIGKILL, as a crash or an out-of-memory kill would:
    /// nothing is finished or released. Returns what it had printed.
    pub fn kill_9(mut self) -> String {
        self.signal("-KILL");
        let _ = self.child.wait();
        self.all_printed()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {signal} {pid} failed");
    }

    /// Everything printed on stdout, once the process has exited.
    fn all_printed(&mut self) -> String {
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
        let mut stdout = self.printed().join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        stdout
    }

    /// The stderr lines logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs example `name` with `env` to completion and returns its exit code and stderr.
pub fn run_to_exit(name: &str, env: &[(&str, &str)], removed: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(example_binary(name));
    command.envs(env.iter().copied()).env("NO_COLOR", "1");
    for name in removed {
        command.env_remove(name);
    }
    let output = command.output().expect("run the example");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
