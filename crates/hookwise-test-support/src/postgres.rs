//! A real, throwaway Postgres server for the tests: `initdb` and `pg_ctl` on a
//! free loopback port, in a temporary directory, as an unprivileged user.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

/// A running Postgres cluster of its own: started on a free loopback port in a
/// temporary directory (trust authentication, user `postgres`), stopped and
/// removed on drop.
///
/// When Postgres is not installed, [`start`](Self::start) says so and gives `None`,
/// for the test to skip, unless `HOOKWISE_REQUIRE_POSTGRES=1` (set by CI), where a
/// missing server fails the test. Run as root, the server runs as the `postgres`
/// user (`runuser`), since Postgres refuses to run as root.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    as_postgres: bool,
}

impl PgServer {
    /// Starts a fresh cluster and waits until it accepts connections.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = find_bin() else {
            assert!(
                std::env::var("HOOKWISE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "Postgres is not installed, and HOOKWISE_REQUIRE_POSTGRES=1 requires it"
            );
            eprintln!("SKIPPED {test}: Postgres is not installed (apt-get install postgresql)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!("hookwise-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(owned.success(), "chown the Postgres directory");
        }
        let server = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server.start_server();
        Some(server)
    }

    /// The URL to connect to.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `psql`'s unaligned, tuples-only answer to `sql` (rows on lines, columns split
    /// by `|`), trimmed: for looking at what the code under test wrote, without a
    /// client library of the tests' own.
    pub fn psql(&self, sql: &str) -> String {
        let output = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-tAc", sql])
            .output()
            .expect("run psql (it comes with Postgres)");
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Stops the server at once (`immediate`: like a crash, no checkpoint).
    pub fn stop(&self) {
        self.run_status(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Starts it again on the same port and data, after [`stop`](Self::stop).
    /// `HOOKWISE_PG_OPTIONS`, when set, is added to the server's options, e.g.
    /// `-c shared_preload_libraries=pg_stat_statements` for a benchmark's
    /// statement profile (`crates/hookwise-bench/scripts/pg-statements.sh`).
    pub fn start_server(&self) {
        let extra = std::env::var("HOOKWISE_PG_OPTIONS").unwrap_or_default();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off {extra}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        );
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args);
            command
        } else {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program, args)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn run_status(&self, program: &str, args: &[&str]) -> bool {
        self.command(program, args)
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory of `initdb` and `pg_ctl`: on the `PATH`, or Debian's
/// `/usr/lib/postgresql/<version>/bin`.
fn find_bin() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
                return Some(dir);
            }
        }
    }
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(debian)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
