//! The processes the bench measures, each pinned with `taskset`: the upstream (this bench
//! binary in its upstream role), nginx with a generated keep-alive, unbuffered config, and
//! `tether serve` with a `--no-auth` connection and one client secret, each in a
//! throwaway folder. Every one is stopped when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Pins this process (before it starts any thread) to `cpu`.
pub fn pin_self(cpu: usize) -> Result<(), String> {
    let status = Command::new("taskset")
        .args([
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("taskset exited with {status}"))
}

/// `program` on `cpu` (or unpinned where the machine has one core).
fn pinned(cpu: Option<usize>, program: &Path) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A child process, sent SIGTERM (so nginx's master takes its worker along) and reaped
/// when dropped.
pub struct Process {
    child: Child,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// This process and its direct children (nginx's worker), for memory figures.
    pub fn pids(&self) -> Vec<u32> {
        let pid = self.pid();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        std::iter::once(pid)
            .chain(children.split_whitespace().filter_map(|p| p.parse().ok()))
            .collect()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a set of processes, from `/proc/PID/status`, in bytes.
#[derive(Clone, Copy, Default)]
pub struct Memory {
    /// VmRSS: resident now.
    pub rss: u64,
    /// VmHWM: the most ever resident.
    pub peak: u64,
}

pub fn memory(pids: &[u32]) -> Memory {
    let mut total = Memory::default();
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024)
        };
        total.rss += field("VmRSS:");
        total.peak += field("VmHWM:");
    }
    total
}

/// CPU time (user + system) a set of processes has used so far.
pub fn cpu_time(pids: &[u32]) -> Duration {
    // Clock ticks per second: 100 on every Linux this runs on (USER_HZ).
    const TICK: Duration = Duration::from_millis(10);
    let ticks: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace()
                .collect();
            // utime and stime are fields 14 and 15 of the whole line.
            let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
            field(11).unwrap_or(0) + field(12).unwrap_or(0)
        })
        .sum();
    TICK * ticks as u32
}

pub struct Upstream {
    /// Held open: the upstream exits when this is dropped.
    process: Process,
    pub addr: SocketAddr,
}

impl Upstream {
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// This bench binary again, as the upstream; it prints its address, then serves until
/// its standard input (held by `process`) closes.
pub fn upstream(cpu: Option<usize>) -> Upstream {
    role(cpu, crate::upstream::ROLE, &[])
}

/// The floor proxy (hyper alone, see `floor.rs`), in front of `upstream`.
pub fn floor(cpu: Option<usize>, upstream: SocketAddr) -> Upstream {
    role(
        cpu,
        crate::floor::ROLE,
        &[(crate::floor::UPSTREAM_ENV, upstream.to_string())],
    )
}

/// This bench binary in another role, with `env`, at the address it prints.
fn role(cpu: Option<usize>, role: &str, env: &[(&str, String)]) -> Upstream {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut child = pinned(cpu, &exe)
        .env(crate::upstream::ROLE_ENV, role)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start the bench's {role}: {e}"));
    let addr = first_line(&mut child)
        .parse()
        .unwrap_or_else(|e| panic!("the {role}'s address: {e}"));
    Upstream {
        process: Process { child },
        addr,
    }
}

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the first line");
    line.trim().to_string()
}

pub struct Nginx {
    pub process: Process,
    pub addr: SocketAddr,
    pub version: String,
    _dir: tempfile::TempDir,
}

/// nginx as the reference proxy, or why it cannot run (not installed, failed to start).
pub fn nginx(cpu: Option<usize>, upstream: SocketAddr) -> Result<Nginx, String> {
    let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("nginx is not installed (apt-get install nginx)")?;
    let version = Command::new(&binary)
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default();
    let version = version
        .strip_prefix("nginx version: ")
        .unwrap_or(&version)
        .to_string();
    let dir = tempfile::Builder::new()
        .prefix("tether-bench-nginx-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let addr = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::File::create(&conf)
        .and_then(|mut f| f.write_all(nginx_conf(dir.path(), addr, upstream).as_bytes()))
        .map_err(|e| e.to_string())?;
    let log = dir.path().join("error.log");
    let child = pinned(cpu, &binary)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let process = Process { child };
    if !accepts(addr, Duration::from_secs(5)) {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(format!("nginx did not start: {}", log.trim()));
    }
    Ok(Nginx {
        process,
        addr,
        version,
        _dir: dir,
    })
}

/// nginx at its best as an MCP proxy: one worker (it has one core), keep-alive to the
/// upstream and to clients without a request cap, no response buffering, no access log
/// (tether logs no line per request either).
fn nginx_conf(dir: &Path, listen: SocketAddr, upstream: SocketAddr) -> String {
    let d = dir.display();
    format!(
        r#"worker_processes 1;
daemon off;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 10000000;
    upstream mcp {{
        server {upstream};
        keepalive 128;
        keepalive_requests 10000000;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://mcp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"#
    )
}

pub struct Tether {
    pub process: Process,
    pub addr: SocketAddr,
    /// `/s/<secret>/mcp`.
    pub path: String,
    _home: tempfile::TempDir,
}

/// `tether serve` in a fresh home, with connection `bench` (no auth) to the upstream and
/// the client secret of `bench-client`. `TETHER_BENCH_BIN` measures another build instead
/// (to compare before and after a change).
///
/// `capture` sets its `[calls] capture` (`TETHER_CALLS_CAPTURE`); `None` leaves the
/// environment's, `metadata` when unset.
pub fn tether(cpu: Option<usize>, upstream: SocketAddr, capture: Option<&str>) -> Tether {
    let binary = std::env::var_os("TETHER_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_tether")),
        PathBuf::from,
    );
    let binary = binary.as_path();
    let home = tempfile::Builder::new()
        .prefix("tether-bench-")
        .tempdir()
        .expect("tether home");
    let command = |cpu: Option<usize>| {
        let mut c = pinned(cpu, binary);
        c.env("TETHER_HOME", home.path())
            .env("TETHER_KEY_SOURCE", "file")
            .env_remove("TETHER_VAULT_KEY")
            .env_remove("TETHER_BIND")
            .env_remove("RUST_LOG");
        if let Some(capture) = capture {
            c.env("TETHER_CALLS_CAPTURE", capture);
        }
        c
    };
    let run = |args: &[&str]| {
        let out = command(None).args(args).output().expect("run tether");
        assert!(
            out.status.success(),
            "tether {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mcp = format!("http://{upstream}/mcp");
    run(&["add", "bench", &mcp, "--no-auth"]);
    let url = run(&["url", "bench", "--client", "bench-client"]);
    let secret_url = url
        .lines()
        .nth(1)
        .expect("tether url prints the URL on line 2");
    let path = format!(
        "/s/{}",
        secret_url.trim().rsplit("/s/").next().unwrap_or("")
    );
    let log = std::fs::File::create(home.path().join("serve.log")).expect("serve log");
    let mut child = command(cpu)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start tether serve");
    let line = first_line(&mut child);
    let addr = line
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("tether serve printed {line:?}"));
    Tether {
        process: Process { child },
        addr,
        path,
        _home: home,
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn accepts(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
