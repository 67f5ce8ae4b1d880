//! Writing a client's configuration file without ever leaving it half-written: a
//! timestamped backup first (private, whatever the original's mode: a config file may hold
//! other secrets), then a temporary file in the same folder, fsynced and renamed over the
//! original, then the folder fsynced. The file keeps its mode unless it is about to hold a
//! secret, when it is made private; a symlinked file (dotfiles) is written through to its
//! target.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// Mode of a file tether creates, and of every backup: only the owner may read it.
const PRIVATE_MODE: u32 = 0o600;

/// The file as it is on disk before an edit.
pub struct Original {
    /// The real file (symlinks resolved), written in place of the given path.
    pub path: PathBuf,
    /// Its bytes, or `None` when it does not exist yet.
    pub bytes: Option<Vec<u8>>,
    pub mode: u32,
}

impl Original {
    pub fn read(path: &Path) -> io::Result<Self> {
        match fs::read(path) {
            Ok(bytes) => {
                let real = fs::canonicalize(path)?;
                let mode = fs::metadata(&real)?.permissions().mode() & 0o7777;
                Ok(Self {
                    path: real,
                    bytes: Some(bytes),
                    mode,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self {
                path: path.to_path_buf(),
                bytes: None,
                mode: PRIVATE_MODE,
            }),
            Err(e) => Err(e),
        }
    }

    /// Makes the file private (group and others lose every right) before a secret is
    /// written into it; returns the mode it had when that changed anything.
    pub fn make_private(&mut self) -> Option<u32> {
        let before = self.mode;
        self.mode &= !0o077;
        (before != self.mode).then_some(before)
    }

    /// Copies the original beside itself as `<file>.tether-backup-<UTC time>`, private.
    pub fn back_up(&self, now: DateTime<Utc>) -> io::Result<Option<PathBuf>> {
        let Some(bytes) = &self.bytes else {
            return Ok(None);
        };
        let stamp = now.format("%Y%m%dT%H%M%SZ");
        for n in 1.. {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!("-{n}")
            };
            let backup = sibling(&self.path, &format!(".tether-backup-{stamp}{suffix}"));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(PRIVATE_MODE)
                .open(&backup)
            {
                Ok(mut file) => {
                    file.set_permissions(fs::Permissions::from_mode(PRIVATE_MODE))?;
                    file.write_all(bytes)?;
                    file.sync_all()?;
                    return Ok(Some(backup));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("some numbered backup name is free")
    }

    /// Replaces the file atomically with `text`, keeping its mode; creates its folder
    /// when the file is new.
    pub fn replace(&self, text: &str) -> io::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut temp = tempfile::Builder::new()
            .prefix(&format!(".{name}.tether-"))
            .permissions(fs::Permissions::from_mode(self.mode))
            .tempfile_in(&dir)?;
        // The umask filters the mode given at creation; set it exactly.
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(self.mode))?;
        temp.write_all(text.as_bytes())?;
        temp.as_file().sync_all()?;
        // Clients rewrite their own files (Claude Code does, often): never clobber a change
        // made since we read it.
        if self.changed_since_read() {
            return Err(io::Error::other(
                "the file changed while tether was editing it; run the command again",
            ));
        }
        temp.persist(&self.path).map_err(|e| e.error)?;
        File::open(&dir)?.sync_all()
    }
}

impl Original {
    fn changed_since_read(&self) -> bool {
        match fs::read(&self.path) {
            Ok(now) => self.bytes.as_ref() != Some(&now),
            Err(e) => e.kind() != io::ErrorKind::NotFound || self.bytes.is_some(),
        }
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_the_mode_and_backups_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mcp.json");
        fs::write(&file, "{}").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let original = Original::read(&file).unwrap();
        let now = Utc::now();
        let first = original.back_up(now).unwrap().unwrap();
        let second = original.back_up(now).unwrap().unwrap();
        assert_ne!(
            first, second,
            "a second backup in the same second gets its own name"
        );
        original.replace("{\"a\": 1}\n").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o640);
        assert_eq!(mode(&first), 0o600);
        assert_eq!(fs::read_to_string(&first).unwrap(), "{}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "{\"a\": 1}\n");
    }

    #[test]
    fn a_file_made_private_loses_group_and_other_rights() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mcp.json");
        fs::write(&file, "{}").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        let mut original = Original::read(&file).unwrap();
        assert_eq!(original.make_private(), Some(0o664));
        assert_eq!(original.make_private(), None, "already private");
        original.replace("{}\n").unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_new_file_is_private_and_has_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("deep/er/config.toml");
        let original = Original::read(&file).unwrap();
        assert!(original.back_up(Utc::now()).unwrap().is_none());
        original.replace("x = 1\n").unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_change_made_meanwhile_is_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("claude.json");
        fs::write(&file, "{}").unwrap();
        let original = Original::read(&file).unwrap();
        fs::write(&file, "{\"numStartups\": 2}").unwrap();
        assert!(original.replace("{\"a\": 1}").is_err());
        assert_eq!(fs::read_to_string(&file).unwrap(), "{\"numStartups\": 2}");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
