//! Input files named on the command line.

use std::path::PathBuf;

use anyhow::{Context, bail};
use dsan_ct::dicom::{StudyReader, assemble};
use dsan_ct::volume::Volume;

/// Lists the files under `paths` (folders recursively), sorted.
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
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

/// A CT volume read from the command line's paths, and where it came from.
pub struct Input {
    /// The volume.
    pub volume: Volume,
    /// The series description or the NIfTI file name.
    pub source: String,
    /// What assembling the series reported (gaps, duplicates).
    pub warnings: Vec<String>,
    /// Files that were not used, with the reason.
    pub skipped: Vec<String>,
}

/// Reads DICOM files, folders, .zip archives or a NIfTI volume under `paths`
/// and returns series `series` (the index `dsan inspect` prints), the default
/// series, or else the first NIfTI volume.
pub fn read_volume(paths: &[PathBuf], series: Option<usize>) -> anyhow::Result<Input> {
    let mut reader = StudyReader::default();
    for file in collect_files(paths)? {
        let bytes = std::fs::read(&file).with_context(|| file.display().to_string())?;
        reader.add(&file.display().to_string(), &bytes);
    }
    let study = reader.finish();
    let skipped = study.skipped.iter().map(ToString::to_string).collect();
    let index = series.or(study.default);
    if let Some(index) = index {
        let Some(chosen) = study.series.get(index).cloned() else {
            bail!(
                "there is no series {index}: {} series found",
                study.series.len()
            );
        };
        let source = chosen.summary.description.clone();
        let assembled = assemble(chosen)?;
        return Ok(Input {
            volume: assembled.volume,
            source,
            warnings: assembled.warnings,
            skipped,
        });
    }
    match study.volumes.into_iter().next() {
        Some((name, volume)) => Ok(Input {
            volume,
            source: name,
            warnings: Vec::new(),
            skipped,
        }),
        None => bail!("no CT series or NIfTI volume found; skipped files: {skipped:?}"),
    }
}
