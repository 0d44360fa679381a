mod cli;

use clap::Parser;

fn main() {
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
