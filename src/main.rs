use clap::Parser;
use std::process::ExitCode;
use tiny_diffusion::cli::{Cli, run};

fn main() -> ExitCode {
    run(Cli::parse())
}
