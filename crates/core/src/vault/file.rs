//! The file backend: one sealed file, an advisory lock file beside it, and writes that are
//! atomic (temp file + fsync + rename + fsync of the folder).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::codec::{self, DecodeError};
use super::crypto::{self, FileId, Key, OpenError};
use super::key::KeySource;
use super::model::{SCHEMA_VERSION, Store};
use super::{Backend, VaultError};
use crate::paths::Paths;

const TEMP_PREFIX: &str = ".vault.tether.tmp-";

pub struct FileBackend {
    vault_file: PathBuf,
    lock_file: PathBuf,
    dir: PathBuf,
    key: Key,
    key_source: KeySource,
    /// The store as this process last wrote it, with the identity of that file version.
    /// A transaction that finds the file still at that version skips the decrypt and
    /// decode; a write by any other process changes the identity (every write has a
    /// fresh random nonce).
    warm: Mutex<Option<(FileId, Store)>>,
}

impl FileBackend {
    pub fn new(paths: &Paths, key: Key, key_source: KeySource) -> Self {
        Self {
            vault_file: paths.vault_file(),
            lock_file: paths.vault_lock_file(),
            dir: paths.data_dir.clone(),
            key,
            key_source,
            warm: Mutex::new(None),
        }
    }

    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VaultError {
        let path = path.to_path_buf();
        move |source| VaultError::Io {
            action,
            path,
            source,
        }
    }

    /// The newest committed store, read, decrypted and decoded from disk.
    fn read(&self) -> Result<Store, VaultError> {
        let sealed = match fs::read(&self.vault_file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::default()),
            Err(e) => return Err(self.io("read vault", &self.vault_file)(e)),
        };
        let plain = crypto::open(&self.key, &sealed).map_err(|e| self.open_error(e))?;
        codec::decode(&plain).map_err(|e| decode_error(e, &self.vault_file))
    }

    /// The identity of the file on disk now, from its length, first and last bytes.
    fn current_id(&self) -> Option<FileId> {
        let mut file = File::open(&self.vault_file).ok()?;
        let len = file.metadata().ok()?.len();
        let mut head = [0u8; FileId::HEAD_LEN];
        let mut tail = [0u8; FileId::TAIL_LEN];
        file.read_exact(&mut head).ok()?;
        file.seek(SeekFrom::End(-(FileId::TAIL_LEN as i64))).ok()?;
        file.read_exact(&mut tail).ok()?;
        Some(FileId::from_parts(head, tail, len))
    }

    /// The warm store when the file is still the version it came from, else a fresh read.
    fn take_newest(&self) -> Result<Store, VaultError> {
        let warm = self.warm.lock().ok().and_then(|mut w| w.take());
        match warm {
            Some((id, store)) if self.current_id() == Some(id) => Ok(store),
            _ => self.read(),
        }
    }

    fn open_error(&self, e: OpenError) -> VaultError {
        let path = self.vault_file.clone();
        match e {
            OpenError::Truncated { len } => VaultError::Truncated { path, len },
            OpenError::NotAVault => VaultError::NotAVault { path },
            OpenError::FutureFormat { found } => VaultError::FutureVersion {
                path,
                what: "file format",
                found: u32::from(found),
                supported: u32::from(crypto::FORMAT_VERSION),
            },
            OpenError::WrongKey { sealed_with, hint } => VaultError::WrongKey {
                path,
                sealed_with: crypto::hex(&sealed_with),
                hint: hint.describe(),
                ours: self.key_source.describe(),
                our_id: crypto::hex(&self.key.id()),
            },
            OpenError::Tampered => VaultError::Tampered { path },
        }
    }

    fn write(&self, store: &mut Store) -> Result<FileId, VaultError> {
        let plain = codec::encode(store).map_err(|reason| VaultError::Corrupt {
            path: self.vault_file.clone(),
            reason,
        })?;
        let sealed = crypto::seal(&self.key, self.key_source.hint(), &plain);
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(self.io("create a temporary file in", &self.dir))?;
        temp.write_all(&sealed)
            .map_err(self.io("write", temp.path()))?;
        temp.as_file()
            .sync_all()
            .map_err(self.io("sync", &self.vault_file))?;
        temp.persist(&self.vault_file)
            .map_err(|e| self.io("replace", &self.vault_file)(e.error))?;
        // The rename is durable only once the folder entry is on disk.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io("sync folder", &self.dir))?;
        Ok(FileId::of(&sealed))
    }

    /// Temp files left by a process killed mid-write. Only called under the lock, so no
    /// live writer owns one.
    fn remove_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn lock(&self) -> Result<File, VaultError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.lock_file)
            .map_err(self.io("open lock file", &self.lock_file))?;
        file.lock().map_err(self.io("lock", &self.lock_file))?;
        Ok(file)
    }
}

impl Backend for FileBackend {
    fn load(&self) -> Result<Store, VaultError> {
        if let Ok(warm) = self.warm.lock()
            && let Some((id, store)) = warm.as_ref()
            && self.current_id() == Some(*id)
        {
            return Ok(store.clone());
        }
        self.read()
    }

    fn update(&self, apply: &mut dyn FnMut(&mut Store) -> bool) -> Result<(), VaultError> {
        // Closing the file releases the lock, also when this process dies.
        let _lock = self.lock()?;
        self.remove_stale_temp_files();
        let mut store = self.take_newest()?;
        // An aborted change may have altered `store` before giving up, so it is dropped
        // rather than kept warm; the next transaction reads the file again.
        if apply(&mut store) {
            store.version = SCHEMA_VERSION;
            let id = self.write(&mut store)?;
            if let Ok(mut warm) = self.warm.lock() {
                *warm = Some((id, store));
            }
        }
        Ok(())
    }

    fn location(&self) -> &Path {
        &self.vault_file
    }
}

fn decode_error(e: DecodeError, path: &Path) -> VaultError {
    match e {
        DecodeError::Future(found) => VaultError::FutureVersion {
            path: path.to_path_buf(),
            what: "schema version",
            found,
            supported: SCHEMA_VERSION,
        },
        DecodeError::Invalid(reason) => VaultError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
    }
}
