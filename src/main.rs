//! `ancm`: run a site folder like IIS + the ASP.NET Core Module would, on any OS.
//!
//! ```text
//! ancm run examples/site                 # http://127.0.0.1:8080/
//! ancm check examples/site --json        # validate web.config
//! ancm doctor examples/site              # why won't it start?
//! ancm run examples/site --access-log logs --admin-listen 127.0.0.1:9180
//! ancm status                            # what it is doing (from 127.0.0.1:9180)
//! ```
#![forbid(unsafe_code)]
// A binary: `pub` marks what a module offers the rest of the crate.
#![allow(unreachable_pub)]
// clap turns the doc comments of `cli` into `--help` text, where `<requestLimits maxUrl>` is
// meant as written, not as HTML.
#![allow(rustdoc::invalid_html_tags)]

mod admin;
mod check;
mod cli;
mod connection;
mod doctor;
mod drain;
mod gateway;
mod keep_args;
mod observe;
mod proxy_protocol;
mod reload;
mod server;
mod status;
mod systemd;
mod tls;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_args();
    match cli.command {
        cli::Command::Check(args) => {
            let values = if args.show_values {
                check::EnvValues::Shown
            } else {
                check::EnvValues::Hidden
            };
            check::run(&args.path, args.json, values)
        }
        cli::Command::Doctor(args) => doctor::run(&args.site_dir, args.json),
        cli::Command::Status(args) => status::run(&args),
        cli::Command::Run(args) => {
            let threads = args
                .threads
                .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
                .unwrap_or(1)
                .max(1);
            match gateway::run(*args, threads) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("ancm: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
