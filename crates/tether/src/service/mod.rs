//! `tether service`: tether as a per-user background service that starts at login, is
//! restarted when it dies or hangs, and that `tether url`, `tether config` and the TUI find.
//! systemd user units on Linux (`systemd.rs`), launch agents on macOS (`launchd.rs`); on
//! Windows, Task Scheduler is described in docs/guide.md, not built.

mod launchd;
pub mod notify;
pub mod systemd;
mod unit;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::Utc;

use crate::errors::bad_input;
use tether_core::paths::Paths;
use tether_core::printable::printable;
use tether_core::say;
use unit::{OnDisk, Spec};

/// `tether service …`.
#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// Write the service definition and, where the service manager runs, enable and start it.
    Install {
        /// Address the service listens on (default from config.toml, else 127.0.0.1:7878).
        #[arg(long, value_name = "ADDR")]
        bind: Option<std::net::SocketAddr>,
        /// Replace a service definition that was edited by hand (a copy is kept).
        #[arg(long)]
        force: bool,
    },
    /// Stop the service and remove its definition.
    Uninstall {
        /// Remove a service definition that was edited by hand (a copy is kept).
        #[arg(long)]
        force: bool,
    },
    /// Installed, enabled, running: the pid, the address, uptime and version.
    Status,
    /// The service's log (the journal on Linux).
    Logs {
        /// Keep printing new lines as they come.
        #[arg(short, long)]
        follow: bool,
    },
    /// Restart the service (after installing a new tether binary, for instance).
    Restart,
}

/// The service managers tether can run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ManagerName {
    Systemd,
    Launchd,
}

impl ManagerName {
    pub fn as_str(self) -> &'static str {
        match self {
            ManagerName::Systemd => "systemd",
            ManagerName::Launchd => "launchd",
        }
    }

    /// This system's manager.
    fn here() -> anyhow::Result<Self> {
        if cfg!(target_os = "linux") {
            Ok(ManagerName::Systemd)
        } else if cfg!(target_os = "macos") {
            Ok(ManagerName::Launchd)
        } else {
            Err(bad_input(
                "tether runs as a service with systemd (Linux) and launchd (macOS); on Windows, \
                 create a Task Scheduler task that runs `tether serve` at logon (docs/guide.md)",
            ))
        }
    }

    fn path(self) -> anyhow::Result<std::path::PathBuf> {
        match self {
            ManagerName::Systemd => systemd::unit_path(),
            ManagerName::Launchd => launchd::plist_path(),
        }
    }

    fn on_disk(self, path: &Path) -> std::io::Result<OnDisk> {
        match self {
            ManagerName::Systemd => systemd::on_disk(path),
            ManagerName::Launchd => launchd::on_disk(path),
        }
    }

    fn render(self, spec: &Spec) -> anyhow::Result<String> {
        match self {
            ManagerName::Systemd => Ok(systemd::render(spec)),
            ManagerName::Launchd => {
                launchd::render(spec, &Paths::discover()?.log_dir().join("service.log"))
            }
        }
    }

    /// The command line the definition starts.
    fn program(self, text: &str) -> Option<Vec<String>> {
        match self {
            ManagerName::Systemd => systemd::exec_start(text),
            ManagerName::Launchd => launchd::program(text),
        }
    }

    /// Whether the manager runs for this user, so tether can ask it to act.
    fn answers(self) -> bool {
        match self {
            ManagerName::Systemd => systemd::manager_running(),
            ManagerName::Launchd => cfg!(target_os = "macos"),
        }
    }
}

pub async fn run(command: ServiceCommand) -> anyhow::Result<()> {
    let manager = ManagerName::here()?;
    match command {
        ServiceCommand::Install { bind, force } => install(manager, bind, force).await,
        ServiceCommand::Uninstall { force } => uninstall(manager, force),
        ServiceCommand::Status => status(manager).await,
        ServiceCommand::Logs { follow } => logs(manager, follow),
        ServiceCommand::Restart => restart(manager),
    }
}

async fn install(
    manager: ManagerName,
    bind: Option<std::net::SocketAddr>,
    force: bool,
) -> anyhow::Result<()> {
    let spec = Spec::here(bind)?;
    let path = manager.path()?;
    let text = manager.render(&spec)?;
    let shown = path.display();
    let changed = match manager.on_disk(&path)? {
        OnDisk::Ours(old) if old == text => {
            say!("The service is already installed as {shown}, unchanged.");
            false
        }
        OnDisk::Edited(_) if !force => {
            return Err(bad_input(format!(
                "{shown} was edited since tether wrote it, so tether leaves it as it is: run \
                 `tether service install --force` to replace it (your version is kept beside it)"
            )));
        }
        on_disk => {
            if let OnDisk::Edited(_) = on_disk {
                let copy = unit::keep_copy(&path)?;
                say!("Your edited version is kept as {}.", copy.display());
            }
            unit::write(&path, &text)?;
            let verb = if on_disk == OnDisk::Missing {
                "Wrote"
            } else {
                "Updated"
            };
            say!("{verb} {shown}: it starts {}.", spec.binary.display());
            true
        }
    };
    if spec.binary.components().any(|c| c.as_os_str() == "target") {
        tether_core::say_err!(
            "tether: warning: the service starts a build inside a source checkout, which a \
             rebuild or `cargo clean` replaces; `cargo install --locked --path crates/tether` \
             gives tether a stable place (then run `tether service install` again)"
        );
    }
    if !manager.answers() {
        say!("{}", manual_steps(manager, &path));
        return Ok(());
    }
    enable(manager, &path, changed)?;
    let vault = crate::runtime::open_vault_quietly()?;
    for _ in 0..50 {
        if let Some(r) = crate::serving::running(&vault).await {
            say!("tether serves http://{} (pid {}).", r.addr, r.pid);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    say!(
        "The service was started but does not serve yet: `tether service status` and `tether service logs` say why."
    );
    Ok(())
}

fn enable(manager: ManagerName, path: &Path, changed: bool) -> anyhow::Result<()> {
    match manager {
        ManagerName::Systemd => {
            systemd::run(&["daemon-reload"])?;
            systemd::run(&["enable", "--now", systemd::UNIT])?;
            if changed {
                systemd::run(&["restart", systemd::UNIT])?;
            }
            say!("Enabled: systemd starts tether at login and restarts it if it fails or hangs.");
        }
        ManagerName::Launchd => {
            let domain = launchd::domain();
            let _ = launchctl(&["bootout", &format!("{domain}/{}", launchd::LABEL)]);
            launchctl(&["bootstrap", &domain, &path.to_string_lossy()])?;
            say!("Loaded: launchd starts tether at login and again whenever it exits.");
        }
    }
    Ok(())
}

/// What to run by hand where the manager does not answer.
fn manual_steps(manager: ManagerName, path: &Path) -> String {
    match manager {
        ManagerName::Systemd => format!(
            "No systemd user manager answers here, so nothing was started. In a session where \
             one runs (a desktop login; on a server, after `loginctl enable-linger $USER`), run:\n  \
             systemctl --user daemon-reload\n  systemctl --user enable --now {}",
            systemd::UNIT
        ),
        ManagerName::Launchd => format!(
            "Load it with:\n  launchctl bootstrap {} {}",
            launchd::domain(),
            path.display()
        ),
    }
}

fn uninstall(manager: ManagerName, force: bool) -> anyhow::Result<()> {
    let path = manager.path()?;
    let shown = path.display();
    let on_disk = manager.on_disk(&path)?;
    match on_disk {
        OnDisk::Missing => {
            say!("tether is not installed as a service (there is no {shown}): nothing to do.");
            return Ok(());
        }
        OnDisk::Edited(_) if !force => {
            return Err(bad_input(format!(
                "{shown} was edited since tether wrote it, so tether leaves it: remove it \
                 yourself, or run `tether service uninstall --force` (a copy is kept beside it)"
            )));
        }
        _ => {}
    }
    if manager.answers() {
        match manager {
            ManagerName::Systemd => {
                if let Err(e) = systemd::run(&["disable", "--now", systemd::UNIT]) {
                    tether_core::say_err!("tether: warning: {e}");
                }
            }
            ManagerName::Launchd => {
                let target = format!("{}/{}", launchd::domain(), launchd::LABEL);
                let _ = launchctl(&["bootout", &target]);
            }
        }
    }
    if let OnDisk::Edited(_) = on_disk {
        let copy = unit::keep_copy(&path)?;
        say!("Your edited version is kept as {}.", copy.display());
    }
    std::fs::remove_file(&path)?;
    if manager == ManagerName::Systemd && manager.answers() {
        let _ = systemd::run(&["daemon-reload"]);
    }
    say!("Removed {shown}: tether no longer starts at login.");
    Ok(())
}

async fn status(manager: ManagerName) -> anyhow::Result<()> {
    let path = manager.path()?;
    let shown = path.display();
    let text = match manager.on_disk(&path)? {
        OnDisk::Missing => {
            say!("service: not installed (no {shown}); `tether service install` installs it");
            None
        }
        OnDisk::Ours(text) => {
            say!("service: installed as {shown}");
            Some(text)
        }
        OnDisk::Edited(text) => {
            say!("service: installed as {shown} (edited by hand since tether wrote it)");
            Some(text)
        }
    };
    if let Some(program) = text.as_deref().and_then(|t| manager.program(t)) {
        let binary = program.first().cloned().unwrap_or_default();
        let words = program
            .iter()
            .map(|w| printable(w, 200))
            .collect::<Vec<_>>();
        say!("starts:  {}", words.join(" "));
        if !Path::new(&binary).exists() {
            say!(
                "         {} no longer exists (moved or removed since install): run \
                 `tether service install` from the tether you want it to start",
                printable(&binary, 200)
            );
        }
    }
    if text.is_some() {
        say!("{}", manager_state(manager));
    }
    let vault = crate::runtime::open_vault_quietly()?;
    match crate::serving::running(&vault).await {
        Some(r) => {
            let up = tether_core::summary::duration((Utc::now() - r.started_at).num_seconds());
            let by = r
                .service
                .as_deref()
                .map_or(String::new(), |m| format!(", run by {m}"));
            say!(
                "serving: http://{} — pid {}, up {up}, version {}{by}",
                r.addr,
                r.pid,
                printable(&r.version, 40)
            );
            let ours = env!("CARGO_PKG_VERSION");
            if r.version != ours {
                say!(
                    "         this tether is version {ours}: `tether service restart` runs the new one"
                );
            }
        }
        None => say!("serving: nothing serves this vault right now"),
    }
    Ok(())
}

/// One line on what the manager says about the service.
fn manager_state(manager: ManagerName) -> String {
    if !manager.answers() {
        return match manager {
            ManagerName::Systemd => {
                "systemd: no user manager answers here, so the service is not running from it"
                    .to_string()
            }
            ManagerName::Launchd => "launchd: not available here".to_string(),
        };
    }
    match manager {
        ManagerName::Systemd => {
            let keys = [
                "UnitFileState",
                "ActiveState",
                "SubState",
                "MainPID",
                "NRestarts",
            ];
            match systemd::show(&keys) {
                Some(p) => {
                    let get = |k: &str| p.get(k).map_or("?", String::as_str).to_string();
                    format!(
                        "systemd: {}, {} ({}), pid {}, restarted {} time(s)",
                        get("UnitFileState"),
                        get("ActiveState"),
                        get("SubState"),
                        get("MainPID"),
                        get("NRestarts")
                    )
                }
                None => "systemd: does not know the unit (run `tether service install`)".into(),
            }
        }
        ManagerName::Launchd => {
            let target = format!("{}/{}", launchd::domain(), launchd::LABEL);
            match launchctl(&["print", &target]) {
                Ok(_) => "launchd: loaded".to_string(),
                Err(_) => "launchd: not loaded".to_string(),
            }
        }
    }
}

fn logs(manager: ManagerName, follow: bool) -> anyhow::Result<()> {
    let status = match manager {
        ManagerName::Systemd => {
            let mut journal = Command::new("journalctl");
            journal.args([
                "--user",
                "--unit",
                systemd::UNIT,
                "--no-pager",
                "--lines",
                "200",
            ]);
            if follow {
                journal.arg("--follow");
            }
            journal.status().map_err(|e| {
                anyhow::anyhow!("cannot run journalctl ({e}): the service logs to the journal")
            })?
        }
        ManagerName::Launchd => {
            let log = Paths::discover()?.log_dir().join("service.log");
            let mut tail = Command::new("tail");
            tail.args(["-n", "200"]);
            if follow {
                tail.arg("-f");
            }
            tail.arg(&log).status()?
        }
    };
    if !status.success() {
        anyhow::bail!("reading the service's log failed ({status})");
    }
    Ok(())
}

fn restart(manager: ManagerName) -> anyhow::Result<()> {
    if manager.on_disk(&manager.path()?)? == OnDisk::Missing {
        return Err(bad_input(
            "tether is not installed as a service: `tether service install` installs it",
        ));
    }
    if !manager.answers() {
        anyhow::bail!("{}", manual_steps(manager, &manager.path()?));
    }
    match manager {
        ManagerName::Systemd => {
            systemd::run(&["restart", systemd::UNIT])?;
        }
        ManagerName::Launchd => {
            let target = format!("{}/{}", launchd::domain(), launchd::LABEL);
            launchctl(&["kickstart", "-k", &target])?;
        }
    }
    say!("Restarted the service.");
    Ok(())
}

fn launchctl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("launchctl").args(args).output()?;
    if !out.status.success() {
        anyhow::bail!(
            "`launchctl {}` failed: {}",
            args.join(" "),
            printable(String::from_utf8_lossy(&out.stderr).trim(), 300)
        );
    }
    Ok(())
}
