//! `dsan`: the native companion of the DSAN-CT page. It inspects DICOM data,
//! reads model cards, diagnoses a CT with the page's pipeline and runs the
//! model self-check; training, evaluation and export come next
//! (see the project's issues).

mod commands;
mod files;
mod inspect;
mod outputs;
mod phantoms;
mod predict;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train, evaluate and export DSAN-CT models (native).
#[derive(Parser, Debug)]
#[command(name = "dsan", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a human summary of a model card and check its weights file.
    ModelInfo {
        /// The model card (JSON); the weights file is looked up beside it.
        card: PathBuf,
    },
    /// List the DICOM series in files, folders (recursively) and .zip archives,
    /// as JSON: the default series marked, HU statistics, and skipped files.
    Inspect {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Diagnose a CT (DICOM files, folders, .zip archives or a NIfTI volume)
    /// and print the result as JSON.
    Predict {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Model card (JSON, weights beside it); without it, an untrained
        /// model with seeded random weights, labelled as such.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Network preset of the untrained model.
        #[arg(long, value_enum, default_value_t = commands::Preset::WebDefault)]
        preset: commands::Preset,
        /// Seed of the untrained model.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Series to diagnose (index in `dsan inspect`'s list); the default series otherwise.
        #[arg(long)]
        series: Option<usize>,
        /// Compute backend.
        #[arg(long, value_enum, default_value_t = predict::Backend::Cpu)]
        backend: predict::Backend,
        /// Folder for diagnosis.json, the attention maps and lung mask as
        /// NIfTI (.nii.gz, attention as value x 255) and mosaic.png.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write synthetic chest CT cases (alternating CAP and COVID-19) as DICOM
    /// series, with NIfTI infection masks and labels.csv.
    Phantoms {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Number of cases.
        #[arg(long, default_value_t = 4)]
        n: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Slices per case (over 300 mm).
        #[arg(long, default_value_t = 100)]
        slices: usize,
        /// Rows and columns per slice (over 358.4 mm).
        #[arg(long, default_value_t = 256)]
        size: usize,
    },
    /// Run the seeded random model on the synthetic phantom (CPU backend) and
    /// print its outputs as JSON: the reference the browser test compares with.
    SelfCheck {
        /// Network preset.
        #[arg(long, value_enum, default_value_t = commands::Preset::Tiny)]
        preset: commands::Preset,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::ModelInfo { card } => commands::model_info(&card),
        Command::SelfCheck { preset, seed } => commands::self_check(preset, seed),
        Command::Inspect { paths } => inspect::inspect(&paths),
        Command::Phantoms {
            out,
            n,
            seed,
            slices,
            size,
        } => phantoms::phantoms(&out, n, seed, slices, size),
        Command::Predict {
            paths,
            weights,
            preset,
            seed,
            series,
            backend,
            out,
        } => predict::predict(&predict::PredictArgs {
            paths,
            weights,
            preset,
            seed,
            series,
            out,
            backend,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dsan: {error:#}");
            ExitCode::FAILURE
        }
    }
}
