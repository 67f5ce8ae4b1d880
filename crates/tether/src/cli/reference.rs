//! `tether completions SHELL` and `tether man`: the shell completion scripts and the man
//! page, generated at run time from the clap definition so they can never disagree with the
//! commands this binary actually has.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::aot::Shell;
use clap_mangen::Man;

use super::{Cli, CompletionShell};

/// The name completions are registered under and the man page is titled with.
const BIN: &str = "tether";

pub fn completions(shell: CompletionShell) -> anyhow::Result<()> {
    write_stdout(&completion_script(shell))
}

pub fn man() -> anyhow::Result<()> {
    write_stdout(&man_page()?)
}

/// The completion script for `shell`, completing every subcommand, option and choice.
fn completion_script(shell: CompletionShell) -> Vec<u8> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::aot::generate(shell, &mut Cli::command(), BIN, &mut script);
    script
}

/// One page for the whole command line: tether's own synopsis and options, then a
/// COMMANDS section with every subcommand's synopsis, description and options.
///
/// clap_mangen on its own lists the subcommands as `tether-add(1)` and so on, pages that
/// only exist if someone installs one file per subcommand; `tether man > tether.1` is a
/// single file, so the subcommands are folded into it instead.
fn man_page() -> std::io::Result<Vec<u8>> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let mut page = title(&cli);
    let top = Man::new(cli.clone());
    let mut sections = Vec::new();
    top.render_name_section(&mut sections)?;
    top.render_synopsis_section(&mut sections)?;
    top.render_description_section(&mut sections)?;
    top.render_options_section(&mut sections)?;
    append(&mut page, &sections, Keep::Headings);
    page.extend_from_slice(b".SH COMMANDS\n");
    for command in leaf_commands(&cli) {
        command_entry(command, &mut page)?;
    }
    let mut version = Vec::new();
    top.render_version_section(&mut version)?;
    append(&mut page, &version, Keep::Headings);
    Ok(page)
}

/// The page's preamble and `.TH` line, written here because clap_mangen drops an empty
/// date argument, which shifts the source and manual into the wrong fields, and repeats
/// the preamble with every section rendered on its own.
fn title(cli: &clap::Command) -> Vec<u8> {
    let version = cli.get_version().unwrap_or_default();
    let preamble = PREAMBLE.concat();
    format!("{preamble}.TH TETHER 1 \"\" \"tether {version}\" \"User Commands\"\n").into_bytes()
}

/// roff's apostrophe string (`\*(Aq`), which clap_mangen's text uses for every `'`.
const PREAMBLE: [&str; 2] = [".ie \\n(.g .ds Aq \\(aq\n", ".el .ds Aq '\n"];

/// Whether a rendered piece keeps its `.SH` headings (tether's own sections) or loses
/// them (a subcommand's, which sits under one `.SS` heading of its own).
#[derive(PartialEq)]
enum Keep {
    Headings,
    Body,
}

/// Add a piece rendered by clap_mangen to the page, without its copy of the preamble.
fn append(page: &mut Vec<u8>, piece: &[u8], keep: Keep) {
    for line in piece.split_inclusive(|&b| b == b'\n') {
        let preamble = PREAMBLE.iter().any(|p| p.as_bytes() == line);
        let heading = line.starts_with(b".SH ");
        if preamble || (heading && keep == Keep::Body) {
            continue;
        }
        page.extend_from_slice(line);
    }
}

/// Every runnable subcommand, depth first: a group such as `import` has no entry of its
/// own, only its subcommands (`import mcp-remote`).
fn leaf_commands(cmd: &clap::Command) -> Vec<&clap::Command> {
    let mut leaves = Vec::new();
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        if sub.has_subcommands() {
            leaves.extend(leaf_commands(sub));
        } else {
            leaves.push(sub);
        }
    }
    leaves
}

/// A subcommand as a subsection: its synopsis, description and options.
fn command_entry(command: &clap::Command, page: &mut Vec<u8>) -> std::io::Result<()> {
    let name = command.get_bin_name().unwrap_or_else(|| command.get_name());
    writeln!(page, ".SS \"{name}\"")?;
    // --theme and --help apply to every command: said once, at the top of the page.
    let own_args = command.clone().mut_args(|arg| {
        let shared = arg.is_global_set() || arg.get_id() == "help";
        arg.hide(shared)
    });
    let man = Man::new(own_args);
    let mut body = Vec::new();
    man.render_synopsis_section(&mut body)?;
    body.extend_from_slice(b".PP\n");
    man.render_description_section(&mut body)?;
    body.extend_from_slice(b".PP\n");
    man.render_options_section(&mut body)?;
    append(page, &body, Keep::Body);
    Ok(())
}

/// Write the whole answer at once; a closed pipe has already been made to end the process
/// quietly (see `exit_quietly_on_closed_pipe`), any other failure is reported.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}
