//! Reading files from disk natively on several threads: each thread reads a
//! contiguous part of the list into its own [`StudyReader`], and the parts are
//! merged in order, so the result is what one reader would give.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use super::error::DicomError;
use super::study::{Study, StudyReader};

/// Reads `paths` (DICOM, NIfTI or .zip files) on up to `threads` threads and
/// groups the images into series; a file that cannot be read from disk is
/// skipped with the reason, like any other unusable file.
pub fn read_paths(paths: &[PathBuf], threads: usize) -> Study {
    let chunk = paths.len().div_ceil(threads.max(1)).max(1);
    let readers: Vec<StudyReader> = std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| scope.spawn(move || read_part(part)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut reader = StudyReader::default();
    for part in readers {
        reader.merge(part);
    }
    reader.finish()
}

fn read_part(paths: &[PathBuf]) -> StudyReader {
    let mut reader = StudyReader::default();
    // One buffer for every file: its memory is touched once, not per file.
    let mut bytes = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        bytes.clear();
        match File::open(path).and_then(|mut file| file.read_to_end(&mut bytes)) {
            Ok(_) => reader.add(&name, &bytes),
            Err(error) => reader.skip(DicomError::Unreadable {
                file: name,
                reason: error.to_string(),
            }),
        }
    }
    reader
}
