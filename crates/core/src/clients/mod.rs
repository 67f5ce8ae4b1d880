//! The MCP clients tether can point at itself: where each keeps its MCP servers, in which
//! format, and what the entry that sends it through tether looks like. `document` reads and
//! edits those files without disturbing anything else in them, `files` writes them safely,
//! and `drift` tells which entries still talk to an upstream directly.

pub mod document;
pub mod drift;
pub mod files;
pub mod holders;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// An MCP client whose configuration tether knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    ClaudeCode,
    ClaudeDesktop,
    Cursor,
    Vscode,
    Codex,
}

/// How a client's configuration file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (comments and trailing commas tolerated); servers under this key of the root.
    Json { servers_key: &'static str },
    /// TOML; servers as `[mcp_servers.NAME]` tables.
    Toml,
}

/// Where the user's configuration files live: the home folder and the environment's
/// overrides, read once so tests and callers can set them.
#[derive(Debug, Clone)]
pub struct Locations {
    pub home: PathBuf,
    pub xdg_config: Option<PathBuf>,
    pub codex_home: Option<PathBuf>,
    pub macos: bool,
}

impl Locations {
    /// From `$HOME`, `$XDG_CONFIG_HOME` and `$CODEX_HOME`; `None` without a home folder.
    pub fn from_env() -> Option<Self> {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Some(Self {
            home: var("HOME")?,
            xdg_config: var("XDG_CONFIG_HOME"),
            codex_home: var("CODEX_HOME"),
            macos: cfg!(target_os = "macos"),
        })
    }

    /// The folder desktop apps keep their settings in: `~/Library/Application Support` on
    /// macOS, `$XDG_CONFIG_HOME` (else `~/.config`) elsewhere.
    fn app_config(&self) -> PathBuf {
        if self.macos {
            self.home.join("Library/Application Support")
        } else {
            self.xdg_config
                .clone()
                .unwrap_or_else(|| self.home.join(".config"))
        }
    }
}

impl Client {
    pub const ALL: [Client; 5] = [
        Client::ClaudeCode,
        Client::ClaudeDesktop,
        Client::Cursor,
        Client::Vscode,
        Client::Codex,
    ];

    /// The name used on the command line and as the default client label.
    pub fn id(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude-code",
            Self::ClaudeDesktop => "claude-desktop",
            Self::Cursor => "cursor",
            Self::Vscode => "vscode",
            Self::Codex => "codex",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::ClaudeCode => "Claude Code",
            Self::ClaudeDesktop => "Claude Desktop",
            Self::Cursor => "Cursor",
            Self::Vscode => "VS Code",
            Self::Codex => "Codex",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.id() == id)
    }

    /// Every client id, for messages: "claude-code, claude-desktop, … or codex".
    pub fn choices() -> String {
        let ids: Vec<&str> = Self::ALL.iter().map(|c| c.id()).collect();
        format!(
            "{} or {}",
            ids[..ids.len() - 1].join(", "),
            ids[ids.len() - 1]
        )
    }

    pub fn format(self) -> Format {
        match self {
            Self::Vscode => Format::Json {
                servers_key: "servers",
            },
            Self::Codex => Format::Toml,
            _ => Format::Json {
                servers_key: "mcpServers",
            },
        }
    }

    /// Claude Desktop's configuration file only launches local commands (remote servers
    /// are added in its UI as connectors), so it reaches tether through `tether stdio`.
    pub fn launches_commands_only(self) -> bool {
        self == Self::ClaudeDesktop
    }

    /// The user-level configuration file this client reads its MCP servers from.
    pub fn config_file(self, at: &Locations) -> PathBuf {
        match self {
            Self::ClaudeCode => at.home.join(".claude.json"),
            Self::ClaudeDesktop => at.app_config().join("Claude/claude_desktop_config.json"),
            Self::Cursor => at.home.join(".cursor/mcp.json"),
            Self::Vscode => at.app_config().join("Code/User/mcp.json"),
            Self::Codex => at
                .codex_home
                .clone()
                .unwrap_or_else(|| at.home.join(".codex"))
                .join("config.toml"),
        }
    }

    /// The entry that sends this client to tether, as the client's own JSON shape (Codex's
    /// TOML table is built from the same value).
    pub fn entry(self, target: &Target) -> Value {
        match (self, target) {
            (_, Target::Command { command, args, env }) => {
                let mut v = json!({ "command": command, "args": args });
                if !env.is_empty() {
                    v["env"] = json!(env.iter().cloned().collect::<serde_json::Map<_, _>>());
                }
                v
            }
            (Self::ClaudeCode | Self::Vscode, Target::Url(url)) => {
                json!({ "type": "http", "url": url })
            }
            (_, Target::Url(url)) => json!({ "url": url }),
        }
    }
}

/// What a client entry points at: tether's HTTP endpoint, or the stdio bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Url(String),
    Command {
        command: String,
        args: Vec<String>,
        env: Vec<(String, Value)>,
    },
}

impl Target {
    /// `tether stdio NAME --client LABEL` with this tether's absolute path; the vault's
    /// folder goes along when it is not the default, so the bridge finds the same vault.
    pub fn stdio(tether: &Path, name: &str, label: &str, tether_home: Option<&Path>) -> Self {
        let env = tether_home
            .map(|h| {
                vec![(
                    crate::paths::HOME_ENV.to_string(),
                    Value::from(h.display().to_string()),
                )]
            })
            .unwrap_or_default();
        Self::Command {
            command: tether.display().to_string(),
            args: ["stdio", name, "--client", label]
                .map(String::from)
                .to_vec(),
            env,
        }
    }
}

/// Replaces `~`'s worth of the home folder in a path, for short messages.
pub fn tilde(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(macos: bool, xdg: Option<&str>) -> Locations {
        Locations {
            home: "/h".into(),
            xdg_config: xdg.map(PathBuf::from),
            codex_home: None,
            macos,
        }
    }

    #[test]
    fn files_follow_each_platform() {
        let linux = at(false, None);
        assert_eq!(
            Client::ClaudeDesktop.config_file(&linux),
            Path::new("/h/.config/Claude/claude_desktop_config.json")
        );
        assert_eq!(
            Client::Vscode.config_file(&at(false, Some("/x"))),
            Path::new("/x/Code/User/mcp.json")
        );
        assert_eq!(
            Client::Vscode.config_file(&at(true, Some("/x"))),
            Path::new("/h/Library/Application Support/Code/User/mcp.json")
        );
        assert_eq!(
            Client::Codex.config_file(&linux),
            Path::new("/h/.codex/config.toml")
        );
        assert_eq!(
            Client::ClaudeCode.config_file(&linux),
            Path::new("/h/.claude.json")
        );
    }

    #[test]
    fn ids_round_trip() {
        for c in Client::ALL {
            assert_eq!(Client::parse(c.id()), Some(c));
        }
        assert_eq!(
            Client::choices(),
            "claude-code, claude-desktop, cursor, vscode or codex"
        );
    }
}
