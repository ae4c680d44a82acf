//! The `spis` binary: parse the command line and hand over to the library.

fn main() -> std::process::ExitCode {
    let cli = spis::config::Cli::parse_with_defaults();
    match spis::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One clear sentence, with its causes, for the person who started us.
            eprintln!("spis: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
