//! `dsan inspect`: what a set of DICOM files and folders holds, as JSON.

use std::path::{Path, PathBuf};

use anyhow::Context;
use dsan_ct::dicom::{Series, SeriesSummary, StudyReader};
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    series: Vec<SeriesReport>,
    skipped: Vec<Skipped>,
}

#[derive(Serialize)]
struct SeriesReport {
    default: bool,
    #[serde(flatten)]
    summary: SeriesSummary,
    hu_min: f32,
    hu_max: f32,
    hu_mean: f64,
}

#[derive(Serialize)]
struct Skipped {
    error: String,
}

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

fn hu_statistics(series: &Series) -> (f32, f32, f64) {
    let values = series.slices.iter().flat_map(|s| s.hu.iter().copied());
    let (mut min, mut max, mut sum, mut count) = (f32::MAX, f32::MIN, 0.0_f64, 0_u64);
    for v in values {
        min = min.min(v);
        max = max.max(v);
        sum += f64::from(v);
        count += 1;
    }
    (min, max, sum / count.max(1) as f64)
}

/// Prints the series found under `paths` (the default one marked), their HU
/// statistics, and every skipped file with the reason.
pub fn inspect(paths: &[PathBuf]) -> anyhow::Result<()> {
    let mut reader = StudyReader::default();
    for file in collect_files(paths)? {
        let bytes = std::fs::read(&file).with_context(|| file.display().to_string())?;
        reader.add(&display_name(&file), &bytes);
    }
    let study = reader.finish();
    let series = study
        .series
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let (hu_min, hu_max, hu_mean) = hu_statistics(s);
            SeriesReport {
                default: study.default == Some(index),
                summary: s.summary.clone(),
                hu_min,
                hu_max,
                hu_mean,
            }
        })
        .collect();
    let skipped = study
        .skipped
        .iter()
        .map(|e| Skipped {
            error: e.to_string(),
        })
        .collect();
    let report = Report { series, skipped };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}
