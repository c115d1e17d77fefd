//! Training data: a folder of cases and its `labels.csv`
//! (`case_id,patient_id,label[,infection_mask]`), each case turned into the
//! network input by the library's own preprocessing (the page's code path) and
//! cached on disk, so epochs and later runs do not decode DICOM again.
//!
//! A case is `<dir>/<case_id>` (a folder of DICOM files, a .zip, a NIfTI file
//! or a folder of slice images) or `<dir>/<case_id>.nii[.gz]`; `infection_mask` is a NIfTI file
//! relative to `<dir>` on the CT's grid (non-zero = infected).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use dsan_ct::preprocess::{mask_on_model_grid, prepare_input, segment_lungs};
use dsan_ct::volume::read_nifti;
use dsan_ct::weights::{Preprocessing, sha256_hex};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::data::files::{Readers, collect_files, read_volume};
use crate::data::parallel::try_map;
use crate::data::slice_images::SliceImages;

/// Format tag at the start of every cache file; bump it when the layout or
/// the preprocessing code changes what a cached case holds.
const CACHE_MAGIC: &[u8; 12] = b"DSANCASE0001";

/// One row of `labels.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// Case identifier: the folder or file name under the data folder.
    pub case_id: String,
    /// Patient identifier: all cases of a patient stay in one fold.
    pub patient_id: String,
    /// Class name, one of the configured classes.
    pub label: String,
    /// Infection mask (NIfTI, relative to the data folder), if the case has one.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub infection_mask: Option<String>,
}

fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(value.filter(|s| !s.trim().is_empty()))
}

/// Reads `<dir>/labels.csv`.
pub fn read_labels(dir: &Path) -> anyhow::Result<Vec<CaseRecord>> {
    let path = dir.join("labels.csv");
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(&path)
        .with_context(|| path.display().to_string())?;
    let mut records = Vec::new();
    for (row, record) in reader.deserialize::<CaseRecord>().enumerate() {
        records.push(record.with_context(|| format!("{}: row {}", path.display(), row + 2))?);
    }
    ensure!(!records.is_empty(), "{}: no cases", path.display());
    Ok(records)
}

/// A case ready for the network, as the page would feed it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedCase {
    /// From `labels.csv`.
    pub case_id: String,
    /// From `labels.csv`.
    pub patient_id: String,
    /// Class index into the configured class list.
    pub label: usize,
    /// The network input on the model grid (`prepare_input`'s values).
    pub input: Vec<f32>,
    /// Infected fraction of each model-grid cell, when the case has a mask.
    pub infection: Option<Vec<f32>>,
    /// What the cache stores besides the arrays.
    pub summary: CaseSummary,
}

/// Per-case figures measured while preparing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSummary {
    /// Lung volume from the segmentation, mL.
    pub lung_ml: f64,
    /// Infected volume / lung volume, when the case has a mask.
    pub infection_ratio: Option<f64>,
    /// Infected volume, mL, when the case has a mask.
    pub infection_ml: Option<f64>,
}

/// How cases become network inputs.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    /// The model card's preprocessing.
    pub preprocessing: &'a Preprocessing,
    /// The model grid `[D, H, W]`.
    pub grid: [usize; 3],
    /// How slice images map to HU and geometry.
    pub images: &'a SliceImages,
}

/// Prepared cases of one data folder, in `labels.csv` order.
pub type Dataset = Vec<PreparedCase>;

/// Where a case's CT lies under `dir`.
fn case_path(dir: &Path, case_id: &str) -> anyhow::Result<PathBuf> {
    for candidate in [
        case_id.to_owned(),
        format!("{case_id}.nii.gz"),
        format!("{case_id}.nii"),
    ] {
        let path = dir.join(candidate);
        if path.exists() {
            return Ok(path);
        }
    }
    bail!(
        "case {case_id}: neither {0}/{case_id} nor {0}/{case_id}.nii[.gz] exists",
        dir.display()
    )
}

/// Loads the cases `records` of `dir` (see the module docs), preparing each
/// as `reading` says (one case per core at a time), through the cache folder
/// when one is given.
pub fn load_dataset(
    dir: &Path,
    records: &[CaseRecord],
    classes: &[String],
    reading: &Reading,
    cache: Option<&Path>,
) -> anyhow::Result<Dataset> {
    let bar = ProgressBar::new(records.len() as u64).with_style(
        ProgressStyle::with_template("preparing {pos}/{len} cases {wide_bar} {elapsed}<{eta}")
            .context("progress template")?,
    );
    let cases = try_map(records, |record| {
        let label = classes
            .iter()
            .position(|c| c == &record.label)
            .with_context(|| {
                format!(
                    "case {}: label {:?} is not one of the classes {classes:?}",
                    record.case_id, record.label
                )
            })?;
        let (input, infection, summary) = prepare_cached(dir, record, reading, cache)
            .with_context(|| format!("case {}", record.case_id))?;
        bar.inc(1);
        Ok::<_, anyhow::Error>(PreparedCase {
            case_id: record.case_id.clone(),
            patient_id: record.patient_id.clone(),
            label,
            input,
            infection,
            summary,
        })
    })?;
    bar.finish_and_clear();
    Ok(cases)
}

type Prepared = (Vec<f32>, Option<Vec<f32>>, CaseSummary);

/// The cache key: the preprocessing, the grid, the reading of slice images
/// and every source file's path, size and modification time.
fn cache_key(files: &[PathBuf], reading: &Reading) -> anyhow::Result<String> {
    let mut text = serde_json::to_string(&(reading.preprocessing, reading.grid, reading.images))?;
    for file in files {
        let meta = std::fs::metadata(file).with_context(|| file.display().to_string())?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        text.push_str(&format!("\n{}\t{}\t{modified}", file.display(), meta.len()));
    }
    Ok(sha256_hex(text.as_bytes())[..24].to_owned())
}

fn prepare_cached(
    dir: &Path,
    record: &CaseRecord,
    reading: &Reading,
    cache: Option<&Path>,
) -> anyhow::Result<Prepared> {
    let source = case_path(dir, &record.case_id)?;
    let mask_path = record.infection_mask.as_ref().map(|m| dir.join(m));
    let mut files = collect_files(std::slice::from_ref(&source))?;
    files.extend(mask_path.clone());
    let Some(cache) = cache else {
        return prepare(&source, mask_path.as_deref(), reading);
    };
    let file = cache.join(format!(
        "{}-{}.bin",
        record.case_id.replace(['/', '\\'], "_"),
        cache_key(&files, reading)?
    ));
    if let Ok(bytes) = std::fs::read(&file)
        && let Some(prepared) = decode_cached(&bytes, reading.grid)
    {
        return Ok(prepared);
    }
    let prepared = prepare(&source, mask_path.as_deref(), reading)?;
    std::fs::create_dir_all(cache).with_context(|| cache.display().to_string())?;
    // A name of this writer's own, so runs sharing a cache never rename each
    // other's files; the last rename wins, with the same contents.
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let partial = file.with_extension(format!(
        "partial-{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&partial, encode_cached(&prepared)?)
        .with_context(|| partial.display().to_string())?;
    std::fs::rename(&partial, &file).with_context(|| file.display().to_string())?;
    Ok(prepared)
}

/// Reads, segments and resamples one case (and its mask).
fn prepare(source: &Path, mask: Option<&Path>, reading: &Reading) -> anyhow::Result<Prepared> {
    let volume = read_volume(&[source.to_path_buf()], None, Readers::One, reading.images)?.volume;
    let lungs = segment_lungs(&volume, &reading.preprocessing.lung_mask)?;
    let input = prepare_input(&volume, &lungs, reading.preprocessing, reading.grid)?;
    let lung_ml = lungs.volume_ml;
    let Some(mask) = mask else {
        let summary = CaseSummary {
            lung_ml,
            infection_ratio: None,
            infection_ml: None,
        };
        return Ok((input.values, None, summary));
    };
    let bytes = std::fs::read(mask).with_context(|| mask.display().to_string())?;
    let mask_volume = read_nifti(&mask.display().to_string(), &bytes)?;
    ensure!(
        mask_volume.dims() == volume.dims(),
        "infection mask {} has {:?} voxels, the CT {:?}",
        mask.display(),
        mask_volume.dims(),
        volume.dims()
    );
    let offset = (0..3)
        .map(|a| (mask_volume.origin()[a] - volume.origin()[a]).abs())
        .fold(0.0, f64::max);
    ensure!(
        offset < 0.5 * volume.spacing().iter().copied().fold(f64::MAX, f64::min),
        "infection mask {} is {offset:.2} mm away from the CT's grid",
        mask.display()
    );
    // Read as whole numbers: a voxel of 0.5 or more is infected.
    let infected: Vec<u8> = mask_volume
        .voxels()
        .iter()
        .map(|&v| u8::from(v > 0))
        .collect();
    let infected_voxels = infected.iter().filter(|&&v| v != 0).count();
    let infection_ml = infected_voxels as f64 * volume.voxel_ml();
    let summary = CaseSummary {
        lung_ml,
        infection_ratio: Some(infection_ml / lung_ml.max(f64::MIN_POSITIVE)),
        infection_ml: Some(infection_ml),
    };
    let target = mask_on_model_grid(&infected, &input.mapping);
    Ok((input.values, Some(target), summary))
}

fn encode_cached((input, infection, summary): &Prepared) -> anyhow::Result<Vec<u8>> {
    let header = serde_json::to_vec(&(summary, infection.is_some()))?;
    let mut out = Vec::with_capacity(CACHE_MAGIC.len() + 8 + header.len() + input.len() * 8);
    out.write_all(CACHE_MAGIC)?;
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    for v in input.iter().chain(infection.iter().flatten()) {
        out.write_all(&v.to_le_bytes())?;
    }
    Ok(out)
}

/// A cached case, or `None` when the file is not one for this grid (then the
/// case is prepared again).
fn decode_cached(bytes: &[u8], grid: [usize; 3]) -> Option<Prepared> {
    let rest = bytes.strip_prefix(CACHE_MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    let (header, rest) = rest.split_at_checked(len)?;
    let (summary, has_mask): (CaseSummary, bool) = serde_json::from_slice(header).ok()?;
    let cells: usize = grid.iter().product();
    let arrays = if has_mask { 2 } else { 1 };
    if rest.len() != cells * 4 * arrays {
        return None;
    }
    let floats: Vec<f32> = rest
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let (input, infection) = if has_mask {
        let (a, b) = floats.split_at(cells);
        (a.to_vec(), Some(b.to_vec()))
    } else {
        (floats, None)
    };
    Some((input, infection, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_cases_round_trip_and_foreign_bytes_are_ignored() {
        let grid = [2, 2, 3];
        let prepared: Prepared = (
            (0..12).map(|x| x as f32 / 11.0).collect(),
            Some((0..12).map(|x| (x % 2) as f32).collect()),
            CaseSummary {
                lung_ml: 4000.0,
                infection_ratio: Some(0.01),
                infection_ml: Some(40.0),
            },
        );
        let bytes = encode_cached(&prepared).unwrap();
        assert_eq!(decode_cached(&bytes, grid), Some(prepared.clone()));
        assert_eq!(decode_cached(&bytes, [2, 2, 2]), None);
        assert_eq!(decode_cached(&bytes[..bytes.len() - 1], grid), None);
        assert_eq!(decode_cached(b"not a cache file", grid), None);
        let without = (prepared.0, None, prepared.2);
        let bytes = encode_cached(&without).unwrap();
        assert_eq!(decode_cached(&bytes, grid), Some(without));
    }

    #[test]
    fn labels_csv_with_and_without_masks_is_read() {
        let dir = std::env::temp_dir().join(format!("dsan-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("labels.csv"),
            "case_id,patient_id,label,infection_mask\na, p1 ,CAP,a-mask.nii.gz\nb,p1,COVID-19,\nc,p2,COVID-19\n",
        )
        .unwrap();
        let records = read_labels(&dir).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].patient_id, "p1");
        assert_eq!(records[0].infection_mask.as_deref(), Some("a-mask.nii.gz"));
        assert_eq!(records[1].infection_mask, None);
        assert_eq!(records[2].infection_mask, None);
        std::fs::write(dir.join("labels.csv"), "case_id,patient_id\na,p1\n").unwrap();
        let error = read_labels(&dir).unwrap_err();
        assert!(format!("{error:#}").contains("row 2"), "{error:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
