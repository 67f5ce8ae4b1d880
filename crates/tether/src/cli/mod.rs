//! Each subcommand is a thin script over the library. This module dispatches, opens the
//! vault the same way for all of them, and turns failures into one line and an exit code:
//! 2 for bad input (the message names the value and the fix), 1 for everything else.

mod args;
mod auth;
mod calls;
mod clients;
mod connections;
mod endpoints;
mod import;
mod reference;
mod store;

use std::process::ExitCode;

use crate::errors::{BadInput, UserInput};
pub use args::*;

pub fn run(cli: Cli) -> ExitCode {
    if cli.command.as_ref().is_some_and(Command::prints_and_exits) {
        exit_quietly_on_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return finish(Err(e.into())),
    };
    finish(runtime.block_on(dispatch(cli)))
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let theme = cli.theme;
    crate::runtime::choose_store(cli.store);
    let Some(command) = cli.command else {
        return crate::interactive::run_tui(theme).await;
    };
    match command {
        Command::Add(args) => connections::add(args).await,
        Command::List { json } => connections::list(json),
        Command::Status { name, json } => connections::status(&name, json),
        Command::Remove { name } => connections::remove(&name).await,
        Command::Rename { name, new_name } => connections::rename(&name, &new_name).await,
        Command::Sim(args) => tether_sim::run_cli(args, crate::shutdown::signal()).await,
        Command::Demo(args) => crate::demo::run(args, theme).await,
        Command::Login(args) => auth::login(args).await,
        Command::Refresh { name } => auth::refresh(&name).await,
        Command::Serve { bind, service } => crate::serve::run(bind, service).await,
        Command::Service(command) => crate::service::run(command).await,
        Command::Store(StoreCommand::Migrate { to }) => store::migrate(&to).await,
        Command::Url { name, client } => endpoints::url(&name, &client).await,
        Command::Doctor { name, json } => endpoints::doctor(name.as_deref(), json).await,
        Command::Stdio { name, client } => crate::stdio::run(&name, &client).await,
        Command::Import(source) => import::run(source).await,
        Command::Calls(args) => calls::calls(args).await,
        Command::Revoke { name, client } => endpoints::revoke(&name, &client).await,
        Command::Config(args) => clients::config(args).await,
        Command::Clients { json } => clients::clients(json),
        Command::Orphans { name, delete, json } => {
            auth::orphans(name.as_deref(), delete, json).await
        }
        Command::Completions { shell } => reference::completions(shell),
        Command::Man => reference::man(),
    }
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

/// The exit code for a command's result, after printing the error.
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tether_core::say_err!("tether: {e:#}");
            if is_user_input(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn is_user_input(e: &anyhow::Error) -> bool {
    fn asks<E>(e: &anyhow::Error) -> bool
    where
        E: UserInput + std::fmt::Display + std::fmt::Debug + Send + Sync + 'static,
    {
        e.downcast_ref::<E>().is_some_and(UserInput::is_user_input)
    }
    e.downcast_ref::<BadInput>().is_some()
        || asks::<tether_core::access::AccessError>(e)
        || asks::<tether_core::connections::ConnectionError>(e)
        || asks::<tether_sim::SimError>(e)
        || asks::<crate::demo::DemoError>(e)
        || asks::<crate::runtime::ServeError>(e)
}
