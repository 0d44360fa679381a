mod cli;

use clap::Parser;

fn main() {
    // Errors are printed as one line, never with a backtrace; without this,
    // RUST_BACKTRACE=1 in the caller's environment makes every error walk
    // the stack (anyhow captures one), which in the static non-PIE release
    // first sorts all of the unwinder's frame tables: ~14 M instructions.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = cli::parse_fast(&args).unwrap_or_else(|| cli::Cli::parse_from(args));
    let format = match cli.log_format {
        cli::LogFormat::Text => berth::log::Format::Text,
        cli::LogFormat::Json => berth::log::Format::Json,
    };
    if let Err(e) = berth::log::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("berth: --log: {e}");
        std::process::exit(1);
    }
    let logged_to_file = cli.log.is_some();
    match cli.dispatch() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // Library errors already name their cause in one line.
            let msg = e.to_string();
            berth::log::error(&msg);
            if logged_to_file {
                eprintln!("berth: {msg}");
            }
            std::process::exit(cli::exit_code(&e));
        }
    }
}
