//! The two sampling strategies of the dual-sampling method: branch U draws
//! training cases uniformly; branch B draws them so that every (class,
//! infection-size band) group has the same total probability, which shows the
//! network small-infection COVID-19 and large-infection CAP as often as the
//! common cases (../shared/DESIGN.md).

use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use serde::{Deserialize, Serialize};

/// Which sampler a branch is trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sampling {
    /// Every case equally likely (branch U).
    Uniform,
    /// Every (class, size band) group equally likely (branch B).
    SizeBalanced,
}

/// A case's infection size relative to the training set: the tertiles of the
/// infection ratio (infected volume / lung volume) over the training cases
/// that have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SizeBand {
    /// Up to the first tertile.
    Small,
    /// Between the tertiles.
    Medium,
    /// Above the second tertile.
    Large,
    /// The case has no infection mask: it forms its own group per class.
    Unknown,
}

impl SizeBand {
    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
            Self::Unknown => "unknown",
        }
    }
}

/// The tertiles of the infection ratios and the band of each case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeBands {
    /// First and second tertile of the ratios (0 and 0 when no case has one).
    pub tertiles: [f64; 2],
    /// Band per case.
    pub bands: Vec<SizeBand>,
}

impl SizeBands {
    /// Splits `ratios` (per case; `None` without a mask) at their tertiles.
    pub fn from_ratios(ratios: &[Option<f64>]) -> Self {
        let mut known: Vec<f64> = ratios.iter().flatten().copied().collect();
        known.sort_by(f64::total_cmp);
        let quantile = |q: f64| {
            if known.is_empty() {
                0.0
            } else {
                known[((known.len() - 1) as f64 * q).round() as usize]
            }
        };
        let tertiles = [quantile(1.0 / 3.0), quantile(2.0 / 3.0)];
        Self {
            tertiles,
            bands: ratios.iter().map(|r| Self::band_of(tertiles, *r)).collect(),
        }
    }

    /// The band of `ratio` given the training set's tertiles.
    pub fn band_of(tertiles: [f64; 2], ratio: Option<f64>) -> SizeBand {
        match ratio {
            None => SizeBand::Unknown,
            Some(r) if r <= tertiles[0] => SizeBand::Small,
            Some(r) if r <= tertiles[1] => SizeBand::Medium,
            Some(_) => SizeBand::Large,
        }
    }
}

/// Draws case indices with fixed per-case probabilities.
#[derive(Debug, Clone)]
pub struct CaseSampler {
    probabilities: Vec<f64>,
    index: WeightedIndex<f64>,
}

/// A sampler that cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SamplerError {
    /// There are no training cases.
    #[error("no training cases to sample from")]
    Empty,
    /// Labels and bands disagree in length.
    #[error("{labels} labels but {bands} size bands")]
    Mismatch {
        /// Number of labels.
        labels: usize,
        /// Number of bands.
        bands: usize,
    },
}

impl CaseSampler {
    /// The sampler for `sampling` over cases with `labels` and `bands`.
    pub fn new(
        sampling: Sampling,
        labels: &[usize],
        bands: &[SizeBand],
    ) -> Result<Self, SamplerError> {
        if labels.is_empty() {
            return Err(SamplerError::Empty);
        }
        if labels.len() != bands.len() {
            return Err(SamplerError::Mismatch {
                labels: labels.len(),
                bands: bands.len(),
            });
        }
        let probabilities = match sampling {
            Sampling::Uniform => vec![1.0 / labels.len() as f64; labels.len()],
            Sampling::SizeBalanced => {
                let groups: Vec<(usize, SizeBand)> =
                    labels.iter().copied().zip(bands.iter().copied()).collect();
                let mut distinct = groups.clone();
                distinct.sort();
                distinct.dedup();
                let size = |g: &(usize, SizeBand)| groups.iter().filter(|x| *x == g).count();
                groups
                    .iter()
                    .map(|g| 1.0 / (distinct.len() * size(g)) as f64)
                    .collect()
            }
        };
        let index = WeightedIndex::new(&probabilities).map_err(|_| SamplerError::Empty)?;
        Ok(Self {
            probabilities,
            index,
        })
    }

    /// Probability of drawing each case.
    pub fn probabilities(&self) -> &[f64] {
        &self.probabilities
    }

    /// Draws `n` case indices (with replacement).
    pub fn draw(&self, n: usize, rng: &mut impl Rng) -> Vec<usize> {
        (0..n).map(|_| self.index.sample(rng)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// An imbalanced training set like the paper's: COVID-19 (1) mostly large,
    /// CAP (0) mostly small, with overlap.
    fn imbalanced() -> (Vec<usize>, Vec<Option<f64>>) {
        let mut labels = Vec::new();
        let mut ratios = Vec::new();
        for i in 0..60 {
            labels.push(1);
            ratios.push(Some(if i < 10 {
                0.01 + i as f64 * 1e-4
            } else {
                0.2 + i as f64 * 1e-3
            }));
        }
        for i in 0..40 {
            labels.push(0);
            ratios.push(Some(if i < 30 {
                0.005 + i as f64 * 1e-4
            } else {
                0.1 + i as f64 * 1e-3
            }));
        }
        labels.push(0);
        ratios.push(None);
        (labels, ratios)
    }

    fn frequencies(
        sampler: &CaseSampler,
        groups: &[(usize, SizeBand)],
    ) -> Vec<((usize, SizeBand), f64, f64)> {
        let draws = 10_000;
        let mut rng = StdRng::seed_from_u64(7);
        let drawn = sampler.draw(draws, &mut rng);
        let mut distinct = groups.to_vec();
        distinct.sort();
        distinct.dedup();
        distinct
            .into_iter()
            .map(|g| {
                let observed =
                    drawn.iter().filter(|&&i| groups[i] == g).count() as f64 / draws as f64;
                let designed: f64 = (0..groups.len())
                    .filter(|&i| groups[i] == g)
                    .map(|i| sampler.probabilities()[i])
                    .sum();
                (g, observed, designed)
            })
            .collect()
    }

    #[test]
    fn size_balanced_draws_give_every_group_the_same_share() {
        let (labels, ratios) = imbalanced();
        let bands = SizeBands::from_ratios(&ratios);
        let groups: Vec<_> = labels
            .iter()
            .copied()
            .zip(bands.bands.iter().copied())
            .collect();
        let sampler = CaseSampler::new(Sampling::SizeBalanced, &labels, &bands.bands).unwrap();
        let rows = frequencies(&sampler, &groups);
        let share = 1.0 / rows.len() as f64;
        assert!(rows.len() >= 5, "{rows:?}");
        for (group, observed, designed) in rows {
            assert!(
                (designed - share).abs() < 1e-12,
                "{group:?} designed {designed}"
            );
            assert!(
                (observed - designed).abs() < 0.02,
                "{group:?}: {observed} vs {designed}"
            );
        }
        // Small-infection COVID-19 is rare in the data but not in branch B's draws.
        let small_covid = groups
            .iter()
            .filter(|g| **g == (1, SizeBand::Small))
            .count();
        assert!(small_covid < 15, "{small_covid}");
    }

    #[test]
    fn uniform_draws_follow_the_data() {
        let (labels, ratios) = imbalanced();
        let bands = SizeBands::from_ratios(&ratios);
        let groups: Vec<_> = labels
            .iter()
            .copied()
            .zip(bands.bands.iter().copied())
            .collect();
        let sampler = CaseSampler::new(Sampling::Uniform, &labels, &bands.bands).unwrap();
        for (group, observed, designed) in frequencies(&sampler, &groups) {
            let count = groups.iter().filter(|g| **g == group).count();
            assert!((designed - count as f64 / labels.len() as f64).abs() < 1e-12);
            assert!(
                (observed - designed).abs() < 0.02,
                "{group:?}: {observed} vs {designed}"
            );
        }
    }

    #[test]
    fn bands_split_at_the_training_tertiles() {
        let ratios: Vec<Option<f64>> = (1..=9).map(|i| Some(f64::from(i))).chain([None]).collect();
        let bands = SizeBands::from_ratios(&ratios);
        assert_eq!(bands.tertiles, [4.0, 6.0]);
        assert_eq!(bands.bands[0], SizeBand::Small);
        assert_eq!(bands.bands[4], SizeBand::Medium);
        assert_eq!(bands.bands[8], SizeBand::Large);
        assert_eq!(bands.bands[9], SizeBand::Unknown);
        assert_eq!(
            CaseSampler::new(Sampling::Uniform, &[], &[]).unwrap_err(),
            SamplerError::Empty
        );
    }
}
