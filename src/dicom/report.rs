//! A serialisable account of a [`Study`]: the series with their HU statistics
//! and the default marked, and the skipped files. `dsan inspect` prints it and
//! the page shows it, so both describe a drop the same way.

use serde::{Deserialize, Serialize};

use super::series::{Series, SeriesSummary};
use super::study::Study;

/// What a set of files holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyReport {
    /// The series, in the study's order.
    pub series: Vec<SeriesReport>,
    /// One message per skipped file, naming it and the reason.
    pub skipped: Vec<String>,
    /// NIfTI volumes among the files.
    pub volumes: Vec<VolumeReport>,
}

/// A NIfTI volume of a [`StudyReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeReport {
    /// File name.
    pub file: String,
    /// `[slices, rows, columns]`.
    pub dims: [usize; 3],
    /// Spacing `[slice, row, column]`, mm.
    pub spacing: [f64; 3],
    /// Lowest voxel value.
    pub hu_min: f32,
    /// Highest voxel value.
    pub hu_max: f32,
    /// Mean voxel value.
    pub hu_mean: f64,
}

/// One series of a [`StudyReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesReport {
    /// Whether this is the series diagnosed by default.
    pub default: bool,
    /// What the series picker shows.
    #[serde(flatten)]
    pub summary: SeriesSummary,
    /// Lowest HU in the series.
    pub hu_min: f32,
    /// Highest HU in the series.
    pub hu_max: f32,
    /// Mean HU over all voxels of the series.
    pub hu_mean: f64,
}

impl Study {
    /// The report of this study.
    pub fn report(&self) -> StudyReport {
        StudyReport {
            series: self
                .series
                .iter()
                .enumerate()
                .map(|(index, series)| series_report(series, self.default == Some(index)))
                .collect(),
            skipped: self.skipped.iter().map(ToString::to_string).collect(),
            volumes: self
                .volumes
                .iter()
                .map(|(file, volume)| {
                    let (hu_min, hu_max, hu_mean) =
                        statistics(volume.voxels().iter().map(|&v| f32::from(v)));
                    VolumeReport {
                        file: file.clone(),
                        dims: volume.dims(),
                        spacing: volume.spacing(),
                        hu_min,
                        hu_max,
                        hu_mean,
                    }
                })
                .collect(),
        }
    }
}

fn series_report(series: &Series, default: bool) -> SeriesReport {
    let (hu_min, hu_max, hu_mean) = statistics(
        series
            .slices
            .iter()
            .flat_map(|slice| slice.pixels.hu())
            .map(f32::from),
    );
    SeriesReport {
        default,
        summary: series.summary.clone(),
        hu_min,
        hu_max,
        hu_mean,
    }
}

/// Minimum, maximum and mean of `values`.
fn statistics(values: impl Iterator<Item = f32>) -> (f32, f32, f64) {
    let (mut min, mut max, mut sum, mut count) = (f32::MAX, f32::MIN, 0.0_f64, 0_u64);
    for v in values {
        min = min.min(v);
        max = max.max(v);
        sum += f64::from(v);
        count += 1;
    }
    (min, max, sum / count.max(1) as f64)
}
