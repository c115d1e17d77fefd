//! NIfTI-1 input against nibabel (the oracle): voxel values after scaling and
//! the LPS position of voxels, for an sform and a rotated qform-only file;
//! bad input gives errors, not panics.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

use dsan_ct::volume::{NiftiError, is_nifti, read_nifti};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nifti")
        .join(name);
    std::fs::read(path).unwrap()
}

fn usizes(array: &Value) -> Vec<usize> {
    let values = array.as_array().unwrap().iter();
    values.map(|v| v.as_u64().unwrap() as usize).collect()
}

#[test]
fn values_and_positions_match_nibabel() {
    let expected: Value = serde_json::from_slice(&fixture("expected.json")).unwrap();
    for case in expected["files"].as_array().unwrap() {
        let name = case["file"].as_str().unwrap();
        let bytes = fixture(name);
        assert!(is_nifti(name, &bytes), "{name}");
        let volume = read_nifti(name, &bytes).unwrap();
        let shape = usizes(&case["shape"]);
        assert_eq!(volume.dims(), [shape[2], shape[1], shape[0]], "{name}");
        for sample in case["samples"].as_array().unwrap() {
            let ijk = usizes(&sample["ijk"]);
            let (i, j, k) = (ijk[0], ijk[1], ijk[2]);
            // Voxels are kept as whole HU: within half a unit of nibabel's.
            let value = volume.get(k, j, i).unwrap();
            let theirs = sample["value"].as_f64().unwrap();
            assert!(
                (f64::from(value) - theirs).abs() <= 0.5 + 1e-4,
                "{name} {ijk:?}: {value} vs {theirs}"
            );
            let position = volume.position(k as f64, j as f64, i as f64);
            for (axis, lps) in sample["lps"].as_array().unwrap().iter().enumerate() {
                let lps = lps.as_f64().unwrap();
                assert!(
                    (position[axis] - lps).abs() < 1e-4,
                    "{name} {ijk:?} axis {axis}: {} vs {lps}",
                    position[axis]
                );
            }
        }
    }
}

#[test]
fn bad_nifti_input_gives_errors_not_panics() {
    let good = fixture("qform_rotated.nii");
    for cut in [0, 100, 347, 352, good.len() - 1] {
        let err = read_nifti("cut.nii", &good[..cut]).unwrap_err();
        assert!(
            matches!(err, NiftiError::Unreadable { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().starts_with("cut.nii:"));
    }
    // A header claiming 30000^3 voxels is refused before anything is allocated.
    let mut huge = good.clone();
    for axis in 1..=3 {
        huge[40 + 2 * axis..42 + 2 * axis].copy_from_slice(&30000_u16.to_le_bytes());
    }
    let err = read_nifti("huge.nii", &huge).unwrap_err();
    assert!(err.to_string().contains("declares"), "{err}");
    let gz = fixture("sform_scaled.nii.gz");
    assert!(read_nifti("cut.nii.gz", &gz[..gz.len() / 2]).is_err());
    assert!(!is_nifti("notes.txt", b"plain text"));
}

#[test]
fn a_dropped_nifti_file_becomes_a_volume_of_the_study() {
    let name = "sform_scaled.nii.gz";
    let study = dsan_ct::dicom::read_study([(name.to_owned(), fixture(name))]);
    assert!(study.skipped.is_empty(), "{:?}", study.skipped);
    let report = study.report();
    assert_eq!(report.volumes.len(), 1);
    assert_eq!(report.volumes[0].dims, [3, 4, 5]);
    assert_eq!(report.volumes[0].hu_min, -1000.0);
    assert!((report.volumes[0].spacing[0] - 2.5).abs() < 1e-6);
}

#[test]
fn a_broken_nifti_in_a_drop_is_listed_with_its_name() {
    let mut bytes = fixture("qform_rotated.nii");
    bytes.truncate(400);
    let study = dsan_ct::dicom::read_study([("brain.nii".to_owned(), bytes)]);
    let reasons: Vec<String> = study.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(reasons.len(), 1);
    assert!(
        reasons[0].starts_with("brain.nii: not a readable NIfTI-1 file"),
        "{reasons:?}"
    );
}
