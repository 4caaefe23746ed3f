//! `mqtt pub` / `mqtt sub`: mosquitto_pub and mosquitto_sub, with the same flags, over
//! `mqtt-client-tokio`. See `mqtt --help` and the `examples::cli` module.

use std::process::ExitCode;

use examples::cli::args::Cli;
use examples::cli::exit::Exit;

fn main() -> ExitCode {
    let cli = match Cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
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
            eprintln!("cannot start the runtime: {e}");
            return Exit::Error.into();
        }
    };
    runtime.block_on(examples::cli::run(cli)).into()
}
