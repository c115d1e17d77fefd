//! The `dsan` binary end to end: help, model-info, inspect, self-check.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};

use common::shared_data;
use dsan_ct::model::DsanConfig;
use dsan_ct::probe::seeded_cpu_model;
use dsan_ct::weights::{
    CARD_FORMAT_VERSION, ModelCard, Preprocessing, TrainingData, encode_weights, save_model_files,
};

fn dsan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsan"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_the_subcommands() {
    let out = dsan(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in ["model-info", "inspect", "phantoms", "predict", "self-check"] {
        assert!(help.contains(command), "{command} in {help}");
    }
}

#[test]
fn model_info_verifies_the_weights_and_refuses_a_corrupted_file() {
    let config = DsanConfig::tiny();
    let (weights, mut bytes) = encode_weights(seeded_cpu_model(&config, 8), "tiny.mpk").unwrap();
    let card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: "cli-test".into(),
        version: "1.2.3".into(),
        architecture: config,
        preprocessing: Preprocessing::default(),
        classes: vec!["CAP".into(), "COVID-19".into()],
        weights,
        training_data: TrainingData {
            description: "seeded random weights".into(),
            synthetic: true,
            cases_per_class: vec![("CAP".into(), 0), ("COVID-19".into(), 0)],
        },
        metrics: vec![],
        intended_use: "testing the CLI".into(),
        limitations: "untrained".into(),
    };
    let dir = std::env::temp_dir().join(format!("dsan-cli-{}", std::process::id()));
    let card_path = save_model_files(&dir, "card.json", &card, &bytes).unwrap();
    let card_arg = card_path.to_str().unwrap();

    let out = dsan(&["model-info", card_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = text(&out.stdout);
    assert!(info.starts_with("cli-test 1.2.3"), "{info}");
    assert!(info.contains("verified"), "{info}");
    assert!(info.contains("CAP, COVID-19"), "{info}");

    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.join("tiny.mpk"), &bytes).unwrap();
    let out = dsan(&["model-info", card_arg]);
    assert!(!out.status.success());
    let error = text(&out.stderr);
    assert!(
        error.contains("tiny.mpk") && error.contains("SHA-256"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn inspect_reports_series_the_default_and_skipped_files() {
    let data = shared_data();
    let folder = data.join("ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001");
    let small = data.join("dicom-conformance/pydicom-test_files/CT_small.dcm");
    let readme = data.join("ct-real/covid-ct-md/README.md");
    let out = dsan(&[
        "inspect",
        folder.to_str().unwrap(),
        small.to_str().unwrap(),
        readme.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let series = report["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    let default: Vec<_> = series.iter().filter(|s| s["default"] == true).collect();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0]["slices"], 42);
    assert_eq!(default[0]["modality"], "CT");
    assert_eq!(default[0]["hu_min"], -1024.0);
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].as_str().unwrap().contains("README.md"));
}

#[test]
fn self_check_prints_probabilities() {
    let out = dsan(&["self-check", "--preset", "tiny", "--seed", "5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ensemble: Vec<f64> = summary["ensemble"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(ensemble.len(), 2);
    assert!((ensemble.iter().sum::<f64>() - 1.0).abs() < 1e-5);
    assert_eq!(summary["attention_grid"], serde_json::json!([2, 2, 2]));
}

#[test]
fn predict_diagnoses_a_series_and_writes_maps_on_its_grid() {
    let series = shared_data().join("ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001");
    let out_dir = std::env::temp_dir().join(format!("dsan-predict-{}", std::process::id()));
    let out = dsan(&[
        "predict",
        series.to_str().unwrap(),
        "--preset",
        "tiny",
        "--seed",
        "7",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diagnosis = &report["diagnosis"];
    let p = diagnosis["positive_probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(diagnosis["classes"], serde_json::json!(["CAP", "COVID-19"]));
    assert!(
        report["model"]["name"]
            .as_str()
            .unwrap()
            .contains("untrained")
    );
    let lung_ml = diagnosis["lung_volume_ml"].as_f64().unwrap();
    assert!((1500.0..9000.0).contains(&lung_ml), "{lung_ml}");
    assert_eq!(diagnosis["timings"].as_array().unwrap().len(), 4);
    // The file holds the same JSON as stdout.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("diagnosis.json")).unwrap()).unwrap();
    assert_eq!(saved, report);

    // The NIfTI maps lie on the CT's grid: same dims, spacing, origin and axes
    // when read back by the library's NIfTI reader.
    let ct = common::read_volume("ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001");
    for name in [
        "lung-mask.nii.gz",
        "attention.nii.gz",
        "attention-uniform.nii.gz",
    ] {
        let bytes = std::fs::read(out_dir.join(name)).unwrap();
        let map = dsan_ct::volume::read_nifti(name, &bytes).unwrap();
        assert_eq!(map.dims(), ct.dims(), "{name}");
        for a in 0..3 {
            assert!((map.spacing()[a] - ct.spacing()[a]).abs() < 1e-3, "{name}");
            assert!(
                (map.origin()[a] - ct.origin()[a]).abs() < 1e-2,
                "{name}: {:?} vs {:?}",
                map.origin(),
                ct.origin()
            );
            for b in 0..3 {
                assert!(
                    (map.direction()[a][b] - ct.direction()[a][b]).abs() < 1e-6,
                    "{name}"
                );
            }
        }
        if name == "lung-mask.nii.gz" {
            let ml = map.voxels().iter().filter(|&&v| v > 0.5).count() as f64 * map.voxel_ml();
            assert!((ml - lung_ml).abs() < 1.0, "{ml} vs {lung_ml}");
        }
    }
    let png = std::fs::read(out_dir.join("mosaic.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // 4 x 3 tiles of 512 x 512: width and height in the IHDR chunk.
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 2048);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 1536);
    std::fs::remove_dir_all(&out_dir).unwrap();
}

#[test]
fn predict_refuses_input_without_a_ct_with_the_reason() {
    let dicomdir =
        shared_data().join("dicom-conformance/pydicom-test_files/dicomdirtests/DICOMDIR");
    let out = dsan(&["predict", dicomdir.to_str().unwrap(), "--preset", "tiny"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no CT series") && err.contains("DICOMDIR"),
        "{err}"
    );
}

#[test]
fn phantoms_are_dicom_series_with_masks_and_labels() {
    use dsan_ct::preprocess::{LungMaskConfig, segment_lungs};

    let out_dir = std::env::temp_dir().join(format!("dsan-phantoms-{}", std::process::id()));
    let out = dsan(&[
        "phantoms",
        "--out",
        out_dir.to_str().unwrap(),
        "--n",
        "2",
        "--seed",
        "5",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let labels = std::fs::read_to_string(out_dir.join("labels.csv")).unwrap();
    let rows: Vec<Vec<&str>> = labels
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(
        labels.lines().next(),
        Some("case_id,patient_id,label,infection_mask")
    );
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0][2], rows[1][2]), ("CAP", "COVID-19"));
    for row in rows {
        let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out_dir.join(row[0]))
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (path.display().to_string(), std::fs::read(&path).unwrap())
            })
            .collect();
        let study = dsan_ct::dicom::read_study(files);
        assert!(study.skipped.is_empty(), "{:?}", study.skipped);
        assert_eq!(study.series.len(), 1);
        assert_eq!(study.default, Some(0), "the phantom series is the default");
        let volume = dsan_ct::dicom::assemble(study.series.into_iter().next().unwrap())
            .unwrap()
            .volume;
        assert_eq!(volume.dims(), [100, 256, 256]);
        let mask_bytes = std::fs::read(out_dir.join(row[3])).unwrap();
        let mask = dsan_ct::volume::read_nifti(row[3], &mask_bytes).unwrap();
        assert_eq!(mask.dims(), volume.dims());
        for a in 0..3 {
            assert!((mask.origin()[a] - volume.origin()[a]).abs() < 1e-3);
            assert!((mask.spacing()[a] - volume.spacing()[a]).abs() < 1e-6);
        }
        // Lesions are denser than lung and lie inside the lungs our own
        // segmentation finds.
        let lungs = segment_lungs(&volume, &LungMaskConfig::default()).unwrap();
        let infected: Vec<usize> = (0..mask.voxels().len())
            .filter(|&x| mask.voxels()[x] > 0.5)
            .collect();
        assert!(
            infected.len() > 100,
            "{}: {} infected voxels",
            row[0],
            infected.len()
        );
        let mean = infected
            .iter()
            .map(|&x| f64::from(volume.voxels()[x]))
            .sum::<f64>()
            / infected.len() as f64;
        assert!(mean > -700.0, "{}: mean lesion HU {mean}", row[0]);
        let inside = infected
            .iter()
            .filter(|&&x| lungs.mask.data()[x] != 0)
            .count();
        let share = inside as f64 / infected.len() as f64;
        println!(
            "{}: lungs {:.0} mL, {} infected voxels, {:.1}% inside the lung mask",
            row[0],
            lungs.volume_ml,
            infected.len(),
            100.0 * share
        );
        assert!(share > 0.75, "{}: {share}", row[0]);
    }
    std::fs::remove_dir_all(&out_dir).unwrap();
}
