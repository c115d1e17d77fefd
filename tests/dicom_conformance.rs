//! Our DICOM reader against pydicom (the oracle) on every file of
//! ../shared/data/dicom-conformance and a few real CT files: same dimensions
//! and HU values (to the whole HU for lossless codecs, within a tolerance for lossy
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
    let all: Vec<f32> = slices
        .iter()
        .flat_map(|s| s.pixels.hu())
        .map(f32::from)
        .collect();
    let (min, max) = all
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    let mean = all.iter().map(|v| f64::from(*v)).sum::<f64>() / all.len() as f64;
    let range = (num("hu_max") - num("hu_min")).max(1.0);
    // HU are kept as whole numbers: lossless data within half a unit of
    // pydicom's (exactly where the rescale is integral, as in every CT).
    let tolerance = if lossy { 0.02 * range } else { 0.5 + 1e-6 };
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
    let first_hu = first.pixels.hu();
    for sample in entry["samples"].as_array().unwrap() {
        let [r, c, v] = [0, 1, 2].map(|i| sample[i].as_f64().unwrap());
        let ours = f64::from(first_hu[r as usize * first.columns + c as usize]);
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
            assert_eq!(slices[0].pixels.len(), 128 * 128, "cut at {cut}");
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

/// Where the PixelData element header (tag (7FE0,0010), then `vr` in
/// explicit VR little endian) starts in `bytes`.
fn pixel_data_header(bytes: &[u8], vr: &[u8; 2]) -> usize {
    let header = [0xE0, 0x7F, 0x10, 0x00, vr[0], vr[1]];
    bytes.windows(6).position(|w| w == header).unwrap()
}

#[test]
fn a_huge_declared_length_is_an_error_not_an_allocation() {
    let file = "dicom-conformance/pydicom-test_files/CT_small.dcm";
    let bytes = std::fs::read(shared_data().join(file)).unwrap();
    // The PixelData element header: tag (7FE0,0010), VR OW, 2 reserved bytes, length.
    let at = pixel_data_header(&bytes, b"OW");
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
    let at = pixel_data_header(&inflated, b"OB");
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

#[test]
fn a_jpeg2000_codestream_that_disagrees_with_the_header_is_refused() {
    let file = "dicom-conformance/pydicom-test_files/MR_small_jp2klossless.dcm";
    let bytes = std::fs::read(shared_data().join(file)).unwrap();
    let good = read_file(file, &bytes).unwrap();
    assert_eq!([good[0].rows, good[0].columns], [64, 64]);
    // SOC then SIZ; Xsiz is 8 bytes after the SIZ marker.
    let siz = bytes
        .windows(4)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        .unwrap();
    for (width, components) in [(1 << 30, 1_u16), (65, 1), (64, 3)] {
        let mut forged = bytes.clone();
        forged[siz + 8..siz + 12].copy_from_slice(&u32::to_be_bytes(width));
        forged[siz + 40..siz + 42].copy_from_slice(&components.to_be_bytes());
        let err = read_file("forged.dcm", &forged).unwrap_err();
        let expected = format!(
            "forged.dcm: pixel data could not be decoded (frame 0: the codestream holds a \
             {width} x 64 image of {components} component(s) at 16 bits, the attributes say \
             64 x 64, 1 sample, 16 bits allocated)"
        );
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn a_damaged_jpeg2000_codestream_gives_an_error_not_a_panic() {
    let file = "dicom-conformance/pydicom-test_files/MR_small_jp2klossless.dcm";
    let bytes = std::fs::read(shared_data().join(file)).unwrap();
    let good = read_file(file, &bytes).unwrap();
    let siz = bytes
        .windows(4)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        .unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut refused = 0;
    for round in 0..200 {
        let mut damaged = bytes.clone();
        // A few bytes of the codestream (header and coded data) overwritten.
        for _ in 0..1 + round % 8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = siz + (state as usize >> 8) % (bytes.len() - siz);
            damaged[at] = state as u8;
        }
        match read_file("damaged.dcm", &damaged) {
            Ok(slices) => assert_eq!(slices[0].pixels.len(), good[0].pixels.len()),
            Err(err) => {
                assert!(err.to_string().starts_with("damaged.dcm: "), "{err}");
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "no damage was noticed in 200 tries");
}

#[test]
fn damaged_rle_segments_are_refused_before_dicom_rs_decodes_them() {
    let file = "dicom-conformance/pydicom-test_files/MR_small_RLE.dcm";
    let bytes = std::fs::read(shared_data().join(file)).unwrap();
    assert_eq!(read_file(file, &bytes).unwrap()[0].pixels.len(), 64 * 64);
    // The frame's fragment: after the empty offset table item, an item whose
    // value starts with the RLE header (segment count, then offsets).
    let item = [0xFE, 0xFF, 0x00, 0xE0];
    let table = bytes.windows(4).position(|w| w == item).unwrap();
    let table_len = u32::from_le_bytes(bytes[table + 4..table + 8].try_into().unwrap()) as usize;
    let item_at = table + 8 + table_len;
    assert_eq!(bytes[item_at..item_at + 4], item);
    let fragment_len = u32::from_le_bytes(bytes[item_at + 4..item_at + 8].try_into().unwrap());
    let header = item_at + 8;
    assert_eq!(
        bytes[header..header + 4],
        2_u32.to_le_bytes(),
        "two segments (16-bit)"
    );

    // The second segment made two bytes long.
    let mut short = bytes.clone();
    short[header + 8..header + 12].copy_from_slice(&(fragment_len - 2).to_le_bytes());
    let err = read_file("short.dcm", &short).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "short.dcm: pixel data could not be decoded (RLE frame 0: segment 1 decodes to"
        ) && err
            .to_string()
            .ends_with("bytes, 4096 expected (Rows x Columns))"),
        "{err}"
    );

    // More segments than a header can hold.
    let mut many = bytes.clone();
    many[header..header + 4].copy_from_slice(&1000_u32.to_le_bytes());
    let err = read_file("many.dcm", &many).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "many.dcm: pixel data could not be decoded (RLE frame 0: the header is damaged \
             (1000 segments in {fragment_len} bytes))"
        )
    );
}

#[test]
fn an_item_header_among_elements_is_read_as_dicom_rs_reads_it() {
    // Found by fuzzing: inside an item, an element with the item tag
    // (FFFE,E000) and a defined length is a plain value to dicom-rs, which
    // reads on after it. The length check must read on from the same place,
    // or a huge length behind it reaches dicom-rs unchecked.
    let file = "dicom-conformance/pydicom-test_files/CT_small.dcm";
    let bytes = std::fs::read(shared_data().join(file)).unwrap();
    let pixel_data = pixel_data_header(&bytes, b"OW");
    let mut forged = bytes[..pixel_data].to_vec();
    // (0040,0275) SQ of undefined length, one item of undefined length.
    forged.extend([
        0x40, 0x00, 0x75, 0x02, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    forged.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    // In the item: (FFFE,E000) with 4 bytes, then (0009,1001) OB declaring 2 GB.
    forged.extend([0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 0, 0, 0, 0]);
    forged.extend([0x09, 0x00, 0x01, 0x10, b'O', b'B', 0, 0]);
    forged.extend(0x7FFF_FFF0_u32.to_le_bytes());
    forged.extend(&bytes[pixel_data..]);
    let err = read_file("forged.dcm", &forged).unwrap_err();
    assert!(
        err.to_string()
            .contains("element (0009,1001) declares 2147483632 bytes but only"),
        "{err}"
    );
}
