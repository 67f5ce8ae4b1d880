//! The tools whose logins can be imported, where each keeps them, and one small reader per
//! store format. A reader only reads: it turns its files into [`Login`]s (or problems) and
//! leaves discovery, the issuer check and placing to the shared code in `import/`.

mod claude_code;
mod codex;
mod copilot;
mod gemini;
mod opencode;
mod sealed;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::login::{Login, Scan, ScanError, Server};
use super::servers::{Candidate, Source};
use crate::printable::printable;

/// A tool with a token store tether can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    McpRemote,
    ClaudeCode,
    Codex,
    Gemini,
    Qwen,
    Opencode,
    Copilot,
}

impl Tool {
    pub const ALL: [Tool; 7] = [
        Tool::McpRemote,
        Tool::ClaudeCode,
        Tool::Codex,
        Tool::Gemini,
        Tool::Qwen,
        Tool::Opencode,
        Tool::Copilot,
    ];

    /// The name on tether's command line.
    pub fn name(self) -> &'static str {
        match self {
            Tool::McpRemote => "mcp-remote",
            Tool::ClaudeCode => "claude-code",
            Tool::Codex => "codex",
            Tool::Gemini => "gemini",
            Tool::Qwen => "qwen",
            Tool::Opencode => "opencode",
            Tool::Copilot => "copilot",
        }
    }

    /// The name people know it by.
    pub fn title(self) -> &'static str {
        match self {
            Tool::McpRemote => "mcp-remote",
            Tool::ClaudeCode => "Claude Code",
            Tool::Codex => "Codex",
            Tool::Gemini => "Gemini CLI",
            Tool::Qwen => "Qwen Code",
            Tool::Opencode => "opencode",
            Tool::Copilot => "Copilot CLI",
        }
    }

    /// Whether a login in its store is kept under the user's own name for the server
    /// (mcp-remote and Copilot CLI key theirs by a hash).
    pub fn names_servers(self) -> bool {
        !matches!(self, Tool::McpRemote | Tool::Copilot)
    }

    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Where the tool keeps its logins by default.
    pub fn default_store(self, env: &Env) -> PathBuf {
        let home = &env.home;
        match self {
            Tool::McpRemote => env
                .mcp_remote_dir
                .clone()
                .unwrap_or_else(|| home.join(".mcp-auth")),
            Tool::ClaudeCode => env.claude_dir().join(".credentials.json"),
            Tool::Codex => env
                .codex_home
                .clone()
                .unwrap_or_else(|| home.join(".codex"))
                .join(".credentials.json"),
            Tool::Gemini => home.join(".gemini/mcp-oauth-tokens.json"),
            Tool::Qwen => home.join(".qwen/mcp-oauth-tokens.json"),
            Tool::Opencode => env
                .xdg_data_home
                .clone()
                .unwrap_or_else(|| home.join(".local/share"))
                .join("opencode/mcp-auth.json"),
            Tool::Copilot => env
                .copilot_home
                .clone()
                .unwrap_or_else(|| home.join(".copilot"))
                .join("mcp-oauth-config"),
        }
    }

    /// What is usually wrong when the store is missing.
    fn hint(self) -> &'static str {
        match self {
            Tool::McpRemote => "mcp-remote keeps its logins in ~/.mcp-auth",
            Tool::ClaudeCode => {
                "Claude Code keeps MCP logins there only where no system keychain is used (on macOS they are in the Keychain, which tether does not read)"
            }
            Tool::Codex => {
                "Codex writes this file only when no keyring is available or `mcp_oauth_credentials_store = \"file\"` is set"
            }
            Tool::Gemini | Tool::Qwen => {
                "the file appears after the first MCP sign-in; with encrypted storage asked for, the encrypted file beside it is read instead (gemini-credentials.json, mcp-oauth-tokens-v2.json), but not a system keychain's entries"
            }
            Tool::Opencode => "the file appears after `opencode mcp auth NAME`",
            Tool::Copilot => "the folder appears after the first MCP sign-in",
        }
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The parts of the environment the stores' places depend on.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub home: PathBuf,
    /// Where project config files (`.mcp.json`) are looked for besides the ones a tool names.
    pub cwd: PathBuf,
    pub mcp_remote_dir: Option<PathBuf>,
    pub codex_home: Option<PathBuf>,
    pub copilot_home: Option<PathBuf>,
    pub xdg_data_home: Option<PathBuf>,
    pub claude_config_dir: Option<PathBuf>,
}

impl Env {
    /// From this process's environment (empty variables count as unset).
    pub fn from_process(home: PathBuf, cwd: PathBuf) -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            home,
            cwd,
            mcp_remote_dir: var("MCP_REMOTE_CONFIG_DIR"),
            codex_home: var("CODEX_HOME"),
            copilot_home: var("COPILOT_HOME"),
            xdg_data_home: var("XDG_DATA_HOME").filter(|p| p.is_absolute()),
            claude_config_dir: var("CLAUDE_CONFIG_DIR"),
        }
    }

    /// Claude Code's folder: `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
    fn claude_dir(&self) -> PathBuf {
        self.claude_config_dir
            .clone()
            .unwrap_or_else(|| self.home.join(".claude"))
    }
}

/// Reads `tool`'s store at `store`.
pub fn scan(tool: Tool, store: &Path, env: &Env) -> Result<Scan, ScanError> {
    if tool == Tool::McpRemote {
        return super::store::scan(store);
    }
    let exists = match tool {
        Tool::Copilot => store.is_dir(),
        Tool::Gemini | Tool::Qwen => {
            store.is_file() || sealed::beside(store, tool).is_some_and(|p| p.is_file())
        }
        _ => store.is_file(),
    };
    if !exists {
        return Err(ScanError::NoStore {
            tool: tool.title(),
            path: store.display().to_string(),
            hint: tool.hint(),
        });
    }
    let unreadable = |e: String| ScanError::Unreadable(store.display().to_string(), e);
    Ok(match tool {
        Tool::McpRemote => unreachable!("handled above"),
        Tool::ClaudeCode => claude_code::scan(store, env).map_err(unreadable)?,
        Tool::Codex => codex::scan(store).map_err(unreadable)?,
        Tool::Gemini | Tool::Qwen => gemini::scan(store, tool).map_err(unreadable)?,
        Tool::Opencode => opencode::scan(store).map_err(unreadable)?,
        Tool::Copilot => copilot::scan(store).map_err(unreadable)?,
    })
}

/// A whole-file problem: the store exists but is not in the tool's format.
fn whole_file(store: &Path, reason: String, tool: Tool) -> super::login::FileProblem {
    super::login::FileProblem {
        file: store.to_path_buf(),
        key: String::new(),
        place: String::new(),
        reason,
        fix: format!(
            "let {} rewrite it (sign in to any server once), or pass --file PATH",
            tool.title()
        ),
    }
}

/// A login's server given by the store itself.
fn known(url: &str, file: &Path) -> Server {
    Server::Known(Candidate {
        url: url.trim().to_string(),
        source: Source::Store(file.to_path_buf()),
        extras: Vec::new(),
    })
}

/// A store key or name from a file, made safe to show.
fn shown(text: &str) -> String {
    printable(text, 120)
}

/// A problem with one login of a store.
fn login_problem(
    file: &Path,
    key: &str,
    reason: impl Into<String>,
    fix: &str,
) -> super::login::FileProblem {
    super::login::FileProblem {
        file: file.to_path_buf(),
        key: shown(key),
        place: shown(key),
        reason: reason.into(),
        fix: fix.to_string(),
    }
}

/// Sorted, so the report's order does not depend on a map's.
fn sorted(logins: &mut [Login]) {
    logins.sort_by(|a, b| a.key.cmp(&b.key));
}

const SIGN_IN_AFRESH: &str =
    "sign in through tether instead: tether add NAME URL, then tether login NAME";
