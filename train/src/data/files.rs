//! Input files named on the command line.

use std::path::PathBuf;

use anyhow::{Context, bail};
use dsan_ct::dicom::{Study, assemble, read_paths};
use dsan_ct::volume::Volume;

use crate::data::slice_images::{SliceImages, is_slice_image, read_slice_images};

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

/// How many threads read the files of one CT.
#[derive(Debug, Clone, Copy)]
pub enum Readers {
    /// One per core (a single CT at a time: `inspect`, `predict`).
    AllCores,
    /// One (cases are already prepared one per core: training data).
    One,
}

/// Reads the files under `paths` (folders recursively) into series.
pub fn read_files(paths: &[PathBuf], readers: Readers) -> anyhow::Result<Study> {
    Ok(read_dicom(&collect_files(paths)?, readers))
}

fn read_dicom(files: &[PathBuf], readers: Readers) -> Study {
    let threads = match readers {
        Readers::AllCores => std::thread::available_parallelism().map_or(1, usize::from),
        Readers::One => 1,
    };
    read_paths(files, threads)
}

/// Reads DICOM files, folders, .zip archives, a NIfTI volume or a folder of
/// slice images under `paths` and returns series `series` (the index `dsan
/// inspect` prints), the default series, or else the first NIfTI volume, or
/// else the slice images read with `images`.
pub fn read_volume(
    paths: &[PathBuf],
    series: Option<usize>,
    readers: Readers,
    images: &SliceImages,
) -> anyhow::Result<Input> {
    let (slice_images, others): (Vec<PathBuf>, Vec<PathBuf>) = collect_files(paths)?
        .into_iter()
        .partition(|path| is_slice_image(path));
    let study = read_dicom(&others, readers);
    let mut skipped: Vec<String> = study.skipped.iter().map(ToString::to_string).collect();
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
        skipped.extend(
            slice_images
                .iter()
                .map(|path| format!("{}: a slice image beside a DICOM series", path.display())),
        );
        return Ok(Input {
            volume: assembled.volume,
            source,
            warnings: assembled.warnings,
            skipped,
        });
    }
    if let Some((name, volume)) = study.volumes.into_iter().next() {
        return Ok(Input {
            volume,
            source: name,
            warnings: Vec::new(),
            skipped,
        });
    }
    if slice_images.is_empty() {
        bail!("no CT series, NIfTI volume or slice images found; skipped files: {skipped:?}");
    }
    let volume = read_slice_images(&slice_images, images)?;
    Ok(Input {
        source: format!("{} slice images", slice_images.len()),
        warnings: vec![format!(
            "slice images carry no Hounsfield units or geometry: assumed window {} / {} HU, \
             spacing {:?} mm, first image at the {:?} end",
            images.window.center, images.window.width, images.spacing.0, images.first
        )],
        volume,
        skipped,
    })
}
