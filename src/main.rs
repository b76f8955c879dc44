//! The `ecr-proxy` binary: parse the command line, run it, and exit with its status. The only
//! place that exits the process.
#![forbid(unsafe_code)]

use clap::Parser;
use ecr_proxy::cli::{self, Cli};

#[tokio::main]
async fn main() {
    let args = Cli::parse();
    cli::init_logging(args.log_format);
    if let Err(e) = cli::run(args).await {
        eprintln!("ecr-proxy: {e}");
        std::process::exit(1);
    }
}
