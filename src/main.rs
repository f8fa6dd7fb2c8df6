//! The `coinstaker` binary: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = coinstaker::cli::Cli::parse();
    coinstaker::cli::init_logging();
    coinstaker::cli::run(cli).await
}
