//! From real files to one sorted volume: series grouping, the default choice,
//! ordering along the slice normal, duplicates, gaps, and .zip archives.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

mod common;

use std::io::Write;

use common::{read_dir, shared_data, shuffled};
use dsan_ct::dicom::{DicomError, MAX_ENTRY_BYTES, assemble, read_file, read_study};

const CAP001: &str = "ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001";

/// z of ImagePositionPatient of every file, decoded by our reader.
fn file_z(files: &[(String, Vec<u8>)]) -> Vec<(String, f64)> {
    files
        .iter()
        .map(|(name, bytes)| {
            (
                name.clone(),
                read_file(name, bytes).unwrap()[0].position.unwrap()[2],
            )
        })
        .collect()
}

#[test]
fn a_shuffled_series_is_sorted_along_the_slice_normal() {
    let files = read_dir(CAP001);
    assert_eq!(files.len(), 42);
    let mut by_z = file_z(&files);
    by_z.sort_by(|a, b| a.1.total_cmp(&b.1));

    let study = read_study(shuffled(files.clone(), 7));
    assert!(study.skipped.is_empty(), "{:?}", study.skipped);
    assert_eq!(study.series.len(), 1);
    assert_eq!(study.default, Some(0));
    let summary = &study.series[0].summary;
    assert_eq!((summary.slices, summary.image_size), (42, [512, 512]));
    assert_eq!(summary.plane, "axial");
    assert!((summary.slice_spacing.unwrap() - 8.0).abs() < 1e-3);

    let assembled = assemble(study.series.into_iter().next().unwrap()).unwrap();
    assert!(assembled.warnings.is_empty(), "{:?}", assembled.warnings);
    let v = &assembled.volume;
    assert_eq!(v.dims(), [42, 512, 512]);
    assert!((v.spacing()[0] - 8.0).abs() < 1e-3);
    // Slice k of the volume is the k-th file by increasing z (inferior first),
    // whatever the order and names of the files.
    for k in [0, 1, 20, 41] {
        let (name, z) = &by_z[k];
        assert!((v.position(k as f64, 0.0, 0.0)[2] - z).abs() < 1e-6);
        let (_, bytes) = files.iter().find(|(n, _)| n == name).unwrap();
        let expected = read_file(name, bytes).unwrap()[0].pixels.hu();
        let plane = 512 * 512;
        assert_eq!(
            &v.voxels()[k * plane..(k + 1) * plane],
            expected.as_slice(),
            "slice {k}"
        );
    }
}

#[test]
fn the_ct_series_is_chosen_among_scouts_other_modalities_and_junk() {
    let mut files = read_dir(CAP001);
    let conformance = "dicom-conformance/pydicom-test_files";
    for other in [
        "CT_small.dcm",
        "MR_small.dcm",
        "rtplan.dcm",
        "dicomdirtests/DICOMDIR",
    ] {
        let bytes = std::fs::read(shared_data().join(conformance).join(other)).unwrap();
        files.push((other.rsplit('/').next().unwrap().to_owned(), bytes));
    }
    files.push(("notes.txt".to_owned(), b"not a DICOM file at all".to_vec()));
    let study = read_study(shuffled(files, 3));

    let chosen = &study.series[study.default.unwrap()].summary;
    assert_eq!(chosen.slices, 42);
    let unusable: Vec<_> = study
        .series
        .iter()
        .filter_map(|s| s.summary.unusable.clone())
        .collect();
    assert!(
        unusable.iter().any(|u| u.contains("modality \"MR\"")),
        "{unusable:?}"
    );
    assert!(
        unusable.iter().any(|u| u.contains("1 slice")),
        "{unusable:?}"
    );
    let reasons: Vec<String> = study.skipped.iter().map(ToString::to_string).collect();
    for expected in [
        "notes.txt: not a readable DICOM file",
        "DICOMDIR: no image",
        "rtplan.dcm: no image",
    ] {
        assert!(
            reasons.iter().any(|r| r.starts_with(expected)),
            "{expected:?} in {reasons:?}"
        );
    }
}

#[test]
fn duplicates_are_dropped_and_a_missing_slice_is_interpolated() {
    let files = read_dir(CAP001);
    let mut by_z = file_z(&files);
    by_z.sort_by(|a, b| a.1.total_cmp(&b.1));
    let missing = &by_z[20].0;
    let duplicate = files.iter().find(|(n, _)| n == &by_z[5].0).unwrap().clone();
    let mut damaged: Vec<_> = files
        .iter()
        .filter(|(n, _)| n != missing)
        .cloned()
        .collect();
    damaged.push(("copy-of-a-slice.dcm".to_owned(), duplicate.1));

    let study = read_study(shuffled(damaged, 11));
    let assembled = assemble(study.series.into_iter().next().unwrap()).unwrap();
    let warnings = assembled.warnings.join("\n");
    assert!(warnings.contains("1 duplicate slice"), "{warnings}");
    assert!(warnings.contains("uneven slice spacing"), "{warnings}");
    let v = &assembled.volume;
    assert_eq!(
        v.dims(),
        [42, 512, 512],
        "the gap is filled back to 8 mm steps"
    );
    // The filled slice is the mean of its neighbours, in whole HU.
    let plane = 512 * 512;
    let at = |k: usize| &v.voxels()[k * plane..(k + 1) * plane];
    let (below, filled, above) = (at(19), at(20), at(21));
    for i in (0..plane).step_by(4099) {
        let mean = (f32::from(below[i]) + f32::from(above[i])) / 2.0;
        assert!((f32::from(filled[i]) - mean).abs() <= 0.5);
    }
}

fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn a_zip_with_nested_folders_reads_like_the_loose_files() {
    let files = read_dir(CAP001);
    let nested: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, (n, b))| (format!("export/disk{}/{n}", i % 3), b.clone()))
        .collect();
    let archive = zip_of(&nested);
    let from_zip = read_study([("study.zip".to_owned(), archive)]);
    let loose = read_study(files);
    assert!(from_zip.skipped.is_empty(), "{:?}", from_zip.skipped);
    let a = assemble(from_zip.series.into_iter().next().unwrap()).unwrap();
    let b = assemble(loose.series.into_iter().next().unwrap()).unwrap();
    assert_eq!(a.volume, b.volume);
}

#[test]
fn empty_broken_and_oversized_archives_are_refused_with_a_reason() {
    let empty = read_study([("empty.zip".to_owned(), zip_of(&[]))]);
    assert!(
        matches!(&empty.skipped[..], [DicomError::Archive { file, .. }] if file == "empty.zip")
    );

    let mut truncated = zip_of(&read_dir(CAP001)[..2]);
    truncated.truncate(truncated.len() / 2);
    let broken = read_study([("broken.zip".to_owned(), truncated)]);
    assert!(
        matches!(&broken.skipped[..], [DicomError::Archive { .. }]),
        "{:?}",
        broken.skipped
    );

    // A bomb: one entry that inflates past the per-entry limit.
    let bomb = zip_of(&[(
        "zeros.dcm".to_owned(),
        vec![0; MAX_ENTRY_BYTES as usize + 1],
    )]);
    assert!(bomb.len() < 1 << 20, "compresses well");
    let study = read_study([("bomb.zip".to_owned(), bomb)]);
    let reasons: Vec<String> = study.skipped.iter().map(ToString::to_string).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("bomb.zip/zeros.dcm") && r.contains("MiB")),
        "{reasons:?}"
    );
}

#[test]
fn a_series_too_large_for_memory_is_refused_before_allocating() {
    let mut series = read_study(read_dir(CAP001)).series.remove(0);
    assert_eq!(series.summary.volume_bytes, 42 * 512 * 512 * 2);
    series.summary.volume_bytes = dsan_ct::dicom::MAX_VOLUME_BYTES + 1;
    let err = assemble(series).unwrap_err();
    let limit = dsan_ct::dicom::MAX_VOLUME_BYTES / (512 * 512 * 2);
    assert!(err.to_string().contains("MiB"), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("at most {limit} slices of 512x512")),
        "{err}"
    );
}

#[test]
fn a_far_off_slice_that_would_resample_past_the_limit_is_refused_before_allocating() {
    let limit = dsan_ct::dicom::MAX_VOLUME_BYTES / (512 * 512 * 2);
    // The highest of 42 slices 8 mm apart moved 10 km up, then as far as an
    // f64 goes: resampled at 8 mm the series would span 1.25 million slices,
    // then more than a usize counts. Each is refused with the limit named.
    for shift in [1e7, f64::MAX] {
        let mut series = read_study(read_dir(CAP001)).series.remove(0);
        let top = series
            .slices
            .iter_mut()
            .max_by(|a, b| a.position.unwrap()[2].total_cmp(&b.position.unwrap()[2]))
            .unwrap();
        top.position.as_mut().unwrap()[2] += shift;
        let err = assemble(series).unwrap_err().to_string();
        assert!(
            err.contains(&format!("at most {limit} slices of 512x512")),
            "shift {shift}: {err}"
        );
    }
}

#[test]
fn a_sheared_stack_is_reported_as_gantry_tilt() {
    let mut series = read_study(read_dir(CAP001)).series.remove(0);
    // Shift every slice sideways by tan(15°) times its height: a 15° tilt.
    let shear = 15_f64.to_radians().tan();
    for slice in &mut series.slices {
        let p = slice.position.as_mut().unwrap();
        p[1] += shear * p[2];
    }
    let assembled = assemble(series).unwrap();
    let warnings = assembled.warnings.join("\n");
    assert!(warnings.contains("sheared by 15.0°"), "{warnings}");
    assert_eq!(assembled.volume.dims(), [42, 512, 512]);
}

#[test]
fn a_data_set_without_meta_group_reads_like_its_part10_file() {
    use dicom_dictionary_std::uids;
    use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

    let path = shared_data().join("dicom-conformance/pydicom-test_files/CT_small.dcm");
    let bytes = std::fs::read(&path).unwrap();
    let expected = read_file("CT_small.dcm", &bytes).unwrap();
    let dataset = dicom_object::open_file(&path).unwrap().into_inner();
    for uid in [
        uids::IMPLICIT_VR_LITTLE_ENDIAN,
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
    ] {
        let mut bare = Vec::new();
        dataset
            .write_dataset_with_ts(&mut bare, TransferSyntaxRegistry.get(uid).unwrap())
            .unwrap();
        assert_eq!(&bare[..2], &[0x08, 0x00], "starts with group 0008");
        let slices = read_file("bare", &bare).unwrap();
        assert_eq!(slices.len(), 1, "{uid}");
        assert_eq!(
            slices[0].pixels.hu(),
            expected[0].pixels.hu(),
            "{uid}: same HU"
        );
        assert_eq!(slices[0].position, expected[0].position, "{uid}");
        assert_eq!(slices[0].series, expected[0].series, "{uid}");
    }
    // Files that only look alike stay refused with the parser's reason.
    let mut fake = vec![0x08, 0x00, 0x05, 0x00];
    fake.extend(u32::MAX.to_le_bytes());
    fake.extend(b"not really a data set");
    assert!(matches!(
        read_file("fake", &fake),
        Err(DicomError::NotDicom { .. })
    ));
    let no_meta =
        std::fs::read(shared_data().join("dicom-conformance/pydicom-test_files/no_meta.dcm"))
            .unwrap();
    assert!(matches!(
        read_file("no_meta.dcm", &no_meta),
        Err(DicomError::NotDicom { .. })
    ));
}

/// `files` rewritten with `edit` applied to each data set (pixel data kept as encoded).
fn rewrite(
    files: &[(String, Vec<u8>)],
    mut edit: impl FnMut(usize, &mut dicom_object::DefaultDicomObject),
) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .enumerate()
        .map(|(i, (name, bytes))| {
            let mut obj = dicom_object::OpenFileOptions::new()
                .from_reader(&bytes[128..])
                .unwrap();
            edit(i, &mut obj);
            let mut out = Vec::new();
            obj.write_all(&mut out).unwrap();
            (name.clone(), out)
        })
        .collect()
}

fn set_int(obj: &mut dicom_object::DefaultDicomObject, tag: dicom_core::Tag, value: i32) {
    obj.put(dicom_core::DataElement::new(
        tag,
        dicom_core::VR::IS,
        dicom_core::PrimitiveValue::from(value.to_string()),
    ));
}

#[test]
fn two_acquisitions_in_one_series_are_split_but_per_slice_numbers_are_not() {
    use dicom_dictionary_std::tags;
    let files = read_dir(CAP001);
    // The same 42 positions acquired twice (say inspiration and expiration).
    let first = rewrite(&files, |_, obj| set_int(obj, tags::ACQUISITION_NUMBER, 1));
    let second: Vec<(String, Vec<u8>)> = rewrite(&files, |i, obj| {
        set_int(obj, tags::ACQUISITION_NUMBER, 2);
        obj.put(dicom_core::DataElement::new(
            tags::SOP_INSTANCE_UID,
            dicom_core::VR::UI,
            dicom_core::PrimitiveValue::from(format!("2.25.99887766.{i}")),
        ));
    })
    .into_iter()
    .map(|(name, bytes)| (format!("second-{name}"), bytes))
    .collect();
    let study = read_study(shuffled([first, second].concat(), 3));
    assert_eq!(study.series.len(), 2, "one series per acquisition");
    for (series, number) in study.series.iter().zip([1, 2]) {
        assert_eq!(series.summary.slices, 42);
        assert_eq!(series.summary.acquisition, Some(number));
        assert!(
            series
                .summary
                .description
                .ends_with(&format!("(acquisition {number})"))
        );
    }
    let volume = assemble(study.series.into_iter().next().unwrap()).unwrap();
    assert!(
        volume.warnings.is_empty(),
        "no duplicates once split: {:?}",
        volume.warnings
    );

    // A scanner that numbers every slice's acquisition: still one series.
    let stepped = rewrite(&files, |i, obj| {
        set_int(obj, tags::ACQUISITION_NUMBER, i as i32 + 1)
    });
    let study = read_study(stepped);
    assert_eq!(study.series.len(), 1);
    assert_eq!(study.series[0].summary.slices, 42);
    assert_eq!(study.series[0].summary.acquisition, None);
}

/// Reading from disk on several threads gives what one reader gives, and a
/// file that cannot be read is listed with the reason.
#[test]
fn files_read_on_several_threads_give_the_single_reader_result() {
    let dir = shared_data().join("ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001");
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let single = read_study(
        paths
            .iter()
            .map(|p| (p.display().to_string(), std::fs::read(p).unwrap())),
    );
    let missing = dir.join("no-such-file.dcm");
    paths.insert(7, missing.clone());
    let parallel = dsan_ct::dicom::read_paths(&paths, 3);
    assert_eq!(parallel.series.len(), single.series.len());
    assert_eq!(parallel.default, single.default);
    let a = assemble(single.series.into_iter().next().unwrap())
        .unwrap()
        .volume;
    let b = assemble(parallel.series.into_iter().next().unwrap())
        .unwrap()
        .volume;
    assert_eq!(a.dims(), b.dims());
    assert_eq!(a.origin(), b.origin());
    assert!(a.voxels() == b.voxels(), "same HU voxel for voxel");
    assert_eq!(parallel.skipped.len(), 1);
    assert!(matches!(
        &parallel.skipped[0],
        DicomError::Unreadable { file, .. } if file == &missing.display().to_string()
    ));
}
