//! The `ecr-proxy` binary: parse the command line, run it, print its report, and exit with its
//! status. The only place that prints or exits the process.
#![forbid(unsafe_code)]

use ecr_proxy::cli::{self, cache_cmd, Cli};
use std::io::IsTerminal;

/// jemalloc: upload parts are large short-lived buffers, and glibc's malloc kept freed ones in
/// per-thread arenas (a 1 GiB push peaked at 149 MiB with glibc, 113 MiB with mimalloc, 77 MiB
/// with jemalloc; README § Performance).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() {
    let args = Cli::parse_layered(std::env::args_os()).unwrap_or_else(|e| e.exit());
    cli::init_logging(args.log_format, args.default_log_level());
    // Progress (`cache warm`) goes to stderr, redrawn in place when it is a terminal.
    let progress = cache_cmd::Output {
        writer: Box::new(std::io::stderr()),
        live: std::io::stderr().is_terminal(),
    };
    match cli::run(args, progress).await {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("ecr-proxy: {e}");
            std::process::exit(1);
        }
    }
}
