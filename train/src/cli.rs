//! The command line of `dsan`: its subcommands and their options.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::compute::Backend;
use crate::data::phantoms::phantoms;
use crate::data::slice_images::SliceImages;
use crate::evaluation::eval::eval_command;
use crate::export::{ExportOptions, export_command};
use crate::inspect;
use crate::predict;
use crate::training::command::{DataSource, TrainOptions, train_command};
use crate::training::cv::cv_command;

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
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
        /// Folder for diagnosis.json, the attention maps and lung mask as
        /// NIfTI (.nii.gz, attention as value x 255) and mosaic.png.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        images: SliceImages,
    },
    /// Write synthetic chest CT cases (CAP, COVID-19 and, with --classes 3,
    /// normal, in turn) as DICOM series, with NIfTI infection masks and labels.csv.
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
        /// 2: CAP and COVID-19 (the paper's task); 3: also lesion-free lungs.
        #[arg(long, default_value_t = 2)]
        classes: usize,
    },
    /// Train both branches (uniform and size-balanced sampling, CE + lambda *
    /// attention loss, Adam, early stopping on validation AUC) and write the
    /// run (config, logs, checkpoints, best model) into a folder.
    Train {
        #[command(flatten)]
        options: TrainOptions,
        /// Run folder.
        #[arg(long)]
        out: PathBuf,
        /// Continue the run in --out from its last checkpoint.
        #[arg(long)]
        resume: bool,
    },
    /// K-fold cross-validation split by patient: per-branch and ensemble
    /// metrics as mean +- sd over folds, overall and by infection size.
    Cv {
        #[command(flatten)]
        options: TrainOptions,
        /// Output folder (one run per fold, cv.json, report.md).
        #[arg(long)]
        out: PathBuf,
        /// Number of folds.
        #[arg(long, default_value_t = 5)]
        folds: usize,
    },
    /// Score a trained model on a labelled data folder (metrics.json, report.md).
    Eval {
        /// Model card (JSON, weights beside it).
        #[arg(long)]
        weights: PathBuf,
        #[command(flatten)]
        source: DataSource,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Compute backend.
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
    },
    /// Write a run's best model as weights + model card (SHA-256, data
    /// summary, validation metrics and those of `dsan eval`).
    Export {
        #[command(flatten)]
        options: ExportOptions,
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

/// Parses the command line, runs the subcommand and reports its error.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    crate::compute::kernel_cache::keep_compiled_kernels();
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
            classes,
        } => phantoms(&out, n, seed, slices, size, classes),
        Command::Train {
            options,
            out,
            resume,
        } => train_command(&options, &out, resume),
        Command::Cv {
            options,
            out,
            folds,
        } => cv_command(&options, &out, folds),
        Command::Eval {
            weights,
            source,
            out,
            backend,
        } => eval_command(&weights, &source, &out, backend),
        Command::Export { options } => export_command(&options),
        Command::Predict {
            paths,
            weights,
            preset,
            seed,
            series,
            backend,
            out,
            images,
        } => predict::predict(&predict::PredictArgs {
            paths,
            weights,
            preset,
            seed,
            series,
            out,
            backend,
            images,
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
