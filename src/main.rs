//! The `ecr-proxy` binary: parse the command line, run it, and exit with its status. The only
//! place that exits the process.
#![forbid(unsafe_code)]

use ecr_proxy::cli::{self, Cli};

/// jemalloc: upload parts are large short-lived buffers, and glibc's malloc kept freed ones in
/// per-thread arenas (a 1 GiB push peaked at 149 MiB with glibc, 113 MiB with mimalloc, 77 MiB
/// with jemalloc; README § Performance).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() {
    let args = Cli::parse_layered(std::env::args_os()).unwrap_or_else(|e| e.exit());
    cli::init_logging(args.log_format);
    if let Err(e) = cli::run(args).await {
        eprintln!("ecr-proxy: {e}");
        std::process::exit(1);
    }
}
