//! `mqtt pub` / `mqtt sub` / `mqtt rr`: mosquitto_pub, mosquitto_sub and mosquitto_rr, with
//! the same flags, output and exit codes, over `mqtt-client-tokio`. See `mqtt --help` and
//! the `examples::cli` module. Install with `cargo install --path examples --bin mqtt`.

use std::process::ExitCode;

use examples::cli::args::Cli;
use examples::cli::exit::Exit;

fn main() -> ExitCode {
    let cli = match Cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            if let Some(message) = examples::cli::args::mosquitto_words(&e) {
                examples::cli::trace::print_stderr(&message);
            } else {
                let _ = e.print();
            }
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Success.into()
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            examples::cli::trace::print_stderr(&format!("Error: cannot start the runtime: {e}"));
            return Exit::Error.into();
        }
    };
    runtime.block_on(examples::cli::run(cli)).into()
}
