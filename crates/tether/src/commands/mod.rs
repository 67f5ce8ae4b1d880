//! Each subcommand is a thin script over the library. This module dispatches, opens the
//! vault the same way for all of them, and turns failures into one line and an exit code:
//! 2 for bad input (the message names the value and the fix), 1 for everything else.

mod auth;
mod clients;
mod connections;
mod endpoints;
mod import;

use std::fmt;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use tether_core::config::Config;
use tether_core::paths::Paths;
use tether_core::vault::Vault;

/// Input the user can fix; exits with status 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(message.into()))
}

pub fn run(cli: Cli) -> ExitCode {
    let theme = cli.theme;
    let Some(command) = cli.command else {
        return finish(runtime().and_then(|rt| rt.block_on(crate::front::run_tui(theme))));
    };
    if command.prints_and_exits() {
        exit_quietly_on_closed_pipe();
    }
    let result = match command {
        Command::Add(args) => connections::add(args),
        Command::List { json } => connections::list(json),
        Command::Status { name, json } => connections::status(&name, json),
        Command::Remove { name } => connections::remove(&name),
        Command::Sim(args) => runtime()
            .and_then(|rt| rt.block_on(tether_sim::run_cli(args, crate::shutdown::signal()))),
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(crate::demo::run(args, theme))),
        Command::Login(args) => runtime().and_then(|rt| rt.block_on(auth::login(args))),
        Command::Refresh { name } => runtime().and_then(|rt| rt.block_on(auth::refresh(&name))),
        Command::Serve { bind } => runtime().and_then(|rt| rt.block_on(crate::serve::run(bind))),
        Command::Url { name, client } => {
            runtime().and_then(|rt| rt.block_on(endpoints::url(&name, &client)))
        }
        Command::Doctor { name, json } => {
            runtime().and_then(|rt| rt.block_on(endpoints::doctor(name.as_deref(), json)))
        }
        Command::Stdio { name, client } => {
            runtime().and_then(|rt| rt.block_on(crate::stdio::run(&name, &client)))
        }
        Command::Import(crate::cli::ImportSource::McpRemote(args)) => {
            runtime().and_then(|rt| rt.block_on(import::mcp_remote(args)))
        }
        Command::Revoke { name, client } => {
            runtime().and_then(|rt| rt.block_on(endpoints::revoke(&name, &client)))
        }
        Command::Config(args) => runtime().and_then(|rt| rt.block_on(clients::config(args))),
        Command::Clients { json } => clients::clients(json),
        Command::Orphans { name, delete, json } => {
            runtime().and_then(|rt| rt.block_on(auth::orphans(name.as_deref(), delete, json)))
        }
    };
    finish(result)
}

/// A command whose output is piped into `head` or a pager must stop quietly when the
/// reader goes away, as `ls` and `cat` do. Rust ignores SIGPIPE, which turns every later
/// `println!` into a panic with a backtrace; the default action ends the process silently.
/// Only for commands that print and exit: a long-running proxy must never be killed
/// because whoever started it closed its stderr.
fn exit_quietly_on_closed_pipe() {
    // SAFETY: restoring a signal's default disposition at start-up, before any other
    // thread exists; no handler code runs.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tether_core::say_err!("tether: {e:#}");
            if is_bad_input(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn is_bad_input(e: &anyhow::Error) -> bool {
    use tether_sim::SimError;
    e.downcast_ref::<BadInput>().is_some()
        || matches!(
            e.downcast_ref::<tether_core::access::AccessError>(),
            Some(
                tether_core::access::AccessError::BadLabel(_)
                    | tether_core::access::AccessError::NotFound(_)
                    | tether_core::access::AccessError::NoSuchClient { .. }
            )
        )
        || matches!(
            e.downcast_ref::<crate::demo::DemoError>(),
            Some(crate::demo::DemoError::BadTimeScale(_))
        )
        || e.downcast_ref::<SimError>()
            .is_some_and(|e| !matches!(e, SimError::Bind { .. }))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Opens the vault as every command does, printing the key-fallback warning once.
pub fn open_vault() -> anyhow::Result<Vault> {
    let vault = open_vault_quietly()?;
    if let Some(warning) = vault.key_source().fallback_warning() {
        tether_core::say_err!("tether: warning: {warning}");
    }
    Ok(vault)
}

/// Opens the vault without printing: the TUI shows the key warning in its header.
pub fn open_vault_quietly() -> anyhow::Result<Vault> {
    let paths = Paths::discover()?;
    let config = Config::load(&paths)?;
    Ok(Vault::open(&paths, &config)?)
}
