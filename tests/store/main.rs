//! The vault in PostgreSQL, through the binary, against a real PostgreSQL cluster started
//! for each test: every command on it, what the database holds (and does not), moving a
//! vault there and back, and several `tether serve` replicas — each with a home of its
//! own, as on separate machines — sharing one rotating grant.

#[path = "../support/mod.rs"]
mod support;

mod replicas;
mod store_commands;

use std::process::Command;

use support::Home;
use support::postgres::Postgres;

/// One machine's tether on the shared store: a home of its own (its key file, refresh
/// locks and logs) and the store's address in `TETHER_STORE`.
pub struct Replica {
    pub home: Home,
    pub store: String,
}

impl Replica {
    /// The first replica: its home makes the vault key.
    pub fn first(store: &str) -> Self {
        Self {
            home: Home::new(),
            store: store.to_string(),
        }
    }

    /// Another machine given the first one's key (as an operator copies it).
    pub fn beside(first: &Replica) -> Self {
        let home = Home::new();
        std::fs::copy(
            first.home.path().join("vault.key"),
            home.path().join("vault.key"),
        )
        .expect("the first replica has made its key");
        Self {
            home,
            store: first.store.clone(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = self.home.cmd();
        cmd.env("TETHER_STORE", &self.store);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> support::Run {
        support::Run::of(self.cmd().args(args).output().expect("run tether"))
    }

    /// `tether add NAME` of an upstream that answers nothing, with API key `key`.
    pub fn add_keyed(&self, name: &str, key: &str) {
        support::Run::of(
            self.cmd()
                .args([
                    "add",
                    name,
                    "http://127.0.0.1:9/mcp",
                    "--api-key-env",
                    "KEYED",
                ])
                .env("KEYED", key)
                .output()
                .expect("run tether add"),
        )
        .ok();
    }

    pub fn login(&self, name: &str) -> support::Run {
        support::Run::of(
            self.cmd()
                .args(["login", name, "--timeout", "20"])
                .env("BROWSER", support::browser())
                .output()
                .expect("run tether login"),
        )
    }

    pub fn serve(&self) -> support::Serve {
        support::Serve::start_env(&self.home, &[("TETHER_STORE", &self.store)])
    }

    pub fn status(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.run(&["status", name, "--json"]).ok().stdout).unwrap()
    }

    /// The secret of `client`'s endpoint for connection `name`.
    pub fn secret(&self, name: &str, client: &str) -> String {
        support::secret_in(&self.run(&["url", name, "--client", client]).ok().stdout)
    }
}

/// A cluster and one database in it, or `None` when PostgreSQL is missing (skip).
pub fn database(name: &str) -> Option<(Postgres, String)> {
    let pg = Postgres::start()?;
    let url = pg.database(name);
    Some((pg, url))
}
