//! Where the cases of a data folder and their labels come from: our own
//! `labels.csv`, or the folder layouts of public datasets, whose class is the
//! name of a folder.
//!
//! - `covid-ct-md` (COVID-CT-MD, Afshar et al. 2021): `<class>/<patient>/`
//!   holding one DICOM series, the class folder named `COVID-19`, `CAP` or
//!   `Normal` (upstream also "COVID-19 subjects", "Cap subjects", "Normal
//!   subjects"); class folders are found at any depth.
//! - `cc-ccii` (CC-CCII-style): `<class>/<patient>/<scan>/`, the class folder
//!   named `NCP` (COVID-19), `CP` (CAP) or `Normal`; one case per scan folder.
//!   A scan is DICOM, NIfTI, or CC-CCII's own PNG/JPEG slice images, read
//!   back to HU through the window and spacing of `crate::data::slice_images`.
//!
//! Folder layouts carry no infection masks. Cases of a class the run does not
//! train (e.g. normal lungs for the paper's two-class task) are left out and
//! counted.

use std::path::Path;

use anyhow::{Context, ensure};

use crate::data::dataset::{CaseRecord, read_labels};

/// A data folder's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// `labels.csv` beside the cases (see `dataset`).
    LabelsCsv,
    /// COVID-CT-MD's `<class>/<patient>/` folders.
    CovidCtMd,
    /// CC-CCII-style `<class>/<patient>/<scan>/` folders.
    CcCcii,
}

/// Number of cases left out, per label.
pub type LeftOut = Vec<(String, usize)>;

/// The cases of `dir` in `layout`, restricted to `classes` for folder layouts;
/// also the number of cases left out per label.
pub fn case_records(
    dir: &Path,
    layout: Layout,
    classes: &[String],
) -> anyhow::Result<(Vec<CaseRecord>, LeftOut)> {
    let found = match layout {
        Layout::LabelsCsv => return Ok((read_labels(dir)?, Vec::new())),
        Layout::CovidCtMd => class_folders(dir, covid_ct_md_class, 1)?,
        Layout::CcCcii => class_folders(dir, cc_ccii_class, 2)?,
    };
    let mut left_out: LeftOut = Vec::new();
    let mut records = Vec::new();
    for record in found {
        if classes.contains(&record.label) {
            records.push(record);
        } else if let Some(entry) = left_out.iter_mut().find(|(l, _)| *l == record.label) {
            entry.1 += 1;
        } else {
            left_out.push((record.label, 1));
        }
    }
    ensure!(
        !records.is_empty(),
        "{}: no cases of the classes {classes:?} in the {layout:?} layout (left out: {left_out:?})",
        dir.display()
    );
    Ok((records, left_out))
}

fn covid_ct_md_class(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    if name.starts_with("covid") {
        Some("COVID-19")
    } else if name.starts_with("cap") {
        Some("CAP")
    } else if name.starts_with("normal") {
        Some("normal")
    } else {
        None
    }
}

fn cc_ccii_class(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "ncp" => Some("COVID-19"),
        "cp" => Some("CAP"),
        "normal" => Some("normal"),
        _ => None,
    }
}

fn subfolders(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Every case under class folders (found at any depth below `root`): the
/// folders `depth` levels below a class folder, the first of them the patient.
fn class_folders(
    root: &Path,
    class_of: fn(&str) -> Option<&'static str>,
    depth: usize,
) -> anyhow::Result<Vec<CaseRecord>> {
    let mut records = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(relative) = pending.pop() {
        for name in subfolders(&root.join(&relative))? {
            let path = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            let Some(label) = class_of(&name) else {
                if !name.starts_with('.') {
                    pending.push(path);
                }
                continue;
            };
            for patient in subfolders(&root.join(&path))? {
                let mut cases = vec![format!("{path}/{patient}")];
                for _ in 1..depth {
                    let mut deeper = Vec::new();
                    for case in &cases {
                        deeper.extend(
                            subfolders(&root.join(case))?
                                .into_iter()
                                .map(|s| format!("{case}/{s}")),
                        );
                    }
                    cases = deeper;
                }
                records.extend(cases.into_iter().map(|case_id| CaseRecord {
                    case_id,
                    patient_id: patient.clone(),
                    label: label.to_owned(),
                    infection_mask: None,
                }));
            }
        }
    }
    records.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn cc_ccii_folders_give_one_case_per_scan_and_the_patient() {
        let root = std::env::temp_dir().join(format!("dsan-ccii-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for scan in ["NCP/12/1001", "NCP/12/1002", "CP/40/2001", "Normal/77/3001"] {
            std::fs::create_dir_all(root.join(scan)).unwrap();
        }
        let (records, left_out) =
            case_records(&root, Layout::CcCcii, &classes(&["CAP", "COVID-19"])).unwrap();
        let ids: Vec<(&str, &str, &str)> = records
            .iter()
            .map(|r| (r.case_id.as_str(), r.patient_id.as_str(), r.label.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                ("CP/40/2001", "40", "CAP"),
                ("NCP/12/1001", "12", "COVID-19"),
                ("NCP/12/1002", "12", "COVID-19")
            ]
        );
        assert_eq!(left_out, [("normal".to_owned(), 1)]);
        let (three, none) = case_records(
            &root,
            Layout::CcCcii,
            &classes(&["CAP", "COVID-19", "normal"]),
        )
        .unwrap();
        assert_eq!((three.len(), none.len()), (4, 0));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
