//! Our DICOM reader against pydicom (the oracle) on every file of
//! ../shared/data/dicom-conformance and a few real CT files: same dimensions
//! and HU values (exact for lossless codecs, within a tolerance for lossy
//! ones), clear errors for what cannot be decoded here, and never a panic.
//! The expected values come from tests/fixtures/dicom_oracle.py.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

mod common;

use common::shared_data;
use dsan_ct::dicom::{DicomError, read_file};
use serde_json::Value;

/// Codecs no pure-Rust decoder handles in the browser: refused with a reason.
const UNSUPPORTED: &[&str] = &[
    "1.2.840.10008.1.2.4.80",  // JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  // JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.201", // HTJ2K lossless
    "1.2.840.10008.1.2.4.202", // HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203", // HTJ2K
];

/// Where dicom-rs 0.10 cannot decode what pydicom can, with the reason. None
/// of these is a CT image format seen in practice; each is refused with a
/// message naming the file.
const KNOWN_LIMITS: &[(&str, &str)] = &[(
    "1.2.840.10008.1.2.4.51",
    "12-bit JPEG extended: jpeg-decoder reads 8-bit only",
)];

/// Files the two readers see differently, with the reason.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "dicom-conformance/pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm",
    "the data set ends inside the pixel data: pydicom drops the element, dicom-rs keeps the frames it holds",
)];

/// Lossy codecs: two decoders may round differently.
const LOSSY: &[&str] = &[
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.91",
];

fn oracle() -> Vec<Value> {
    let text = include_str!("fixtures/dicom-oracle.json");
    let json: Value = serde_json::from_str(text).unwrap();
    json["files"].as_array().unwrap().clone()
}

#[test]
fn every_conformance_file_matches_pydicom_or_is_refused_with_a_reason() {
    let root = shared_data();
    let mut compared = 0;
    let mut failures = Vec::new();
    for entry in oracle() {
        let name = entry["file"].as_str().unwrap();
        let bytes = std::fs::read(root.join(name)).unwrap();
        let ts = entry["transfer_syntax"].as_str().unwrap_or_default();
        let result = read_file(name, &bytes);
        if let Err(e) = &result {
            assert!(e.to_string().contains(name), "error names the file: {e}");
        }
        if KNOWN_DIFFERENCES.iter().any(|(file, _)| *file == name) {
            continue;
        }
        let bits = entry["bits_allocated"].as_u64().unwrap_or(16);
        let known_limit = KNOWN_LIMITS.iter().any(|(uid, _)| *uid == ts);
        match (entry["pydicom"].as_str().unwrap(), &result) {
            ("decoded", Ok(slices)) if entry["samples_per_pixel"] == 1 => {
                if let Err(why) = compare(&entry, slices, LOSSY.contains(&ts)) {
                    failures.push(format!("{name} ({ts}): {why}"));
                }
                compared += 1;
            }
            // Colour images are never CT; dicom-rs also fails to parse one of them.
            ("decoded", Err(_)) if entry["samples_per_pixel"] != 1 => {}
            // 1-bit segmentations and 32-bit dose grids: dicom-rs decodes 8 and 16 bits.
            ("decoded", Err(DicomError::PixelData { .. })) if bits != 8 && bits != 16 => {}
            ("decoded", Err(DicomError::PixelData { .. })) if known_limit => {}
            (_, Err(DicomError::UnsupportedCodec { uid, .. }))
                if UNSUPPORTED.contains(&uid.as_str()) => {}
            ("no pixel data", Err(DicomError::NoImage { .. } | DicomError::NotDicom { .. })) => {}
            (oracle, Err(_))
                if oracle.starts_with("unreadable")
                    || oracle.starts_with("pixel data not decoded") => {}
            (oracle, Ok(_)) if oracle.starts_with("unreadable") => {}
            (oracle, result) => failures.push(format!(
                "{name} ({ts}): pydicom {oracle:?}, ours {:?}",
                result.as_ref().map(|s| s.len())
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 70, "only {compared} files compared");
}

fn compare(entry: &Value, slices: &[dsan_ct::dicom::Slice], lossy: bool) -> Result<(), String> {
    let num = |k: &str| entry[k].as_f64().unwrap();
    let frames = entry["frames"].as_u64().unwrap() as usize;
    if slices.len() != frames {
        return Err(format!("{} frames, pydicom {frames}", slices.len()));
    }
    let first = &slices[0];
    let dims = [num("rows") as usize, num("columns") as usize];
    if [first.rows, first.columns] != dims {
        return Err(format!(
            "{}x{}, pydicom {dims:?}",
            first.rows, first.columns
        ));
    }
    let all: Vec<f32> = slices.iter().flat_map(|s| s.hu.iter().copied()).collect();
    let (min, max) = all
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    let mean = all.iter().map(|v| f64::from(*v)).sum::<f64>() / all.len() as f64;
    let range = (num("hu_max") - num("hu_min")).max(1.0);
    let tolerance = if lossy { 0.02 * range } else { 1e-3 };
    let checks = [
        ("min", f64::from(min), num("hu_min")),
        ("max", f64::from(max), num("hu_max")),
        ("mean", mean, num("hu_mean")),
    ];
    for (what, ours, theirs) in checks {
        let tol = if what == "mean" {
            tolerance.max(1e-3 * theirs.abs())
        } else {
            tolerance
        };
        if (ours - theirs).abs() > tol {
            return Err(format!("HU {what} {ours}, pydicom {theirs}"));
        }
    }
    for sample in entry["samples"].as_array().unwrap() {
        let [r, c, v] = [0, 1, 2].map(|i| sample[i].as_f64().unwrap());
        let ours = f64::from(first.hu[r as usize * first.columns + c as usize]);
        if (ours - v).abs() > tolerance {
            return Err(format!("HU at ({r}, {c}) {ours}, pydicom {v}"));
        }
    }
    if let Some(p) = entry["position"].as_array() {
        let theirs: Vec<f64> = p.iter().map(|v| v.as_f64().unwrap()).collect();
        match first.position {
            Some(ours) if ours.iter().zip(&theirs).all(|(a, b)| (a - b).abs() < 1e-6) => {}
            other => return Err(format!("position {other:?}, pydicom {theirs:?}")),
        }
    }
    Ok(())
}

#[test]
fn truncated_and_random_bytes_give_errors_not_panics() {
    let root = shared_data();
    let file = "dicom-conformance/pydicom-test_files/CT_small.dcm";
    let bytes = std::fs::read(root.join(file)).unwrap();
    assert!(read_file(file, &bytes).is_ok());
    // One to three stray bytes after the data set (too short for a tag) are
    // ignored, as dicom-rs ignores them; from four on dicom-rs reads a tag.
    for extra in 1..4 {
        let mut padded = bytes.clone();
        padded.resize(bytes.len() + extra, 0);
        let read = read_file(file, &padded);
        assert!(read.is_ok(), "{extra} trailing bytes: {:?}", read.err());
    }
    for cut in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        if let Ok(slices) = read_file("cut.dcm", &bytes[..cut]) {
            // A cut inside trailing padding may still hold a whole image.
            assert_eq!(slices[0].hu.len(), 128 * 128, "cut at {cut}");
        }
    }
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for n in [0, 1, 132, 4096] {
        let noise: Vec<u8> = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let err = read_file("noise.bin", &noise).unwrap_err();
        assert!(matches!(err, DicomError::NotDicom { .. }), "{err}");
    }
}

#[test]
fn a_huge_declared_length_is_an_error_not_an_allocation() {
    let file = "dicom-conformance/pydicom-test_files/CT_small.dcm";
    let bytes = std::fs::read(shared_data().join(file)).unwrap();
    // The PixelData element header: tag (7FE0,0010), VR OW, 2 reserved bytes, length.
    let at = bytes
        .windows(6)
        .position(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
        .unwrap();
    for length in [0xFFFF_FFF0_u32, 0x7FFF_FFF0, 1 << 30, bytes.len() as u32] {
        let mut huge = bytes.clone();
        huge[at + 8..at + 12].copy_from_slice(&length.to_le_bytes());
        let err = read_file("huge.dcm", &huge).unwrap_err();
        // Refused by the length check, before dicom-rs reserves the value.
        let expected = format!(
            "huge.dcm: not a readable DICOM file (element (7FE0,0010) declares {length} bytes but only {} remain in the file)",
            bytes.len() - at - 12
        );
        assert_eq!(err.to_string(), expected);
    }
    // The same in the file meta group: (0002,0001) OB, a 4-byte length.
    let meta = bytes
        .windows(6)
        .position(|w| w == [0x02, 0x00, 0x01, 0x00, b'O', b'B'])
        .unwrap();
    let mut huge = bytes.clone();
    huge[meta + 8..meta + 12].copy_from_slice(&0x7FFF_FFF0_u32.to_le_bytes());
    let err = read_file("meta.dcm", &huge).unwrap_err();
    assert!(
        err.to_string()
            .contains("element (0002,0001) declares 2147483632 bytes"),
        "{err}"
    );
}

#[test]
fn a_huge_length_inside_a_deflated_data_set_is_refused() {
    use std::io::{Read, Write};
    let file = "dicom-conformance/pydicom-test_files/image_dfl.dcm";
    let bytes = std::fs::read(shared_data().join(file)).unwrap();
    assert!(read_file(file, &bytes).is_ok());
    // Preamble, "DICM", then (0002,0000) UL: its value is the meta group's length.
    let group = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    let body = 144 + group;
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(&bytes[body..])
        .read_to_end(&mut inflated)
        .unwrap();
    let at = inflated
        .windows(6)
        .position(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'B'])
        .unwrap();
    inflated[at + 8..at + 12].copy_from_slice(&0x7FFF_FFF0_u32.to_le_bytes());
    let mut deflater =
        flate2::write::DeflateEncoder::new(bytes[..body].to_vec(), flate2::Compression::fast());
    deflater.write_all(&inflated).unwrap();
    let err = read_file("huge_dfl.dcm", &deflater.finish().unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("element (7FE0,0010) declares 2147483632 bytes"),
        "{err}"
    );
}
