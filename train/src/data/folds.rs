//! Cross-validation folds split by patient: every case of a patient lands in
//! the same fold, so no patient is both trained on and tested on. Patients are
//! dealt to folds class by class (a patient's class is their most frequent
//! label), in a seeded shuffle with the patients with most scans first, each
//! to the fold with the fewest cases of that class so far, so folds get a
//! similar size and class mix.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// The fold (0..k) of every case, given each case's patient and label.
pub fn patient_folds(patients: &[String], labels: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let mut by_patient: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in patients.iter().enumerate() {
        by_patient.entry(p.as_str()).or_default().push(i);
    }
    let mut by_class: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (patient, cases) in &by_patient {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for &i in cases {
            *counts.entry(labels[i]).or_default() += 1;
        }
        let class = counts
            .iter()
            .max_by_key(|(class, n)| (**n, std::cmp::Reverse(**class)))
            .map_or(0, |(class, _)| *class);
        by_class.entry(class).or_default().push(patient);
    }
    let k = k.max(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold_of = vec![0; patients.len()];
    let mut totals = vec![0usize; k];
    for patients in by_class.values_mut() {
        patients.shuffle(&mut rng);
        patients.sort_by_key(|p| std::cmp::Reverse(by_patient[p].len()));
        let mut in_class = vec![0usize; k];
        for patient in patients.iter() {
            let fold = (0..k)
                .min_by_key(|&f| (in_class[f], totals[f]))
                .unwrap_or(0);
            let cases = &by_patient[patient];
            for &i in cases {
                fold_of[i] = fold;
            }
            in_class[fold] += cases.len();
            totals[fold] += cases.len();
        }
    }
    fold_of
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_patient_is_split_and_folds_are_balanced() {
        // 97 patients with 1-3 scans each, labels by patient (one mixed patient).
        let mut patients = Vec::new();
        let mut labels = Vec::new();
        for p in 0..97 {
            for scan in 0..(1 + p % 3) {
                patients.push(format!("patient-{p}"));
                labels.push(if p == 5 {
                    scan % 2
                } else {
                    usize::from(p % 4 == 0)
                });
            }
        }
        for seed in 0..5 {
            let folds = patient_folds(&patients, &labels, 5, seed);
            for p in &patients {
                let mine: Vec<usize> = (0..patients.len())
                    .filter(|&i| &patients[i] == p)
                    .map(|i| folds[i])
                    .collect();
                assert!(mine.windows(2).all(|w| w[0] == w[1]), "{p} split: {mine:?}");
            }
            for class in 0..2 {
                let per_fold: Vec<usize> = (0..5)
                    .map(|f| {
                        (0..patients.len())
                            .filter(|&i| folds[i] == f && labels[i] == class)
                            .count()
                    })
                    .collect();
                let (lo, hi) = (
                    per_fold.iter().min().unwrap(),
                    per_fold.iter().max().unwrap(),
                );
                assert!(hi - lo <= 3, "class {class}: {per_fold:?}");
            }
        }
        assert_ne!(
            patient_folds(&patients, &labels, 5, 0),
            patient_folds(&patients, &labels, 5, 1)
        );
    }
}
