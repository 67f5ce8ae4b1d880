//! A throwaway PostgreSQL cluster for the store's tests: `initdb` into a temporary folder
//! (as an unprivileged user when the tests run as root, since PostgreSQL refuses root),
//! `pg_ctl` on a free loopback port, stopped and removed when dropped. Without PostgreSQL
//! the tests are skipped with the reason printed; under `CI=true` (where `.ci/run`
//! installs it) that is a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// The account the server runs as, when the tests run as root.
    user: Option<&'static str>,
    /// Server options beyond the defaults (TLS).
    extra: String,
}

/// The folder holding `initdb` and `pg_ctl`: on PATH, or Debian's versioned folder.
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists());
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        versions.sort();
        versions.pop()
    })
}

impl Postgres {
    /// A running cluster, or `None` (skip) when PostgreSQL is not installed.
    pub fn start() -> Option<Self> {
        Self::start_with(false).map(|(pg, _)| pg)
    }

    /// A running cluster that offers TLS with a certificate for `localhost`, and that
    /// certificate's PEM (the only authority that signs it).
    pub fn start_tls() -> Option<(Self, String)> {
        Self::start_with(true).map(|(pg, pem)| (pg, pem.expect("made with TLS")))
    }

    fn start_with(tls: bool) -> Option<(Self, Option<String>)> {
        let Some(bin) = bin_dir() else {
            let reason = "PostgreSQL is not installed (initdb, pg_ctl): apt-get install postgresql";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{reason} (.ci/run does this before cargo test)");
            }
            let _ = writeln!(std::io::stderr(), "skipped: {reason}");
            return None;
        };
        let user = is_root().then_some("nobody");
        let dir = tempfile::Builder::new()
            .prefix("tether-pg-")
            .tempdir()
            .expect("temp dir");
        if let Some(user) = user {
            run(Command::new("chown").args([user, &dir.path().display().to_string()]));
        }
        let mut pg = Self {
            port: super::free_port(),
            bin,
            dir,
            user,
            extra: String::new(),
        };
        pg.as_server("initdb")
            .args([
                "-D",
                &pg.data(),
                "-A",
                "trust",
                "-U",
                "tether",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .output()
            .map(|out| check(out, "initdb"))
            .expect("run initdb");
        let pem = tls.then(|| pg.certificate());
        pg.start_server();
        Some((pg, pem))
    }

    /// Writes a self-signed certificate for `localhost` and its key beside the data (the
    /// key private to the server's account, as PostgreSQL insists) and turns TLS on.
    fn certificate(&mut self) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let crt = self.dir.path().join("server.crt");
        let pem_key = self.dir.path().join("server.key");
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&pem_key, key.serialize_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pem_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some(user) = self.user {
            for file in [&crt, &pem_key] {
                run(Command::new("chown").args([user, &file.display().to_string()]));
            }
        }
        self.extra = format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            crt.display(),
            pem_key.display()
        );
        cert.pem()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn as_server(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        match self.user {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(path);
                cmd
            }
            None => Command::new(path),
        }
    }

    /// Starts (or starts again) the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300{}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let out = self
            .as_server("pg_ctl")
            .args([
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ])
            .output()
            .expect("run pg_ctl");
        if !out.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Stops the server at once (clients see their sessions end).
    pub fn stop_server(&self) {
        let _ = self
            .as_server("pg_ctl")
            .args(["-D", &self.data(), "-m", "fast", "-w", "stop"])
            .output();
    }

    /// A new database, and the store address of it.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://tether@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Runs `sql` in database `db`; its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .client("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        String::from_utf8_lossy(&check(out, "psql").stdout).into_owned()
    }

    /// `pg_dump` of database `db`: everything it holds, as text.
    pub fn dump(&self, db: &str) -> Vec<u8> {
        let out = self
            .client("pg_dump")
            .arg(db)
            .output()
            .expect("run pg_dump");
        check(out, "pg_dump").stdout
    }

    /// A client tool (beside the server's, else on PATH) connected to this cluster.
    fn client(&self, tool: &str) -> Command {
        let beside = self.bin.join(tool);
        let mut cmd = Command::new(if beside.exists() {
            beside
        } else {
            PathBuf::from(tool)
        });
        let port = self.port.to_string();
        cmd.args(["-h", "127.0.0.1", "-p", &port, "-U", "tether"]);
        cmd
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .as_server("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    check(out, "command");
}

#[track_caller]
fn check(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
