//! Reading a whole drop (loose files and .zip archives, in any order) into
//! series, one file at a time so the page can show progress and no file's
//! bytes are kept once decoded.

use std::io::{Cursor, Read};

use super::error::DicomError;
use super::series::{Series, default_series, group_series};
use super::slice::{Slice, read_file};
use crate::volume::{Volume, is_nifti, read_nifti};

/// Largest uncompressed size accepted for one archive entry.
pub const MAX_ENTRY_BYTES: u64 = 256 << 20;
/// Largest total uncompressed size accepted for one archive (zip bombs stop here).
pub const MAX_ARCHIVE_BYTES: u64 = 2 << 30;

/// Everything found in a set of files.
#[derive(Debug, Clone)]
pub struct Study {
    /// The series found, ordered by series number.
    pub series: Vec<Series>,
    /// The files that were skipped, with the reason.
    pub skipped: Vec<DicomError>,
    /// Index into `series` of the one to diagnose by default.
    pub default: Option<usize>,
    /// NIfTI volumes found among the files, with their file names.
    pub volumes: Vec<(String, Volume)>,
}

/// Collects slices file by file; [`StudyReader::finish`] groups them.
#[derive(Debug, Default)]
pub struct StudyReader {
    slices: Vec<Slice>,
    skipped: Vec<DicomError>,
    volumes: Vec<(String, Volume)>,
}

/// Reads every file (`(name, bytes)`) and groups the images into series.
pub fn read_study<I, B>(files: I) -> Study
where
    I: IntoIterator<Item = (String, B)>,
    B: AsRef<[u8]>,
{
    let mut reader = StudyReader::default();
    for (name, bytes) in files {
        reader.add(&name, bytes.as_ref());
    }
    reader.finish()
}

impl StudyReader {
    /// Adds one dropped file: a DICOM file, a NIfTI-1 volume (`.nii`,
    /// `.nii.gz`), or a .zip archive whose entries (in nested folders too) are
    /// read one by one.
    pub fn add(&mut self, name: &str, bytes: &[u8]) {
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            if let Err(error) = self.add_archive(name, bytes) {
                self.skipped.push(error);
            }
        } else if is_nifti(name, bytes) {
            match read_nifti(name, bytes) {
                Ok(volume) => self.volumes.push((name.to_owned(), volume)),
                Err(error) => self.skipped.push(error.into()),
            }
        } else {
            self.add_dicom(name, bytes);
        }
    }

    /// Takes over what `other` read, as if its files had been added after
    /// this reader's (so several readers can work on parts of a drop at once).
    pub fn merge(&mut self, other: StudyReader) {
        self.slices.extend(other.slices);
        self.skipped.extend(other.skipped);
        self.volumes.extend(other.volumes);
    }

    /// Records a file that could not be used.
    pub fn skip(&mut self, error: DicomError) {
        self.skipped.push(error);
    }

    /// Number of slices read so far.
    pub fn slice_count(&self) -> usize {
        self.slices.len()
    }

    /// Groups what was read into series and picks the default one.
    pub fn finish(self) -> Study {
        let series = group_series(self.slices);
        let default = default_series(&series);
        Study {
            series,
            skipped: self.skipped,
            default,
            volumes: self.volumes,
        }
    }

    fn add_dicom(&mut self, name: &str, bytes: &[u8]) {
        match read_file(name, bytes) {
            Ok(mut frames) => self.slices.append(&mut frames),
            Err(error) => self.skipped.push(error),
        }
    }

    fn add_archive(&mut self, name: &str, bytes: &[u8]) -> Result<(), DicomError> {
        let archive_error = |reason: String| DicomError::Archive {
            file: name.to_owned(),
            reason,
        };
        let mut archive =
            zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| archive_error(e.to_string()))?;
        if archive.is_empty() {
            return Err(archive_error("the archive holds no files".to_owned()));
        }
        let mut total = 0_u64;
        let mut buffer = Vec::new();
        for index in 0..archive.len() {
            let mut entry = archive
                .by_index(index)
                .map_err(|e| archive_error(e.to_string()))?;
            if entry.is_dir() {
                continue;
            }
            let entry_name = format!("{name}/{}", entry.name().unwrap_or_default());
            buffer.clear();
            // Declared sizes can lie: read at most one byte past the limit.
            let read = entry
                .by_ref()
                .take(MAX_ENTRY_BYTES + 1)
                .read_to_end(&mut buffer)
                .map_err(|e| DicomError::Archive {
                    file: entry_name.clone(),
                    reason: e.to_string(),
                })? as u64;
            total += read;
            if read > MAX_ENTRY_BYTES {
                self.skipped.push(DicomError::Archive {
                    file: entry_name,
                    reason: format!("larger than {} MiB uncompressed", MAX_ENTRY_BYTES >> 20),
                });
                continue;
            }
            if total > MAX_ARCHIVE_BYTES {
                return Err(archive_error(format!(
                    "more than {} GiB uncompressed; unpack it and drop the folder instead",
                    MAX_ARCHIVE_BYTES >> 30
                )));
            }
            if buffer.starts_with(b"PK\x03\x04") {
                self.skipped.push(DicomError::Archive {
                    file: entry_name,
                    reason: "an archive inside an archive; unpack it first".to_owned(),
                });
                continue;
            }
            self.add_dicom(&entry_name, &buffer);
        }
        Ok(())
    }
}
