//! Where tether keeps its files: everything under `TETHER_HOME` when it is set (tests, the
//! demo, a portable install), else the XDG config, data and state folders.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

pub const HOME_ENV: &str = "TETHER_HOME";

#[derive(Debug, Clone)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error(
        "cannot find a home folder for tether's files: set TETHER_HOME to a folder tether may use"
    )]
    NoHome,
    #[error(
        "TETHER_HOME is set but empty: set it to a folder path, or unset it to use the XDG folders"
    )]
    EmptyHome,
    #[error("cannot create folder '{path}': {source}")]
    Create { path: PathBuf, source: io::Error },
}

impl Paths {
    /// `TETHER_HOME` if set, else the platform's folders for "tether".
    pub fn discover() -> Result<Self, PathsError> {
        match std::env::var_os(HOME_ENV) {
            Some(home) if home.is_empty() => Err(PathsError::EmptyHome),
            Some(home) => Ok(Self::under(PathBuf::from(home))),
            None => {
                let dirs = ProjectDirs::from("", "", "tether").ok_or(PathsError::NoHome)?;
                let state = dirs
                    .state_dir()
                    .unwrap_or_else(|| dirs.data_local_dir())
                    .to_path_buf();
                Ok(Self {
                    config_dir: dirs.config_dir().to_path_buf(),
                    data_dir: dirs.data_dir().to_path_buf(),
                    state_dir: state,
                })
            }
        }
    }

    /// Everything in one folder.
    pub fn under(home: PathBuf) -> Self {
        Self {
            config_dir: home.clone(),
            data_dir: home.clone(),
            state_dir: home,
        }
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    pub fn vault_file(&self) -> PathBuf {
        self.data_dir.join("vault.tether")
    }

    pub fn vault_lock_file(&self) -> PathBuf {
        self.data_dir.join("vault.lock")
    }

    pub fn key_file(&self) -> PathBuf {
        self.data_dir.join("vault.key")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// Creates the data folder (and parents) with mode 0700 if it is missing.
    pub fn ensure_data_dir(&self) -> Result<(), PathsError> {
        ensure_private_dir(&self.data_dir)
    }
}

/// Creates `path` with mode 0700. An existing folder keeps its mode: tightening a folder
/// the user chose (TETHER_HOME=/tmp/x) behind their back would surprise more than help.
pub fn ensure_private_dir(path: &Path) -> Result<(), PathsError> {
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| PathsError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    // `mode` is filtered by the umask; set it exactly.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|source| {
        PathsError::Create {
            path: path.to_path_buf(),
            source,
        }
    })
}
