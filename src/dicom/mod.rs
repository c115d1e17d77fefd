//! DICOM ingestion: files (name + bytes, as dropped in the page or read from
//! disk) -> slices in HU -> series -> the [`Volume`](crate::volume::Volume) to
//! diagnose. Built on dicom-rs, the same code on wasm32 and natively.
//!
//! Dropped `.zip` archives are read entry by entry. Files that cannot be used
//! are skipped with a [`DicomError`] naming the file
//! and the reason; the others still load.

mod error;
#[cfg(not(target_arch = "wasm32"))]
mod files;
mod jpeg2000;
mod lengths;
mod pixels;
mod report;
mod rle;
mod series;
mod slice;
mod study;

pub use error::DicomError;
#[cfg(not(target_arch = "wasm32"))]
pub use files::read_paths;
pub use pixels::FramePixels;
pub use report::{SeriesReport, StudyReport, VolumeReport};
pub use series::{
    AssembledSeries, MAX_VOLUME_BYTES, MIN_SLICES, Series, SeriesError, SeriesSummary, assemble,
    default_series, group_series,
};
pub use slice::{PADDING_HU, SeriesAttributes, Slice, read_file};
pub use study::{MAX_ARCHIVE_BYTES, MAX_ENTRY_BYTES, Study, StudyReader, read_study};
