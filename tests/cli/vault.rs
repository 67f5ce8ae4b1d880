//! The vault under faults: wrong keys, damaged files, newer versions, concurrent writers
//! in separate processes, and writers killed with SIGKILL mid-transaction.
//!
//! Child processes are this test binary re-run with `--ignored --exact <helper>`, so
//! they exercise the library exactly as tether does.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use rand::RngExt;
use tether_core::config::{Config, KeySourceChoice};
use tether_core::paths::Paths;
use tether_core::secret::Secret;
use tether_core::vault::{
    Auth, Connection, Event, EventKind, Store, TokenSet, Vault, VaultError, parse_upstream,
};

use crate::support::{Home, contains, files_under, test_name};

fn config(source: KeySourceChoice) -> Config {
    let mut config = Config::default();
    config.vault.key_source = source;
    config
}

fn open(home: &Path) -> Result<Vault, VaultError> {
    Vault::open(
        &Paths::under(home.to_path_buf()),
        &config(KeySourceChoice::File),
    )
}

fn connection(name: &str) -> Connection {
    Connection::new(
        name.parse().unwrap(),
        parse_upstream("https://mcp.example.com/mcp").unwrap(),
        Auth::OAuth {
            scopes: vec![],
            discovery: None,
        },
        Utc::now(),
    )
}

fn add(vault: &Vault, name: &str) {
    vault
        .transact(|s: &mut Store| {
            s.push(connection(name));
            Ok::<_, VaultError>(())
        })
        .unwrap();
}

/// Whatever goes wrong on open, the file must be exactly as it was.
fn assert_refused_untouched(home: &Home, expect: impl Fn(&VaultError) -> bool) -> String {
    let before = std::fs::read(home.vault_file()).unwrap();
    let err = match open(home.path()) {
        Ok(vault) => {
            let load = vault.load().expect_err("load must fail");
            let tx = vault
                .transact(|s: &mut Store| {
                    s.connections_mut().clear();
                    Ok::<_, VaultError>(())
                })
                .expect_err("a transaction on a bad vault must fail");
            assert_eq!(load.to_string(), tx.to_string());
            load
        }
        Err(e) => e,
    };
    assert!(expect(&err), "unexpected error: {err}");
    let message = err.to_string();
    assert!(
        message.contains(&home.vault_file().display().to_string()),
        "the error must name the file: {message}"
    );
    assert_eq!(
        std::fs::read(home.vault_file()).unwrap(),
        before,
        "file changed"
    );
    message
}

#[test]
fn wrong_key_is_named_and_the_file_kept() {
    let home = Home::new();
    add(&open(home.path()).unwrap(), "linear");
    let key_file = home.path().join("vault.key");
    std::fs::remove_file(&key_file).unwrap();
    // A different key in the file: the vault was sealed with the old one.
    tether_core::vault::Vault::open(
        &Paths::under(home.path().join("other")),
        &config(KeySourceChoice::File),
    )
    .unwrap();
    std::fs::copy(home.path().join("other/vault.key"), &key_file).unwrap();
    let msg = assert_refused_untouched(&home, |e| matches!(e, VaultError::WrongKey { .. }));
    assert!(msg.contains("different key"), "{msg}");
}

#[test]
fn a_missing_key_for_an_existing_vault_is_never_replaced() {
    let home = Home::new();
    add(&open(home.path()).unwrap(), "linear");
    std::fs::remove_file(home.path().join("vault.key")).unwrap();
    assert_refused_untouched(&home, |e| {
        e.to_string()
            .contains("will not create a new key for an existing vault")
    });
    assert!(!home.path().join("vault.key").exists());
}

#[test]
fn truncated_file_is_refused() {
    let home = Home::new();
    add(&open(home.path()).unwrap(), "linear");
    let bytes = std::fs::read(home.vault_file()).unwrap();
    for len in [0, 5, 30, bytes.len() - 1] {
        std::fs::write(home.vault_file(), &bytes[..len]).unwrap();
        assert_refused_untouched(&home, |e| {
            matches!(
                e,
                VaultError::Truncated { .. } | VaultError::Tampered { .. }
            )
        });
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let home = Home::new();
    add(&open(home.path()).unwrap(), "linear");
    let bytes = std::fs::read(home.vault_file()).unwrap();
    // Header bytes, the nonce, ciphertext and tag: one of each region and a sample.
    for i in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        std::fs::write(home.vault_file(), &bad).unwrap();
        assert_refused_untouched(&home, |_| true);
    }
}

#[test]
fn a_newer_file_format_is_refused_as_newer() {
    let home = Home::new();
    add(&open(home.path()).unwrap(), "linear");
    let mut bytes = std::fs::read(home.vault_file()).unwrap();
    bytes[8] = 9; // format version, little endian
    std::fs::write(home.vault_file(), &bytes).unwrap();
    let msg = assert_refused_untouched(&home, |e| matches!(e, VaultError::FutureVersion { .. }));
    assert!(msg.contains("newer tether"), "{msg}");
}

#[test]
fn a_foreign_file_is_refused() {
    let home = Home::new();
    add(&open(home.path()).unwrap(), "linear");
    std::fs::write(home.vault_file(), b"{\"connections\": []}").unwrap();
    assert_refused_untouched(&home, |e| matches!(e, VaultError::NotAVault { .. }));
}

#[test]
fn the_cli_reports_damage_and_writes_nothing() {
    let home = Home::new();
    home.run(&["add", "linear", "https://mcp.linear.app/mcp"])
        .ok();
    let mut bytes = std::fs::read(home.vault_file()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(home.vault_file(), &bytes).unwrap();
    let out = home.run(&["add", "other", "https://e.example/mcp"]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains("failed its integrity check"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("vault.tether"), "{}", out.stderr);
    assert_eq!(std::fs::read(home.vault_file()).unwrap(), bytes);
}

#[test]
fn a_failed_change_writes_nothing() {
    let home = Home::new();
    let vault = open(home.path()).unwrap();
    add(&vault, "linear");
    let before = std::fs::read(home.vault_file()).unwrap();
    let result = vault.transact(|s: &mut Store| {
        s.connections_mut().clear();
        Err::<(), _>(VaultError::Task("refused".into()))
    });
    assert!(result.is_err());
    assert_eq!(std::fs::read(home.vault_file()).unwrap(), before);
    assert_eq!(vault.load().unwrap().connections().len(), 1);
}

#[test]
fn tokens_are_sealed_on_disk() {
    const ACCESS: &str = "lin_at_5ec2e7a0c0ffee00deadbeef11223344";
    const REFRESH: &str = "lin_rt_8badf00d8badf00d8badf00d8badf00d";
    let home = Home::new();
    let vault = open(home.path()).unwrap();
    vault
        .transact(|s: &mut Store| {
            let mut c = connection("linear");
            c.token = Some(TokenSet {
                client_id: "client-1".into(),
                issuer: "https://linear.app".into(),
                access_token: Secret::new(ACCESS),
                refresh_token: Some(Secret::new(REFRESH)),
                scope: None,
                expires_at: None,
                obtained_at: Utc::now(),
                generation: 1,
                used_refresh_hashes: vec![],
                granted_at: None,
                refresh_expires_at: None,
            });
            s.push(c);
            Ok::<_, VaultError>(())
        })
        .unwrap();
    for file in files_under(home.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in [ACCESS, REFRESH] {
            assert!(!contains(&bytes, secret.as_bytes()), "{}", file.display());
        }
    }
    let store = vault.load().unwrap();
    let token = store.connections()[0].token.as_ref().unwrap();
    assert_eq!(token.refresh_token.as_ref().unwrap().expose(), REFRESH);
    let shown = format!("{store:?}") + &serde_json::to_string(&store).unwrap();
    assert!(
        !shown.contains(ACCESS) && !shown.contains(REFRESH),
        "{shown}"
    );
}

#[test]
fn the_env_key_works_and_a_wrong_one_is_named() {
    use base64::Engine as _;
    let home = Home::new();
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let with_key = |k: &str, args: &[&str]| {
        support::Run::of(
            home.cmd()
                .env("TETHER_KEY_SOURCE", "auto")
                .env("TETHER_VAULT_KEY", k)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    with_key(&key, &["add", "linear", "https://mcp.linear.app/mcp"]).ok();
    assert!(!home.path().join("vault.key").exists());
    assert!(with_key(&key, &["list"]).ok().stdout.contains("linear"));
    let wrong = with_key(&other, &["list"]);
    assert_eq!(wrong.status, 1);
    assert!(wrong.stderr.contains("different key"), "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("TETHER_VAULT_KEY"),
        "{}",
        wrong.stderr
    );
    let bad = with_key("c2hvcnQ=", &["list"]);
    assert!(
        bad.stderr.contains("decodes to 5 bytes, not 32"),
        "{}",
        bad.stderr
    );
    assert!(
        !bad.stderr.contains("c2hvcnQ"),
        "the key value must not be echoed"
    );
}

#[test]
fn without_a_keyring_the_fallback_is_announced_once() {
    let home = Home::new();
    let runtime = tempfile::tempdir().unwrap();
    let auto = |args: &[&str]| {
        support::Run::of(
            home.cmd()
                .env("TETHER_KEY_SOURCE", "auto")
                .env("XDG_RUNTIME_DIR", runtime.path())
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let first = auto(&["add", "linear", "https://mcp.linear.app/mcp"]).ok();
    assert!(
        first.stderr.contains("no OS keyring is reachable"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("vault.key"), "{}", first.stderr);
    let second = auto(&["list"]).ok();
    assert!(second.stderr.is_empty(), "{}", second.stderr);
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    home.run(&["add", "linear", "https://mcp.linear.app/mcp"])
        .ok();
    let key = home.path().join("vault.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = home.run(&["list"]);
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
}

/// Child: `TETHER_TEST_CHILD_HOME` set; appends one event per transaction,
/// `TETHER_TEST_CHILD_COUNT` times (forever when 0), printing each committed index.
#[test]
#[ignore = "child process of the multi-process vault tests"]
fn child_writer() {
    let Ok(home) = std::env::var("TETHER_TEST_CHILD_HOME") else {
        return;
    };
    let id: String = std::env::var("TETHER_TEST_CHILD_ID").unwrap();
    let count: u64 = std::env::var("TETHER_TEST_CHILD_COUNT")
        .unwrap()
        .parse()
        .unwrap();
    let vault = open(Path::new(&home)).unwrap();
    let mut i = 0u64;
    while count == 0 || i < count {
        let committed = vault
            .transact(|s: &mut Store| {
                let n = counter(s);
                if s.get("counter").is_none() {
                    s.push(connection("counter"));
                }
                s.get_mut("counter").unwrap().upstream =
                    parse_upstream(&format!("https://e.example/{}", n + 1)).unwrap();
                let slot = format!("slot-{}", i % 4);
                if s.get(&slot).is_none() {
                    s.push(connection(&slot));
                }
                let c = s.get_mut(&slot).unwrap();
                c.record(Event::new(
                    Utc::now(),
                    EventKind::Refreshed,
                    format!("{id}-{i}"),
                ));
                Ok::<_, VaultError>(n + 1)
            })
            .unwrap();
        println!("{committed}");
        i += 1;
    }
}

fn spawn_child(home: &Path, id: &str, count: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "--nocapture", "--quiet"])
        .arg(test_name(module_path!(), "child_writer"))
        .env("TETHER_TEST_CHILD_HOME", home)
        .env("TETHER_TEST_CHILD_ID", id)
        .env("TETHER_TEST_CHILD_COUNT", count.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The number of commits so far, kept in the "counter" connection's URL.
fn counter(store: &Store) -> u64 {
    store
        .get("counter")
        .and_then(|c| c.upstream.path_segments()?.next_back()?.parse().ok())
        .unwrap_or(0)
}

fn total_events(store: &Store) -> usize {
    store.connections().iter().map(|c| c.history.len()).sum()
}

#[test]
fn two_processes_times_200_transactions_lose_nothing() {
    let home = Home::new();
    open(home.path()).unwrap(); // creates the key before both children race for it
    add(&open(home.path()).unwrap(), "seed");
    let children = [
        spawn_child(home.path(), "a", 200),
        spawn_child(home.path(), "b", 200),
    ];
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
    }
    let store = open(home.path()).unwrap().load().unwrap();
    assert_eq!(total_events(&store), 400);
    assert_eq!(counter(&store), 400);
    for id in ["a", "b"] {
        for i in 0..200 {
            let detail = format!("{id}-{i}");
            assert!(
                store
                    .connections()
                    .iter()
                    .any(|c| c.history.iter().any(|e| e.detail == detail)),
                "event {detail} lost"
            );
        }
    }
}

#[test]
fn sigkill_mid_transaction_never_tears_the_vault() {
    let home = Home::new();
    add(&open(home.path()).unwrap(), "seed");
    let mut rng = rand::rng();
    let mut last_committed = 0u64;
    for round in 0..100 {
        let mut child = spawn_child(home.path(), &format!("r{round}"), 0);
        // The test harness prints its own lines too; commits are the numeric ones.
        let mut commits = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.trim().parse::<u64>().ok());
        // Wait for the loop to be running, then kill it at a random moment.
        let first = commits.next().expect("child committed nothing");
        assert!(first > last_committed);
        std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        let reported = commits.last().unwrap_or(first);
        let store = open(home.path())
            .unwrap()
            .load()
            .unwrap_or_else(|e| panic!("round {round}: vault unreadable after SIGKILL: {e}"));
        // The file holds the last reported commit, or one more that committed just
        // before the kill and was not printed yet.
        let held = counter(&store);
        assert!(
            held == reported || held == reported + 1,
            "round {round}: vault holds {held}, last reported commit {reported}"
        );
        assert!(
            store.get("seed").is_some(),
            "round {round}: state is not one that was committed"
        );
        last_committed = held;
    }
    // Temp files of killed writers are cleaned up by the next transaction.
    add(&open(home.path()).unwrap(), "after");
    let leftovers: Vec<_> = files_under(home.path())
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
