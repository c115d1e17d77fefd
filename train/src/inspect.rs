//! `dsan inspect`: what a set of DICOM files, folders and .zip archives
//! holds, as JSON (the library's `StudyReport`).

use std::path::PathBuf;

use anyhow::Context;
use dsan_ct::dicom::StudyReader;

/// Lists the files under `paths` (folders recursively), sorted.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).with_context(|| path.display().to_string())?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).with_context(|| path.display().to_string())? {
                pending.push(entry?.path());
            }
        } else {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

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
