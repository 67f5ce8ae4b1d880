//! `WWW-Authenticate` challenges (RFC 7235 §4.1, RFC 6750 §3): a tolerant parser for every
//! header value a server sends, and the Bearer parameters discovery acts on.
//!
//! The grammar is `1#challenge` where `challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`,
//! so commas separate both challenges and the parameters inside one. The rule that keeps them
//! apart: a token followed by `=` is a parameter of the current challenge; a token followed by
//! anything else (whitespace, a comma, the end) starts a new challenge. Servers in the field also
//! send several headers, unquoted URLs and missing commas; the parser reads what it can and
//! skips what it cannot, and never panics.

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};

/// One challenge: a scheme with either auth-params or a token68.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent (compare with [`Challenge::is_bearer`] or case-insensitively).
    pub scheme: String,
    /// Parameters in order: names lowercased, values unquoted and unescaped.
    pub params: Vec<(String, String)>,
    pub token68: Option<String>,
}

impl Challenge {
    /// The first value of parameter `name` (case-insensitive); RFC 6750 §3 forbids repeats.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }
}

/// What a Bearer challenge tells a client that has no token yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BearerChallenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The first Bearer challenge among all `WWW-Authenticate` headers, in the order sent.
pub fn bearer(headers: &HeaderMap) -> Option<BearerChallenge> {
    // Header values may carry obs-text; read them lossily rather than drop the header.
    let values: Vec<String> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let challenge = parse(&refs).into_iter().find(Challenge::is_bearer)?;
    let get = |name: &str| challenge.param(name).map(str::to_string);
    Some(BearerChallenge {
        resource_metadata: get("resource_metadata"),
        scope: get("scope"),
        error: get("error"),
        error_description: get("error_description"),
    })
}

/// Every challenge in every header value, in order. Unreadable fragments are skipped.
pub fn parse(header_values: &[&str]) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in header_values {
        Parser::new(value).run(&mut out);
    }
    out
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token68_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/".contains(c)
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }

    fn skip_ws(&mut self) -> bool {
        !self.take_while(is_ws).is_empty()
    }

    fn run(mut self, out: &mut Vec<Challenge>) {
        let mut current: Option<Challenge> = None;
        loop {
            // List elements may be empty (`,,`) and surrounded by whitespace.
            self.take_while(|c| is_ws(c) || c == ',');
            if self.peek().is_none() {
                break;
            }
            let token = self.take_while(is_tchar);
            if token.is_empty() {
                // Not the start of a scheme or a parameter: skip this list element.
                self.skip_element();
                continue;
            }
            let before_ws = self.pos;
            self.skip_ws();
            if self.peek() == Some('=') {
                self.bump();
                let value = self.value();
                match (current.as_mut(), value) {
                    (Some(c), Some(v)) => c.params.push((token.to_ascii_lowercase(), v)),
                    // A parameter with no scheme before it, or an unreadable value.
                    _ => self.skip_element(),
                }
                continue;
            }
            // A token not followed by `=` names a new challenge.
            self.pos = before_ws;
            out.extend(current.take());
            let mut challenge = Challenge {
                scheme: token.to_string(),
                params: Vec::new(),
                token68: None,
            };
            if self.skip_ws() {
                challenge.token68 = self.token68();
            }
            current = Some(challenge);
        }
        out.extend(current);
    }

    /// A token68 right after the scheme, only when it stands alone in its list element
    /// (`Basic abc==`); `realm="x"` or `realm=x` there are parameters instead.
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        let body = self.take_while(is_token68_char);
        let pads = self.take_while(|c| c == '=');
        self.skip_ws();
        let alone = matches!(self.peek(), None | Some(','));
        if !body.is_empty() && alone {
            return Some(format!("{body}{pads}"));
        }
        self.pos = start;
        None
    }

    /// A parameter value after `=`: a quoted-string or a bare run of characters. Bare values
    /// are read up to whitespace or a comma, wider than `token`, because servers send
    /// unquoted URLs (`resource_metadata=https://…`).
    fn value(&mut self) -> Option<String> {
        self.skip_ws();
        match self.peek() {
            Some('"') => {
                self.bump();
                self.quoted_rest()
            }
            _ => Some(
                self.take_while(|c| !is_ws(c) && c != ',' && c != '"')
                    .to_string(),
            ),
        }
    }

    /// The rest of a quoted-string after its opening quote, with quoted-pairs unescaped;
    /// `None` when the closing quote never comes.
    fn quoted_rest(&mut self) -> Option<String> {
        let mut v = String::new();
        loop {
            match self.bump()? {
                '"' => return Some(v),
                '\\' => v.push(self.bump()?),
                c => v.push(c),
            }
        }
    }

    /// Skips to the next comma outside a quoted-string: the recovery point after junk.
    fn skip_element(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ',' => return,
                '"' => {
                    self.bump();
                    let _ = self.quoted_rest();
                }
                _ => {
                    self.bump();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
