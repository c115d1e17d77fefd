//! `dsan inspect`: what a set of DICOM files, folders and .zip archives
//! holds, as JSON (the library's `StudyReport`).

use std::path::PathBuf;

use anyhow::Context;
use dsan_ct::dicom::StudyReader;

use crate::files::collect_files;

/// Prints the series found under `paths` (the default one marked), their HU
/// statistics, and every skipped file with the reason.
pub fn inspect(paths: &[PathBuf]) -> anyhow::Result<()> {
    let mut reader = StudyReader::default();
    for file in collect_files(paths)? {
        let bytes = std::fs::read(&file).with_context(|| file.display().to_string())?;
        reader.add(&file.display().to_string(), &bytes);
    }
    let report = reader.finish().report();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
