//! The `ecr-proxy` binary: parse the command line, run it, and exit with its status. The only
//! place that exits the process.
#![forbid(unsafe_code)]

use clap::Parser;
use ecr_proxy::cli::{self, Cli};

/// mimalloc returns freed part buffers to the OS promptly; glibc's malloc keeps them in
/// per-thread arenas, which more than doubled the peak RSS of a push (see README § Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args = Cli::parse();
    cli::init_logging(args.log_format);
    if let Err(e) = cli::run(args).await {
        eprintln!("ecr-proxy: {e}");
        std::process::exit(1);
    }
}
