//! One client configuration file held as an editable document: JSON (with the comments and
//! trailing commas VS Code allows) through a concrete syntax tree, TOML through
//! `toml_edit`. Both keep every byte the edit does not touch — comments, unknown keys,
//! other servers, indentation — so tether can add its entry to a file the user maintains.

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstRootNode};
use serde_json::Value;

use super::Format;

/// Where and why a file failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The file parses, but not into the shape a client expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(String);

/// One MCP server entry as found in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub name: String,
    /// Where in the file, when not the top-level server list (Claude Code's per-project
    /// entries: the project folder).
    pub scope: Option<String>,
    pub value: Value,
}

pub enum Document {
    Json {
        root: CstRootNode,
        servers_key: &'static str,
    },
    Toml {
        doc: toml_edit::DocumentMut,
        text: String,
    },
}

impl Document {
    /// Parses `text` (empty text is an empty document).
    pub fn parse(format: Format, text: &str) -> Result<Self, ParseFailure> {
        match format {
            Format::Json { servers_key } => {
                let root = CstRootNode::parse(text, &json_options()).map_err(|e| ParseFailure {
                    line: e.line_display(),
                    column: e.column_display(),
                    message: e.kind().to_string(),
                })?;
                Ok(Self::Json { root, servers_key })
            }
            Format::Toml => {
                let doc = text
                    .parse::<toml_edit::DocumentMut>()
                    .map_err(|e| toml_failure(text, &e))?;
                Ok(Self::Toml {
                    doc,
                    text: text.to_string(),
                })
            }
        }
    }

    /// Every MCP server entry in the file.
    pub fn servers(&self) -> Vec<Found> {
        let Some(value) = self.value() else {
            return Vec::new();
        };
        let key: &str = match self {
            Self::Json { servers_key, .. } => servers_key,
            Self::Toml { .. } => "mcp_servers",
        };
        let list = &value[key];
        let mut out = match nested(key, list) {
            Some(inner) => entries(&list[inner], None),
            None => entries(list, None),
        };
        // Claude Code keeps per-project servers under projects.<folder>.mcpServers.
        if let Some(projects) = value.get("projects").and_then(Value::as_object) {
            for (folder, project) in projects {
                out.extend(entries(&project[key], Some(folder)));
            }
        }
        out
    }

    /// The top-level entry called `name`, if any.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.servers()
            .into_iter()
            .find(|f| f.scope.is_none() && f.name == name)
            .map(|f| f.value)
    }

    /// Adds or replaces the top-level entry `name`; everything else stays as written.
    pub fn set(&mut self, name: &str, entry: &Value) -> Result<(), ShapeError> {
        match self {
            Self::Json { root, servers_key } => set_json(root, servers_key, name, entry),
            Self::Toml { doc, .. } => set_toml(doc, name, entry),
        }
    }

    /// The document as text, ending with a newline.
    pub fn render(&self) -> String {
        let mut text = match self {
            Self::Json { root, .. } => root.to_string(),
            Self::Toml { doc, .. } => doc.to_string(),
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    fn value(&self) -> Option<Value> {
        match self {
            Self::Json { root, .. } => root.to_serde_value(),
            Self::Toml { text, .. } => toml::from_str(text).ok(),
        }
    }
}

/// JSON as MCP clients accept it: comments and trailing commas (VS Code's JSONC), nothing
/// looser, so a file a client would reject is reported rather than "repaired".
fn json_options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

fn toml_failure(text: &str, e: &toml_edit::TomlError) -> ParseFailure {
    let at = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ParseFailure {
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

/// opencode 1.x keeps its servers straight under `mcp`, opencode 2 under `mcp.servers`. A
/// `servers` there that is not a server itself (a server has a `type`) is opencode 2's map,
/// and the servers are edited in it.
fn nested(servers_key: &str, servers: &Value) -> Option<&'static str> {
    let inner = servers.get("servers")?;
    (servers_key == "mcp" && inner.is_object() && inner.get("type").is_none()).then_some("servers")
}

fn entries(servers: &Value, scope: Option<&String>) -> Vec<Found> {
    servers
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(name, value)| Found {
                    name: name.clone(),
                    scope: scope.cloned(),
                    value: value.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set_json(
    root: &CstRootNode,
    servers_key: &str,
    name: &str,
    entry: &Value,
) -> Result<(), ShapeError> {
    let top = root
        .object_value_or_create()
        .ok_or_else(|| ShapeError("its top level is not a JSON object".into()))?;
    let mut servers = top
        .object_value_or_create(servers_key)
        .ok_or_else(|| ShapeError(format!("its '{servers_key}' is not a JSON object")))?;
    let current = root.to_serde_value().unwrap_or_default();
    if let Some(inner) = nested(servers_key, &current[servers_key]) {
        servers = servers.object_value(inner).ok_or_else(|| {
            ShapeError(format!("its '{servers_key}.{inner}' is not a JSON object"))
        })?;
    }
    match servers.get(name) {
        Some(prop) => prop.set_value(cst_input(entry)),
        None => {
            servers.append(name, cst_input(entry));
        }
    }
    Ok(())
}

fn cst_input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(a) => CstInputValue::Array(a.iter().map(cst_input).collect()),
        Value::Object(o) => {
            let mut fields: Vec<_> = o.iter().collect();
            fields.sort_by_key(|(k, _)| key_rank(k));
            CstInputValue::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.clone(), cst_input(v)))
                    .collect(),
            )
        }
    }
}

/// The order people write an entry's keys in: what it is, then how to reach it.
fn key_rank(key: &str) -> usize {
    [
        "type",
        "url",
        "httpUrl",
        "serverUrl",
        "command",
        "args",
        "env",
        "environment",
        "tools",
    ]
    .iter()
    .position(|k| *k == key)
    .unwrap_or(usize::MAX)
}

fn set_toml(doc: &mut toml_edit::DocumentMut, name: &str, entry: &Value) -> Result<(), ShapeError> {
    let fields: toml_edit::InlineTable = match entry {
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), toml_value(v))).collect(),
        _ => toml_edit::InlineTable::new(),
    };
    let servers = doc.entry("mcp_servers").or_insert_with(|| {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        toml_edit::Item::Table(t)
    });
    match servers {
        toml_edit::Item::Table(t) => {
            t.insert(name, toml_edit::Item::Table(fields.into_table()));
        }
        toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
            t.insert(name, fields.into());
        }
        _ => return Err(ShapeError("its 'mcp_servers' is not a table".into())),
    }
    Ok(())
}

fn toml_value(value: &Value) -> toml_edit::Value {
    match value {
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => n
            .as_i64()
            .map(toml_edit::Value::from)
            .unwrap_or_else(|| n.as_f64().unwrap_or_default().into()),
        Value::Array(a) => a
            .iter()
            .map(toml_value)
            .collect::<toml_edit::Array>()
            .into(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), toml_value(v)))
            .collect::<toml_edit::InlineTable>()
            .into(),
        Value::String(s) => s.as_str().into(),
        Value::Null => "".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VSCODE: &str = r#"{
  // my servers
  "servers": {
    "other": { "type": "stdio", "command": "x", }, /* keep */
  },
  "inputs": [],
}
"#;

    #[test]
    fn json_edit_keeps_everything_else() {
        let mut doc = Document::parse(
            Format::Json {
                servers_key: "servers",
            },
            VSCODE,
        )
        .unwrap();
        doc.set(
            "linear",
            &json!({"type": "http", "url": "http://127.0.0.1:7878/s/x/mcp"}),
        )
        .unwrap();
        let out = doc.render();
        assert!(
            out.contains("// my servers") && out.contains("/* keep */"),
            "{out}"
        );
        assert!(
            out.contains(r#""other": { "type": "stdio", "command": "x", }"#),
            "{out}"
        );
        let again = Document::parse(
            Format::Json {
                servers_key: "servers",
            },
            &out,
        )
        .unwrap();
        assert_eq!(
            again.get("linear").unwrap()["url"],
            "http://127.0.0.1:7878/s/x/mcp"
        );
        assert_eq!(again.servers().len(), 2);
    }

    #[test]
    fn toml_edit_keeps_comments_and_tables() {
        let text = "# codex\nmodel = \"o3\"\n\n[mcp_servers.docs]\ncommand = \"docs\" # inline\n";
        let mut doc = Document::parse(Format::Toml, text).unwrap();
        doc.set("linear", &json!({"url": "http://127.0.0.1:7878/s/x/mcp"}))
            .unwrap();
        let out = doc.render();
        assert!(out.starts_with(text), "{out}");
        assert!(out.contains("[mcp_servers.linear]\nurl = \"http://127.0.0.1:7878/s/x/mcp\""));
    }

    fn mcp() -> Format {
        Format::Json { servers_key: "mcp" }
    }

    #[test]
    fn opencode_jsonc_keeps_its_comments() {
        let text = "// opencode\n{\n  \"$schema\": \"https://opencode.ai/config.json\", // schema\n  \"mcp\": {\n    /* mine */\n    \"docs\": { \"type\": \"local\", \"command\": [\"docs\"] },\n  },\n}\n";
        let mut doc = Document::parse(mcp(), text).unwrap();
        doc.set(
            "linear",
            &json!({"type": "remote", "url": "http://127.0.0.1:7878/s/x/mcp"}),
        )
        .unwrap();
        let out = doc.render();
        for kept in [
            "// opencode\n",
            "// schema\n",
            "/* mine */",
            r#""docs": { "type": "local", "command": ["docs"] },"#,
        ] {
            assert!(out.contains(kept), "lost {kept:?}:\n{out}");
        }
        let again = Document::parse(mcp(), &out).unwrap();
        assert_eq!(again.get("linear").unwrap()["type"], "remote");
        assert_eq!(again.servers().len(), 2);
    }

    #[test]
    fn opencode_2_servers_are_one_level_deeper() {
        let text = r#"{"mcp": {"servers": {"docs": {"type": "local", "command": ["docs"]}}}}"#;
        let mut doc = Document::parse(mcp(), text).unwrap();
        assert_eq!(doc.servers()[0].name, "docs");
        doc.set("linear", &json!({"type": "remote", "url": "u"}))
            .unwrap();
        let out = doc.render();
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["mcp"]["servers"]["linear"]["url"], "u", "{out}");
        assert!(value["mcp"].get("linear").is_none(), "{out}");
        // A 1.x server that happens to be called "servers" stays a server.
        let old = r#"{"mcp": {"servers": {"type": "remote", "url": "v"}}}"#;
        let doc = Document::parse(mcp(), old).unwrap();
        assert_eq!(doc.get("servers").unwrap()["url"], "v");
    }

    #[test]
    fn qwen_keeps_its_version_key() {
        let text = "{\n  \"$version\": 2,\n  \"ui\": {\"theme\": \"dark\"}\n}\n";
        let format = Format::Json {
            servers_key: "mcpServers",
        };
        let mut doc = Document::parse(format, text).unwrap();
        doc.set("linear", &json!({"httpUrl": "u"})).unwrap();
        let out = doc.render();
        assert!(
            out.starts_with("{\n  \"$version\": 2,\n  \"ui\": {\"theme\": \"dark\"},"),
            "{out}"
        );
        assert_eq!(
            Document::parse(format, &out)
                .unwrap()
                .get("linear")
                .unwrap()["httpUrl"],
            "u"
        );
    }

    #[test]
    fn failures_name_the_position() {
        let e = Document::parse(
            Format::Json {
                servers_key: "mcpServers",
            },
            "{\n  \"mcpServers\": {\n    \"a\": 1\n    \"b\": 2\n}",
        )
        .err()
        .unwrap();
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (3, 11, "Expected comma")
        );
        let e = Document::parse(Format::Toml, "a = 1\n[mcp_servers\n")
            .err()
            .unwrap();
        assert_eq!(e.line, 2, "{e:?}");
    }
}
