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
    Gemini,
    Qwen,
    Opencode,
    Copilot,
    Windsurf,
    Zed,
}

/// How a client's configuration file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (comments and trailing commas tolerated); servers under this key of the root
    /// (opencode 2 nests them one level deeper, under `mcp.servers`: see `document`).
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
    /// `$COPILOT_HOME`: Copilot CLI's folder instead of `~/.copilot`.
    pub copilot_home: Option<PathBuf>,
    pub macos: bool,
}

impl Locations {
    /// From `$HOME`, `$XDG_CONFIG_HOME`, `$CODEX_HOME` and `$COPILOT_HOME`; `None` without a
    /// home folder.
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
            copilot_home: var("COPILOT_HOME"),
            macos: cfg!(target_os = "macos"),
        })
    }

    /// `$XDG_CONFIG_HOME`, else `~/.config`, on every platform: where command-line tools
    /// that follow the XDG layout (opencode) keep their settings, macOS included.
    fn xdg_config(&self) -> PathBuf {
        self.xdg_config
            .clone()
            .unwrap_or_else(|| self.home.join(".config"))
    }

    /// The folder desktop apps keep their settings in: `~/Library/Application Support` on
    /// macOS, `$XDG_CONFIG_HOME` (else `~/.config`) elsewhere.
    fn app_config(&self) -> PathBuf {
        if self.macos {
            self.home.join("Library/Application Support")
        } else {
            self.xdg_config()
        }
    }
}

impl Client {
    pub const ALL: [Client; 11] = [
        Client::ClaudeCode,
        Client::ClaudeDesktop,
        Client::Cursor,
        Client::Vscode,
        Client::Codex,
        Client::Gemini,
        Client::Qwen,
        Client::Opencode,
        Client::Copilot,
        Client::Windsurf,
        Client::Zed,
    ];

    /// The name used on the command line and as the default client label.
    pub fn id(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude-code",
            Self::ClaudeDesktop => "claude-desktop",
            Self::Cursor => "cursor",
            Self::Vscode => "vscode",
            Self::Codex => "codex",
            Self::Gemini => "gemini",
            Self::Qwen => "qwen",
            Self::Opencode => "opencode",
            Self::Copilot => "copilot",
            Self::Windsurf => "windsurf",
            Self::Zed => "zed",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::ClaudeCode => "Claude Code",
            Self::ClaudeDesktop => "Claude Desktop",
            Self::Cursor => "Cursor",
            Self::Vscode => "VS Code",
            Self::Codex => "Codex",
            Self::Gemini => "Gemini CLI",
            Self::Qwen => "Qwen Code",
            Self::Opencode => "opencode",
            Self::Copilot => "Copilot CLI",
            Self::Windsurf => "Windsurf",
            Self::Zed => "Zed",
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
            Self::Opencode => Format::Json { servers_key: "mcp" },
            Self::Zed => Format::Json {
                servers_key: "context_servers",
            },
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
            Self::Gemini => at.home.join(".gemini/settings.json"),
            Self::Qwen => at.home.join(".qwen/settings.json"),
            // opencode reads both names; the one that exists is the one to edit.
            Self::Opencode => {
                let dir = at.xdg_config().join("opencode");
                let (jsonc, json) = (dir.join("opencode.jsonc"), dir.join("opencode.json"));
                if !jsonc.exists() && json.exists() {
                    json
                } else {
                    jsonc
                }
            }
            Self::Copilot => at
                .copilot_home
                .clone()
                .unwrap_or_else(|| at.home.join(".copilot"))
                .join("mcp-config.json"),
            Self::Windsurf => at.home.join(".codeium/windsurf/mcp_config.json"),
            // Zed follows $XDG_CONFIG_HOME on Linux only; on macOS it is always ~/.config.
            Self::Zed if at.macos => at.home.join(".config/zed/settings.json"),
            Self::Zed => at.xdg_config().join("zed/settings.json"),
        }
    }

    /// Every user-level file this client reads its MCP servers from: its own, and for
    /// opencode the other of `opencode.jsonc` / `opencode.json` when both exist.
    pub fn user_files(self, at: &Locations) -> Vec<PathBuf> {
        let own = self.config_file(at);
        let mut files = vec![own.clone()];
        if self == Self::Opencode {
            files.extend(
                ["opencode.jsonc", "opencode.json"]
                    .map(|n| at.xdg_config().join("opencode").join(n))
                    .into_iter()
                    .filter(|f| *f != own && f.exists()),
            );
        }
        files
    }

    /// The project files this client reads in the folder it runs in, as `tether clients`
    /// looks for them in the current folder. A project's `.mcp.json` is Claude Code's and
    /// Copilot CLI's alike; `drift` reads it once.
    pub fn project_files(self, folder: &Path) -> Vec<PathBuf> {
        let names: &[&str] = match self {
            Self::ClaudeCode => &[".mcp.json"],
            Self::Cursor => &[".cursor/mcp.json"],
            Self::Vscode => &[".vscode/mcp.json"],
            Self::Gemini => &[".gemini/settings.json"],
            Self::Qwen => &[".qwen/settings.json"],
            Self::Opencode => &["opencode.jsonc", "opencode.json"],
            Self::Copilot => &[".github/mcp.json", ".mcp.json"],
            Self::Zed => &[".zed/settings.json"],
            Self::ClaudeDesktop | Self::Codex | Self::Windsurf => &[],
        };
        names.iter().map(|n| folder.join(n)).collect()
    }

    /// What the user should know about where this client's entry takes effect, shown by
    /// `tether config`.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Self::Gemini => Some(
                "Gemini CLI reads a project's .gemini/settings.json only in a folder you trust \
                 (`gemini trust`), and creates its settings files readable by others (0644); \
                 the user file ~/.gemini/settings.json applies in every folder.",
            ),
            _ => None,
        }
    }

    /// The entry that sends this client to tether, as the client's own JSON shape (Codex's
    /// TOML table is built from the same value).
    pub fn entry(self, target: &Target) -> Value {
        match (self, target) {
            // opencode's local servers take the whole command line as one array.
            (Self::Opencode, Target::Command { command, args, env }) => {
                let line: Vec<&String> = std::iter::once(command).chain(args).collect();
                let mut v = json!({ "type": "local", "command": line });
                if !env.is_empty() {
                    v["environment"] =
                        json!(env.iter().cloned().collect::<serde_json::Map<_, _>>());
                }
                v
            }
            (_, Target::Command { command, args, env }) => {
                let mut v = json!({ "command": command, "args": args });
                if !env.is_empty() {
                    v["env"] = json!(env.iter().cloned().collect::<serde_json::Map<_, _>>());
                }
                v
            }
            // Gemini CLI still reads `httpUrl`, but calls it deprecated in favour of this.
            (Self::ClaudeCode | Self::Vscode | Self::Gemini, Target::Url(url)) => {
                json!({ "type": "http", "url": url })
            }
            (Self::Qwen, Target::Url(url)) => json!({ "httpUrl": url }),
            (Self::Opencode, Target::Url(url)) => json!({ "type": "remote", "url": url }),
            (Self::Copilot, Target::Url(url)) => {
                json!({ "type": "http", "url": url, "tools": ["*"] })
            }
            (Self::Windsurf, Target::Url(url)) => json!({ "serverUrl": url }),
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
            copilot_home: None,
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
            "claude-code, claude-desktop, cursor, vscode, codex, gemini, qwen, opencode, \
             copilot, windsurf or zed"
        );
    }

    #[test]
    fn new_clients_files() {
        let linux = at(false, Some("/x"));
        let mac = at(true, Some("/x"));
        for (client, path) in [
            (Client::Gemini, "/h/.gemini/settings.json"),
            (Client::Qwen, "/h/.qwen/settings.json"),
            (Client::Copilot, "/h/.copilot/mcp-config.json"),
            (Client::Windsurf, "/h/.codeium/windsurf/mcp_config.json"),
            (Client::Zed, "/x/zed/settings.json"),
            (Client::Opencode, "/x/opencode/opencode.jsonc"),
        ] {
            assert_eq!(client.config_file(&linux), Path::new(path), "{client:?}");
        }
        // Zed ignores $XDG_CONFIG_HOME on macOS; opencode follows it everywhere.
        assert_eq!(
            Client::Zed.config_file(&mac),
            Path::new("/h/.config/zed/settings.json")
        );
        assert_eq!(
            Client::Opencode.config_file(&mac),
            Path::new("/x/opencode/opencode.jsonc")
        );
        assert_eq!(
            Client::Copilot.project_files(Path::new("/p")),
            [Path::new("/p/.github/mcp.json"), Path::new("/p/.mcp.json")]
        );
    }

    #[test]
    fn opencode_edits_the_file_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let at = Locations {
            home: dir.path().into(),
            xdg_config: Some(dir.path().join("cfg")),
            codex_home: None,
            copilot_home: None,
            macos: false,
        };
        let folder = dir.path().join("cfg/opencode");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("opencode.json"), "{}").unwrap();
        assert_eq!(
            Client::Opencode.config_file(&at),
            folder.join("opencode.json")
        );
        assert_eq!(Client::Opencode.user_files(&at).len(), 1);
        std::fs::write(folder.join("opencode.jsonc"), "{}").unwrap();
        assert_eq!(
            Client::Opencode.config_file(&at),
            folder.join("opencode.jsonc")
        );
        assert_eq!(
            Client::Opencode.user_files(&at),
            [folder.join("opencode.jsonc"), folder.join("opencode.json")]
        );
    }

    #[test]
    fn entries_take_each_clients_shape() {
        let url = Target::Url("http://127.0.0.1:7878/s/x/mcp".into());
        let u = "http://127.0.0.1:7878/s/x/mcp";
        assert_eq!(
            Client::Gemini.entry(&url),
            json!({"type": "http", "url": u})
        );
        assert_eq!(Client::Qwen.entry(&url), json!({"httpUrl": u}));
        assert_eq!(
            Client::Opencode.entry(&url),
            json!({"type": "remote", "url": u})
        );
        assert_eq!(
            Client::Copilot.entry(&url),
            json!({"type": "http", "url": u, "tools": ["*"]})
        );
        assert_eq!(Client::Windsurf.entry(&url), json!({"serverUrl": u}));
        assert_eq!(Client::Zed.entry(&url), json!({"url": u}));
        let stdio = Target::stdio(
            Path::new("/bin/tether"),
            "linear",
            "oc",
            Some(Path::new("/t")),
        );
        assert_eq!(
            Client::Opencode.entry(&stdio),
            json!({
                "type": "local",
                "command": ["/bin/tether", "stdio", "linear", "--client", "oc"],
                "environment": {"TETHER_HOME": "/t"}
            })
        );
    }
}
