//! `dsan inspect`: what a set of DICOM files, folders and .zip archives
//! holds, as JSON (the library's `StudyReport`).

use std::path::PathBuf;

use crate::data::files::{Readers, read_files};

/// Prints the series found under `paths` (the default one marked), their HU
/// statistics, and every skipped file with the reason.
pub fn inspect(paths: &[PathBuf]) -> anyhow::Result<()> {
    let report = read_files(paths, Readers::AllCores)?.report();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
