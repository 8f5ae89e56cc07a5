//! The `conn-flood` binary: parses the options and runs the coordinator (or, with `--worker`,
//! a worker process of a larger run). The table goes to stdout, then one JSON line; progress
//! goes to stderr.

use std::process::ExitCode;

use clap::Parser;
use conn_flood::{Options, fleet};

fn main() -> ExitCode {
    let opts = Options::parse();
    let result = if opts.worker {
        fleet::worker_main()
    } else {
        let exe = std::env::current_exe().ok();
        conn_flood::run(&opts, exe.as_deref()).map(|summary| {
            print!("{}", summary.table());
            println!("{}", summary.json_line());
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conn-flood: {e:#}");
            ExitCode::FAILURE
        }
    }
}
