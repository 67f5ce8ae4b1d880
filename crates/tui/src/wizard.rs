//! The add / authorize wizard's state and how it reacts: a form of `tui-input` fields, then
//! the login's steps as the engine reports them. Cancelling stops the login and removes a
//! connection this wizard added if it never got a token, so no half connection is left.

use std::str::FromStr;

use tui_input::{Input, InputRequest};

use super::action::{Command, Effect};
use tether_core::engine::{AddAuth, EngineCommand, LoginStep, StepOutcome};
use tether_core::secret::Secret;
use tether_core::vault::{ApiKeyHeader, ConnectionName, DiagnosisCode, Store, parse_upstream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    OAuth,
    Preregistered,
    ApiKey,
    NoAuth,
}

impl AuthKind {
    pub const ALL: [AuthKind; 4] = [
        AuthKind::OAuth,
        AuthKind::Preregistered,
        AuthKind::ApiKey,
        AuthKind::NoAuth,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AuthKind::OAuth => "OAuth (automatic)",
            AuthKind::Preregistered => "OAuth, pre-registered client",
            AuthKind::ApiKey => "API key from an environment variable",
            AuthKind::NoAuth => "no authentication",
        }
    }

    /// The fields this kind asks for, in order.
    pub fn fields(self) -> &'static [Field] {
        use Field::*;
        match self {
            AuthKind::OAuth | AuthKind::NoAuth => &[Name, Url, Kind],
            AuthKind::Preregistered => &[Name, Url, Kind, ClientId, ClientSecret],
            AuthKind::ApiKey => &[Name, Url, Kind, EnvVar, Header],
        }
    }

    fn logs_in(self) -> bool {
        matches!(self, AuthKind::OAuth | AuthKind::Preregistered)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Url,
    Kind,
    ClientId,
    ClientSecret,
    EnvVar,
    Header,
}

impl Field {
    pub fn label(self) -> &'static str {
        match self {
            Field::Name => "Name",
            Field::Url => "MCP URL",
            Field::Kind => "Auth",
            Field::ClientId => "Client id",
            Field::ClientSecret => "Client secret",
            Field::EnvVar => "Env variable",
            Field::Header => "Header",
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            Field::Name => "a-z, 0-9 and '-', e.g. linear",
            Field::Url => "e.g. https://mcp.linear.app/mcp",
            Field::Kind => "← → to choose",
            Field::ClientId => "from the provider's app settings",
            Field::ClientSecret => "optional; never shown",
            Field::EnvVar => "e.g. STRIPE_API_KEY (the key is read from it)",
            Field::Header => "optional; default 'Authorization: Bearer'",
        }
    }

    /// Whether the field's text is masked on screen.
    pub fn secret(self) -> bool {
        self == Field::ClientSecret
    }
}

/// Where the wizard is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Form,
    /// Commands sent; the wizard follows the engine.
    Running(Progress),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub name: String,
    /// A login was started (not for API-key or no-auth connections).
    pub login: bool,
    /// This wizard sent the `Add`, so it may remove the connection on cancel.
    pub added_here: bool,
    pub steps: Vec<(LoginStep, StepOutcome)>,
    /// An error the engine reported while this wizard ran (e.g. the add was refused).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Working,
    Done,
    Failed {
        diagnosis: Option<DiagnosisCode>,
        detail: String,
    },
}

impl Progress {
    pub fn status(&self, store: &Store) -> Status {
        if let Some(error) = &self.error {
            return Status::Failed {
                diagnosis: None,
                detail: error.clone(),
            };
        }
        if let Some((_, StepOutcome::Failed { diagnosis, detail })) = self
            .steps
            .iter()
            .find(|(_, o)| matches!(o, StepOutcome::Failed { .. }))
        {
            return Status::Failed {
                diagnosis: Some(*diagnosis),
                detail: detail.clone(),
            };
        }
        let token_received = self
            .steps
            .iter()
            .any(|(s, o)| *s == LoginStep::TokenReceived && matches!(o, StepOutcome::Done(_)));
        let present = store.get(&self.name).is_some();
        match (self.login, token_received, present) {
            (true, true, _) | (false, _, true) => Status::Done,
            _ => Status::Working,
        }
    }

    /// Whether the login waits for the browser and takes the address it ended on, pasted
    /// (the browser is on another machine).
    pub fn awaits_paste(&self) -> bool {
        let offered = self
            .steps
            .iter()
            .any(|(s, _)| matches!(s, LoginStep::AwaitingPaste { .. }));
        let waiting = self
            .steps
            .iter()
            .any(|(s, o)| *s == LoginStep::WaitingForCallback && *o == StepOutcome::Running);
        self.login && offered && waiting
    }

    /// Why the last pasted address was refused, while no newer one was sent.
    pub fn paste_refused(&self) -> Option<&str> {
        self.steps.iter().find_map(|(s, _)| match s {
            LoginStep::PasteRejected { reason } => Some(reason.as_str()),
            _ => None,
        })
    }

    /// Records a step: a later report of the same step replaces the earlier one.
    pub fn record(&mut self, step: LoginStep, outcome: StepOutcome) {
        let same = |s: &LoginStep| std::mem::discriminant(s) == std::mem::discriminant(&step);
        match self.steps.iter_mut().find(|(s, _)| same(s)) {
            Some(entry) => *entry = (step, outcome),
            None => self.steps.push((step, outcome)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Wizard {
    pub name: Input,
    pub url: Input,
    pub client_id: Input,
    pub client_secret: Input,
    pub env_var: Input,
    pub header: Input,
    pub kind: AuthKind,
    pub focus: Field,
    /// Why the form was not accepted.
    pub error: Option<String>,
    pub phase: Phase,
    /// The address a browser on another machine ended on, being pasted.
    pub redirect: Input,
}

/// What the app should do with the wizard after a key.
pub struct Outcome {
    pub effect: Option<Effect>,
    pub close: bool,
}

impl Outcome {
    fn stay(effect: Option<Effect>) -> Self {
        Self {
            effect,
            close: false,
        }
    }
}

impl Default for Wizard {
    fn default() -> Self {
        Self::new()
    }
}

impl Wizard {
    pub fn new() -> Self {
        Self {
            name: Input::default(),
            url: Input::default(),
            client_id: Input::default(),
            client_secret: Input::default(),
            env_var: Input::default(),
            header: Input::default(),
            kind: AuthKind::OAuth,
            focus: Field::Name,
            error: None,
            phase: Phase::Form,
            redirect: Input::default(),
        }
    }

    /// A wizard that only follows a login of an existing connection (`l`, `R`).
    pub fn following(name: &str) -> Self {
        let mut w = Self::new();
        w.name = Input::new(name.to_string());
        w.phase = Phase::Running(Progress {
            name: name.to_string(),
            login: true,
            added_here: false,
            steps: Vec::new(),
            error: None,
        });
        w
    }

    pub fn input(&self, field: Field) -> Option<&Input> {
        match field {
            Field::Name => Some(&self.name),
            Field::Url => Some(&self.url),
            Field::ClientId => Some(&self.client_id),
            Field::ClientSecret => Some(&self.client_secret),
            Field::EnvVar => Some(&self.env_var),
            Field::Header => Some(&self.header),
            Field::Kind => None,
        }
    }

    fn input_mut(&mut self, field: Field) -> Option<&mut Input> {
        match field {
            Field::Name => Some(&mut self.name),
            Field::Url => Some(&mut self.url),
            Field::ClientId => Some(&mut self.client_id),
            Field::ClientSecret => Some(&mut self.client_secret),
            Field::EnvVar => Some(&mut self.env_var),
            Field::Header => Some(&mut self.header),
            Field::Kind => None,
        }
    }

    /// Whether unbound keys type into a field now.
    pub fn takes_text(&self) -> bool {
        match &self.phase {
            Phase::Form => self.focus != Field::Kind,
            Phase::Running(progress) => progress.awaits_paste(),
        }
    }

    pub fn edit(&mut self, request: InputRequest) {
        match &self.phase {
            Phase::Form => {
                if let Some(input) = self.input_mut(self.focus) {
                    input.handle(request);
                    self.error = None;
                }
            }
            Phase::Running(progress) if progress.awaits_paste() => {
                self.redirect.handle(request);
            }
            Phase::Running(_) => {}
        }
    }

    pub fn paste(&mut self, text: &str) {
        for ch in text.chars().filter(|c| !c.is_control()) {
            self.edit(InputRequest::InsertChar(ch));
        }
    }

    fn move_focus(&mut self, step: isize) {
        let fields = self.kind.fields();
        let at = fields.iter().position(|f| *f == self.focus).unwrap_or(0) as isize;
        let len = fields.len() as isize;
        self.focus = fields[((at + step).rem_euclid(len)) as usize];
    }

    fn cycle_kind(&mut self, step: isize) {
        let all = AuthKind::ALL;
        let at = all.iter().position(|k| *k == self.kind).unwrap_or(0) as isize;
        self.kind = all[((at + step).rem_euclid(all.len() as isize)) as usize];
        self.error = None;
    }

    /// Reacts to a key; `store` is the engine's latest view of the vault.
    pub fn command(&mut self, command: Command, store: &Store) -> Outcome {
        match &mut self.phase {
            Phase::Form => self.form_command(command, store),
            Phase::Running(progress) if progress.awaits_paste() => match command {
                Command::Submit if !self.redirect.value().trim().is_empty() => {
                    let address = Secret::new(self.redirect.value().trim());
                    self.redirect.reset();
                    // A new address: the refusal of the last one no longer applies.
                    progress
                        .steps
                        .retain(|(s, _)| !matches!(s, LoginStep::PasteRejected { .. }));
                    Outcome::stay(Effect::one(EngineCommand::PasteRedirect {
                        name: progress.name.clone(),
                        address,
                    }))
                }
                Command::Left => {
                    self.redirect.handle(InputRequest::GoToPrevChar);
                    Outcome::stay(None)
                }
                Command::Right => {
                    self.redirect.handle(InputRequest::GoToNextChar);
                    Outcome::stay(None)
                }
                _ => running_command(progress, command, store),
            },
            Phase::Running(progress) => running_command(progress, command, store),
        }
    }

    fn form_command(&mut self, command: Command, store: &Store) -> Outcome {
        match command {
            Command::Back | Command::Quit => {
                return Outcome {
                    effect: (command == Command::Quit).then_some(Effect::Quit(Vec::new())),
                    close: true,
                };
            }
            Command::NextField => self.move_focus(1),
            Command::PrevField => self.move_focus(-1),
            Command::Left if self.focus == Field::Kind => self.cycle_kind(-1),
            Command::Right if self.focus == Field::Kind => self.cycle_kind(1),
            Command::Left => self.edit(InputRequest::GoToPrevChar),
            Command::Right => self.edit(InputRequest::GoToNextChar),
            Command::Submit if self.kind.fields().last() != Some(&self.focus) => self.move_focus(1),
            Command::Submit => return self.submit(store),
            _ => {}
        }
        Outcome::stay(None)
    }

    fn submit(&mut self, store: &Store) -> Outcome {
        match self.validate(store) {
            Err((field, message)) => {
                self.focus = field;
                self.error = Some(message);
                Outcome::stay(None)
            }
            Ok((name, url, auth)) => {
                let mut commands = vec![EngineCommand::Add {
                    name: name.clone(),
                    url,
                    auth,
                }];
                let login = self.kind.logs_in();
                if login {
                    commands.push(EngineCommand::Login { name: name.clone() });
                }
                self.phase = Phase::Running(Progress {
                    name,
                    login,
                    added_here: true,
                    steps: Vec::new(),
                    error: None,
                });
                Outcome::stay(Some(Effect::Engine(commands)))
            }
        }
    }

    fn validate(&self, store: &Store) -> Result<(String, String, AddAuth), (Field, String)> {
        let name = self.name.value().trim().to_string();
        ConnectionName::from_str(&name).map_err(|e| (Field::Name, e.to_string()))?;
        if store.get(&name).is_some() {
            return Err((
                Field::Name,
                format!(
                    "a connection named '{name}' already exists: pick another name, or press l on it to log in again"
                ),
            ));
        }
        let url = self.url.value().trim().to_string();
        parse_upstream(&url).map_err(|e| (Field::Url, e.to_string()))?;
        let auth = match self.kind {
            AuthKind::OAuth => AddAuth::OAuth,
            AuthKind::NoAuth => AddAuth::None,
            AuthKind::Preregistered => {
                let client_id = self.client_id.value().trim().to_string();
                if client_id.is_empty() {
                    return Err((
                        Field::ClientId,
                        "give the client id from the provider's app settings".to_string(),
                    ));
                }
                let secret = self.client_secret.value();
                AddAuth::Preregistered {
                    client_id,
                    client_secret: (!secret.is_empty()).then(|| Secret::new(secret)),
                    redirect_uri: None,
                }
            }
            AuthKind::ApiKey => {
                let env_var = self.env_var.value().trim().to_string();
                let valid = env_var
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && env_var
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err((
                        Field::EnvVar,
                        format!(
                            "'{env_var}' is not an environment variable name: use letters, digits and '_', e.g. STRIPE_API_KEY"
                        ),
                    ));
                }
                let header = self.header.value().trim();
                let header = if header.is_empty() {
                    None
                } else {
                    ApiKeyHeader::from_str(header).map_err(|e| (Field::Header, e.to_string()))?;
                    Some(header.to_string())
                };
                AddAuth::ApiKey { env_var, header }
            }
        };
        Ok((name, url, auth))
    }
}

fn running_command(progress: &Progress, command: Command, store: &Store) -> Outcome {
    let status = progress.status(store);
    match command {
        Command::CopyLoginUrl => {
            let url = progress.steps.iter().find_map(|(s, _)| match s {
                LoginStep::BrowserOpened { url } => Some(url.clone()),
                _ => None,
            });
            Outcome::stay(url.map(|url| Effect::Clipboard(Secret::new(url))))
        }
        Command::Submit => match status {
            Status::Done => Outcome {
                effect: None,
                close: true,
            },
            Status::Failed { .. } if progress.login && store.get(&progress.name).is_some() => {
                Outcome::stay(Effect::one(EngineCommand::Login {
                    name: progress.name.clone(),
                }))
            }
            _ => Outcome::stay(None),
        },
        Command::Back | Command::Quit => {
            let mut commands = Vec::new();
            if progress.login && status != Status::Done {
                commands.push(EngineCommand::CancelLogin {
                    name: progress.name.clone(),
                });
            }
            // Added here and not signed in: nothing of it stays (the engine removes it
            // only while it has no token, so a sign-in that won the race is kept).
            if progress.added_here && progress.login && status != Status::Done {
                commands.push(EngineCommand::Abandon {
                    name: progress.name.clone(),
                });
            }
            let effect = if command == Command::Quit {
                Some(Effect::Quit(commands))
            } else {
                (!commands.is_empty()).then_some(Effect::Engine(commands))
            };
            Outcome {
                effect,
                close: true,
            }
        }
        _ => Outcome::stay(None),
    }
}
