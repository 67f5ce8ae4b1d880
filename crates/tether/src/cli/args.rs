//! The command line: every subcommand and option, as clap derive types.

pub use crate::demo::DemoArgs;
pub use crate::service::ServiceCommand;
use clap::{Args, Parser, Subcommand, ValueEnum};
pub use tether_sim::SimArgs;

/// Authorize each remote MCP server once; tether keeps its tokens fresh and serves every
/// MCP client a stable local endpoint.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, long_about = None)]
pub struct Cli {
    /// Without a command, tether opens its terminal UI with the engine and the local proxy
    /// running inside it.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The terminal UI's colour theme: tether-dark, tether-light, high-contrast,
    /// catppuccin-mocha, gruvbox-dark, or a user theme's name.
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,
    /// Where the vault lives: `file` (the default, in the data folder) or a PostgreSQL
    /// database shared by several tether replicas, postgres://USER@HOST:PORT/DATABASE.
    /// Also TETHER_STORE, or [store] url in config.toml.
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add a connection to a remote MCP server.
    ///
    /// Without --api-key-env or --no-auth the connection uses OAuth and is authorized
    /// later with `tether login NAME`.
    Add(AddArgs),
    /// List every connection with its state.
    List {
        /// Print JSON instead of a table (secrets are masked).
        #[arg(long)]
        json: bool,
    },
    /// Show one connection in detail: auth, token, registrations, history.
    Status {
        /// The connection's name.
        name: String,
        /// Print JSON instead of text (secrets are masked).
        #[arg(long)]
        json: bool,
    },
    /// Remove a connection and everything tether keeps for it.
    Remove {
        /// The connection's name.
        name: String,
    },
    /// Give a connection a new name, keeping its sign-in, registrations, history and every
    /// client's endpoint secret.
    Rename {
        /// The connection's name now.
        name: String,
        /// Its new name: 1 to 32 characters from a-z, 0-9 and '-'.
        new_name: String,
    },
    /// Run a simulated provider (OAuth server + MCP server) on 127.0.0.1 for testing.
    ///
    /// Prints the MCP URL on stdout and the admin URL on stderr; stops on Ctrl-C.
    Sim(SimArgs),
    /// Try tether with no accounts: six simulated providers, one per provider style
    /// (linear, github, notion, todoist, atlassian, generic), and a throwaway vault.
    Demo(DemoArgs),
    /// Authorize a connection: discovery, client registration, browser sign-in, token.
    ///
    /// The authorization URL is always printed too, for sessions whose browser is
    /// elsewhere. `$BROWSER` chooses the browser. Over SSH, use --no-browser: a device
    /// code where the server offers the device grant, else the URL and a paste of the
    /// address the sign-in ended on.
    Login(LoginArgs),
    /// Refresh a connection's token now, through the same single-flight path the
    /// scheduler uses (safe to run from several processes at once).
    Refresh {
        /// The connection's name.
        name: String,
    },
    /// List client registrations that no longer back a token; --delete removes them
    /// (at the server where RFC 7592 allows, else from tether only).
    Orphans {
        /// Only this connection.
        name: Option<String>,
        /// Delete them.
        #[arg(long)]
        delete: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the engine and the local proxy without a terminal UI (for servers and login
    /// sessions); stops on Ctrl-C or SIGTERM, finishing requests in flight.
    Serve {
        /// Address to listen on (default from config.toml, else 127.0.0.1:7878).
        #[arg(long, value_name = "ADDR")]
        bind: Option<std::net::SocketAddr>,
        /// The service manager that runs this process (set by the unit `tether service
        /// install` writes).
        #[arg(long, value_name = "MANAGER", hide = true)]
        service: Option<crate::service::ManagerName>,
    },
    /// Run tether in the background as a per-user service that starts at login and is
    /// restarted when it fails or hangs (systemd on Linux, launchd on macOS).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Move the vault between stores: the file and a PostgreSQL database.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Create, or show again, a local client's endpoint for a connection.
    Url {
        /// The connection's name.
        name: String,
        /// Which client the endpoint is for (traffic and failures are counted per client,
        /// and each can be cut off alone).
        #[arg(long, value_name = "LABEL", default_value = "default")]
        client: String,
    },
    /// Check everything a broken connection could be suffering from: the vault and its
    /// key, the proxy, discovery, the server's capabilities, the token against the
    /// upstream, clock skew, orphans, MCP clients that bypass tether. Exits 1 when
    /// something needs action.
    Doctor {
        /// Only this connection.
        name: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Bridge stdio to a connection, for MCP clients that only launch local commands:
    /// JSON-RPC lines in on stdin, responses and notifications out on stdout.
    Stdio {
        /// The connection's name.
        name: String,
        /// Which client this is (traffic and failures are counted per client).
        #[arg(long, value_name = "LABEL", default_value = "stdio")]
        client: String,
    },
    /// Bring logins another tool already holds into tether, keeping their client ids so
    /// nobody signs in again. The source is only read, never changed or deleted.
    #[command(subcommand)]
    Import(ImportSource),
    /// Point an MCP client at tether for a connection: print the snippet (or command) to
    /// paste, or with --write merge it into the client's configuration file (backed up
    /// first; everything else in the file is kept).
    Config(ConfigArgs),
    /// List the MCP servers every client on this machine is configured with, and which
    /// still talk to a connection's upstream directly (drift: a second, competing login).
    /// Exits 1 when any entry drifts.
    Clients {
        /// Print JSON instead of text (secrets are masked).
        #[arg(long)]
        json: bool,
    },
    /// Show the calls through the proxy, oldest first, from the audit log
    /// (`logs/calls.jsonl` in the state folder) whichever tether serves the proxy.
    ///
    /// What is kept of each call is `[calls] capture` in config.toml: off, metadata (the
    /// default) or full (with the bodies).
    Calls(CallsArgs),
    /// Cut one local client off a connection; its endpoint stops working at once.
    Revoke {
        /// The connection's name.
        name: String,
        #[arg(long, value_name = "LABEL")]
        client: String,
    },
    /// Print the shell completion script for bash, zsh or fish.
    ///
    /// Install it once, e.g. `tether completions bash >
    /// ~/.local/share/bash-completion/completions/tether`, and again after an upgrade.
    Completions {
        /// The shell to complete in.
        shell: CompletionShell,
    },
    /// Print the man page (roff): tether and every command with its options.
    ///
    /// Install it with e.g. `tether man > ~/.local/share/man/man1/tether.1`.
    Man,
}

impl Command {
    /// Commands that print their answer and exit, as opposed to the ones that keep
    /// running (the proxy, the stdio bridge, the simulator, the demo) or own a terminal.
    pub fn prints_and_exits(&self) -> bool {
        !matches!(
            self,
            Command::Serve { .. } | Command::Stdio { .. } | Command::Sim(_) | Command::Demo(_)
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every connection — tokens, registrations, client secrets' hashes, history —
    /// from the store in use to another, in one transaction. The source is left as it
    /// was; running it again gives the same copy.
    Migrate {
        /// The store to copy to: postgres://USER@HOST:PORT/DATABASE, or `file`.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct CallsArgs {
    /// Only this connection's calls.
    pub name: Option<String>,
    /// Only this client's calls.
    #[arg(long, value_name = "LABEL")]
    pub client: Option<String>,
    /// Only calls that failed: an HTTP error or a JSON-RPC error.
    #[arg(long)]
    pub errors: bool,
    /// Only calls from the last while: 30s, 10m, 2h, 7d.
    #[arg(long, value_name = "AGO")]
    pub since: Option<String>,
    /// Keep printing calls as they come (Ctrl-C stops).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print one JSON record a line instead of columns.
    #[arg(long)]
    pub json: bool,
}

/// The shells `tether completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// Import mcp-remote's logins from ~/.mcp-auth (or $MCP_REMOTE_CONFIG_DIR): every
    /// mcp-remote-* folder, each <hash>_tokens.json with its <hash>_client_info.json.
    ///
    /// mcp-remote names its files after a hash of the server URL, so the URL is recovered
    /// from the URLs given here, tether's connections, and the `mcp-remote <url>` command
    /// lines in Claude Desktop's, Cursor's, Claude Code's and VS Code's configs.
    /// Exits 0 when every login was imported or skipped with a reason, 1 when some could
    /// not be imported (each is listed with the fix), 2 for a wrong command line.
    #[command(name = "mcp-remote")]
    McpRemote(McpRemoteArgs),
    /// Import Claude Code's MCP logins from ~/.claude/.credentials.json (object mcpOAuth;
    /// $CLAUDE_CONFIG_DIR/.credentials.json when set). Where no system keychain is used.
    ///
    /// A login without its serverUrl is matched to a server of its name in ~/.claude.json
    /// (user and project servers) or a project's .mcp.json.
    #[command(name = "claude-code")]
    ClaudeCode(ClientImportArgs),
    /// Import Codex's MCP logins from $CODEX_HOME/.credentials.json (default ~/.codex),
    /// where Codex keeps them when no keyring is available.
    Codex(ClientImportArgs),
    /// Import Gemini CLI's MCP logins from ~/.gemini/mcp-oauth-tokens.json.
    Gemini(ClientImportArgs),
    /// Import Qwen Code's MCP logins from ~/.qwen/mcp-oauth-tokens.json.
    Qwen(ClientImportArgs),
    /// Import opencode's MCP logins from ~/.local/share/opencode/mcp-auth.json
    /// ($XDG_DATA_HOME/opencode when set).
    Opencode(ClientImportArgs),
    /// Import Copilot CLI's MCP logins from ~/.copilot/mcp-oauth-config/ (<hash>.json with
    /// the client, <hash>.tokens.json with its tokens).
    Copilot(ClientImportArgs),
    /// A source tether does not know: answered with the list of those it does.
    #[command(external_subcommand)]
    Unknown(Vec<String>),
}

/// `tether import CLIENT`: the same options for every MCP client's store. Exits 0 when
/// every login was imported or skipped with a reason, 1 when some could not be (each is
/// listed with why and the fix), 2 for a wrong command line or a missing store.
#[derive(Debug, Args)]
pub struct ClientImportArgs {
    /// Import only these servers' logins (their MCP URLs).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// The client's token store, instead of its usual place.
    #[arg(long, value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
    /// Name the connection (only when exactly one login is imported); default: from the
    /// server's host, e.g. mcp.linear.app → linear.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Show what would be imported; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of text (tokens and secrets masked).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct McpRemoteArgs {
    /// Import only these servers' logins (their MCP URLs, as given to mcp-remote).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// mcp-remote's folder (default: $MCP_REMOTE_CONFIG_DIR, else ~/.mcp-auth).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Name the connection (only when exactly one login is imported); default: from the
    /// server's host, e.g. mcp.linear.app → linear.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Show what would be imported; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of text (tokens and secrets masked).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The MCP client: claude-code, claude-desktop, cursor, vscode, codex, gemini, qwen,
    /// opencode, copilot, windsurf or zed.
    #[arg(value_name = "CLIENT")]
    pub app: String,
    /// The connection's name.
    pub name: String,
    /// The client label its traffic is counted under (default: the CLIENT name).
    #[arg(long = "client", value_name = "LABEL")]
    pub label: Option<String>,
    /// Merge the entry into the client's configuration file instead of printing it.
    #[arg(long)]
    pub write: bool,
    /// The configuration file to use instead of the client's user-level one (e.g.
    /// .vscode/mcp.json for a VS Code workspace).
    #[arg(long, value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The connection's name.
    pub name: String,
    /// Sign in without a browser on this machine (SSH sessions). Where the authorization
    /// server offers the device grant (RFC 8628), print a code to enter on any device;
    /// otherwise print the authorization URL and wait for the browser to come back to
    /// this machine, or for the address its sign-in ended on to be pasted here.
    #[arg(long)]
    pub no_browser: bool,
    /// Sign in with the device grant (RFC 8628) whether or not a browser is at hand; fail
    /// if the authorization server does not offer it.
    #[arg(long, conflicts_with = "no_device")]
    pub device: bool,
    /// Never use the device grant: with --no-browser, print the URL and take the pasted
    /// address.
    #[arg(long)]
    pub no_device: bool,
    /// Register a new OAuth client first (the old registration is kept as legacy).
    #[arg(long)]
    pub reregister: bool,
    /// Also ask for these scopes (space-separated), e.g. after an insufficient_scope error.
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,
    /// Identify tether with this Client ID Metadata Document (an https URL whose document
    /// names it as client_id) where the authorization server supports them.
    #[arg(long, value_name = "URL")]
    pub client_metadata_url: Option<url::Url>,
    /// Give up waiting for the browser (or the device approval) after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A short name used in URLs and commands: 1–32 characters from a-z, 0-9 and '-'.
    pub name: String,
    /// The MCP endpoint, e.g. https://mcp.linear.app/mcp (plain http only for loopback).
    pub url: String,
    /// Authenticate with an API key read from this environment variable (never from argv).
    #[arg(long, value_name = "VAR", conflicts_with = "no_auth")]
    pub api_key_env: Option<String>,
    /// Header that carries the API key, optionally with a value prefix:
    /// "Authorization: Bearer" (default), "X-API-Key", "Authorization: Token".
    #[arg(long, value_name = "NAME[: PREFIX]", requires = "api_key_env")]
    pub header: Option<String>,
    /// The upstream needs no authentication.
    #[arg(long, conflicts_with_all = ["client_id", "api_key_env"])]
    pub no_auth: bool,
    /// Use this pre-registered OAuth client instead of registering one.
    #[arg(long, value_name = "ID", conflicts_with = "api_key_env")]
    pub client_id: Option<String>,
    /// Read the pre-registered client's secret from this environment variable.
    #[arg(long, value_name = "VAR", requires = "client_id")]
    pub client_secret_env: Option<String>,
    /// Redirect URI registered for the pre-registered client (a loopback http URL);
    /// default http://127.0.0.1:33418/callback.
    #[arg(long, value_name = "URL", requires = "client_id")]
    pub redirect_uri: Option<String>,
}
