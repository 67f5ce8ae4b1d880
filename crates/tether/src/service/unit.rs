//! What a service definition says, and whether the one on disk is still what tether wrote.
//! Both managers' files carry a fingerprint of their content in a comment (systemd) or a
//! key (launchd): a file whose content no longer matches was edited by hand, and tether
//! never overwrites or deletes such a file without `--force` (and then keeps a copy).

use std::net::SocketAddr;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// What the service runs: which binary, over which tether home, on which address. No
/// secret ever goes into a service file: the vault key stays in the keyring or key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub binary: PathBuf,
    /// `TETHER_HOME` at install time, made absolute.
    pub home: Option<PathBuf>,
    pub bind: Option<SocketAddr>,
}

impl Spec {
    /// The service for this binary and environment.
    pub fn here(bind: Option<SocketAddr>) -> anyhow::Result<Self> {
        let binary = std::env::current_exe()?;
        let binary = binary.canonicalize().unwrap_or(binary);
        let home = std::env::var_os(tether_core::paths::HOME_ENV)
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .map(|h| std::path::absolute(&h).unwrap_or(h));
        Ok(Self { binary, home, bind })
    }

    /// `serve` and its flags, after the binary.
    pub fn arguments(&self, manager: &str) -> Vec<String> {
        let mut args = vec![
            "serve".to_string(),
            "--service".to_string(),
            manager.to_string(),
        ];
        if let Some(bind) = self.bind {
            args.push("--bind".to_string());
            args.push(bind.to_string());
        }
        args
    }
}

/// A short fingerprint of a service file's content.
pub fn fingerprint(content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What is on disk where a service file belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDisk {
    Missing,
    /// Written by tether and unchanged since: tether may replace or remove it.
    Ours(String),
    /// Changed by hand (or not tether's): kept unless the user says `--force`.
    Edited(String),
}

impl OnDisk {
    pub fn read(path: &std::path::Path, verify: fn(&str) -> bool) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) if verify(&text) => Ok(OnDisk::Ours(text)),
            Ok(text) => Ok(OnDisk::Edited(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OnDisk::Missing),
            Err(e) => Err(e),
        }
    }
}

/// Writes `content` to `path` atomically (a temporary file beside it, renamed over it), so
/// a crash never leaves half a service file.
pub fn write(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(content.as_bytes())?;
    file.as_file().sync_all()?;
    let file = file.persist(path).map_err(|e| e.error)?;
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Keeps a copy of a file tether is about to replace or remove; the copy's path.
pub fn keep_copy(path: &std::path::Path) -> std::io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut copy = path.as_os_str().to_owned();
    copy.push(format!(".{stamp}.bak"));
    let copy = PathBuf::from(copy);
    std::fs::copy(path, &copy)?;
    Ok(copy)
}
