//! tether as a macOS launch agent: `~/Library/LaunchAgents/dev.tether.tether.plist` runs
//! `tether serve --service launchd` at login (`RunAtLoad`) and again whenever it exits
//! (`KeepAlive`), with its output in tether's state folder. Built and tested on Linux (the
//! plist is written and parsed back); the `launchctl` steps are not yet tried on a Mac.

use std::path::{Path, PathBuf};

use super::unit::{OnDisk, Spec, fingerprint};

pub const LABEL: &str = "dev.tether.tether";
/// The key that carries the fingerprint of the rest of the plist.
const MARK: &str = "TetherFingerprint";

pub fn plist_path() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| anyhow::anyhow!("cannot find your home folder: set HOME"))?;
    Ok(PathBuf::from(home)
        .join("Library/LaunchAgents")
        .join(format!("{LABEL}.plist")))
}

fn dictionary(spec: &Spec, log: &Path) -> plist::Dictionary {
    let mut args = vec![plist::Value::from(
        spec.binary.to_string_lossy().into_owned(),
    )];
    args.extend(
        spec.arguments("launchd")
            .into_iter()
            .map(plist::Value::from),
    );
    let mut d = plist::Dictionary::new();
    d.insert("Label".into(), LABEL.into());
    d.insert("ProgramArguments".into(), plist::Value::Array(args));
    if let Some(home) = &spec.home {
        let mut env = plist::Dictionary::new();
        env.insert(
            "TETHER_HOME".into(),
            home.to_string_lossy().into_owned().into(),
        );
        d.insert("EnvironmentVariables".into(), plist::Value::Dictionary(env));
    }
    d.insert("RunAtLoad".into(), true.into());
    d.insert("KeepAlive".into(), true.into());
    d.insert("ProcessType".into(), "Background".into());
    let log = log.to_string_lossy().into_owned();
    d.insert("StandardOutPath".into(), log.clone().into());
    d.insert("StandardErrorPath".into(), log.into());
    d
}

fn to_xml(d: &plist::Dictionary) -> anyhow::Result<String> {
    let mut out = Vec::new();
    plist::Value::Dictionary(d.clone()).to_writer_xml(&mut out)?;
    Ok(String::from_utf8(out)?)
}

/// The launch agent tether writes for `spec`, logging to `log`.
pub fn render(spec: &Spec, log: &Path) -> anyhow::Result<String> {
    let mut d = dictionary(spec, log);
    let print = fingerprint(&to_xml(&d)?);
    d.insert(MARK.into(), print.into());
    to_xml(&d)
}

/// Whether `text` is a launch agent tether wrote, unchanged since.
pub fn unchanged(text: &str) -> bool {
    let Ok(plist::Value::Dictionary(mut d)) = plist::from_bytes::<plist::Value>(text.as_bytes())
    else {
        return false;
    };
    let Some(plist::Value::String(print)) = d.remove(MARK) else {
        return false;
    };
    to_xml(&d).is_ok_and(|xml| fingerprint(&xml) == print)
}

pub fn on_disk(path: &Path) -> std::io::Result<OnDisk> {
    OnDisk::read(path, unchanged)
}

/// The program and arguments of a launch agent, for `status`.
pub fn program(text: &str) -> Option<Vec<String>> {
    let plist::Value::Dictionary(d) = plist::from_bytes::<plist::Value>(text.as_bytes()).ok()?
    else {
        return None;
    };
    let args = d.get("ProgramArguments")?.as_array()?;
    args.iter()
        .map(|a| a.as_string().map(str::to_string))
        .collect()
}

/// The launchd domain of this user's agents.
pub fn domain() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::getuid() };
    format!("gui/{uid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plist_parses_back_to_what_was_meant() {
        let spec = Spec {
            binary: PathBuf::from("/Applications/tether dir/tether"),
            home: Some(PathBuf::from("/Users/ada/tether")),
            bind: None,
        };
        let text = render(&spec, Path::new("/Users/ada/Library/Logs/tether.log")).unwrap();
        let value: plist::Value = plist::from_bytes(text.as_bytes()).unwrap();
        let d = value.as_dictionary().unwrap();
        assert_eq!(d.get("Label").and_then(|v| v.as_string()), Some(LABEL));
        assert_eq!(d.get("RunAtLoad").and_then(|v| v.as_boolean()), Some(true));
        assert_eq!(d.get("KeepAlive").and_then(|v| v.as_boolean()), Some(true));
        assert_eq!(
            program(&text).unwrap(),
            [
                "/Applications/tether dir/tether",
                "serve",
                "--service",
                "launchd"
            ]
        );
        let env = d
            .get("EnvironmentVariables")
            .unwrap()
            .as_dictionary()
            .unwrap();
        assert_eq!(
            env.get("TETHER_HOME").and_then(|v| v.as_string()),
            Some("/Users/ada/tether")
        );
        assert!(!text.contains("TETHER_VAULT_KEY"));
        assert!(unchanged(&text));
        assert!(!unchanged(&text.replace("<true/>", "<false/>")));
    }
}
