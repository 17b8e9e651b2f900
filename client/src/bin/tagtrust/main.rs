//! `tagtrust`: sign and resolve container image tags with TUF.
//! Argument parsing, dispatch and output only; the work is in the library.
//!
//! * `args`: the command line as clap reads it.
//! * `commands`: one function per subcommand, grouped by family.
//! * `environment`: what the CLI reads from its environment and terminal.
//! * `render`: results as text or JSON, notices, warnings and the error line.

mod args;
mod commands;
mod environment;
mod render;

use clap::Parser;

/// Exit codes: 0 done (and `--help`, `--version`), 1 the command failed,
/// 2 the arguments are wrong.
fn main() {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "tagtrust: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            std::process::exit(2);
        }
    };
    let result = commands::Invocation::new(cli.server, cli.output)
        .and_then(|invocation| commands::run(&invocation, cli.command));
    if let Err(e) = result {
        render::error(&e);
        std::process::exit(1);
    }
}
