//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test crate uses a subset of these helpers")]

use std::path::PathBuf;

/// `shared/data` beside the clone (or `$DSAN_SHARED_DATA`): the real test data.
pub fn shared_data() -> PathBuf {
    let beside_clone = || {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("shared/data"))
            .find(|dir| dir.is_dir())
    };
    let dir = std::env::var_os("DSAN_SHARED_DATA")
        .map(PathBuf::from)
        .or_else(beside_clone);
    match dir {
        Some(dir) if dir.is_dir() => dir,
        _ => panic!("shared test data not found beside the clone (set DSAN_SHARED_DATA)"),
    }
}

/// `(name, bytes)` of every file in `dir` under the shared data, sorted by name.
pub fn read_dir(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(shared_data().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// A deterministic permutation of `items` (xorshift; no rand dependency).
pub fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    let mut state = seed.max(1);
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
    items
}

/// The default series of a folder under the shared data, assembled into a volume.
pub fn read_volume(dir: &str) -> dsan_ct::volume::Volume {
    let study = dsan_ct::dicom::read_study(read_dir(dir));
    let index = study
        .default
        .unwrap_or_else(|| panic!("{dir}: no default series"));
    let series = study.series.into_iter().nth(index).unwrap();
    dsan_ct::dicom::assemble(series).unwrap().volume
}
