//! Preprocessing benchmark (`cargo bench --bench preprocess`): lung mask,
//! crop and resample onto the web model's grid for a 512 x 512 x 300 chest
//! phantom, single thread, against a Python reference of the same steps
//! (numpy, scipy.ndimage, scikit-image: `benches/preprocess_reference.py`)
//! run on the same voxels in the same command (skipped with a note when
//! scipy or scikit-image is missing). With `DSAN_BENCH_KEEP=1` the phantom is
//! also written as NIfTI for the browser figure:
//! `node tests/e2e/diagnose.bench.mjs <the file it prints>`.

use std::process::Command;
use std::time::Instant;

use dsan_ct::model::DsanConfig;
use dsan_ct::phantom::{Lesion, LesionPattern, PhantomConfig, chest_phantom, hu};
use dsan_ct::preprocess::{LungMaskConfig, prepare_input, segment_lungs};
use dsan_ct::weights::Preprocessing;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const RUNS: usize = 5;

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Writes the phantom as a NIfTI-1 file of int16 HU (axial, LPS -> RAS).
fn write_phantom_nifti(
    path: &std::path::Path,
    volume: &dsan_ct::volume::Volume,
) -> BenchResult<()> {
    let [d, h, w] = volume.dims();
    let [dk, dj, di] = volume.spacing();
    let o = volume.origin();
    let header = nifti::NiftiHeader {
        pixdim: [1.0, di as f32, dj as f32, dk as f32, 1.0, 1.0, 1.0, 1.0],
        sform_code: 1,
        srow_x: [-(di as f32), 0.0, 0.0, -(o[0] as f32)],
        srow_y: [0.0, -(dj as f32), 0.0, -(o[1] as f32)],
        srow_z: [0.0, 0.0, dk as f32, o[2] as f32],
        xyzt_units: 2,
        ..nifti::NiftiHeader::default()
    };
    let array =
        ndarray::Array3::from_shape_vec((d, h, w), volume.voxels().to_vec())?.reversed_axes();
    nifti::writer::WriterOptions::new(path)
        .reference_header(&header)
        .write_nifti(&array)?;
    Ok(())
}

fn main() -> BenchResult<()> {
    let phantom = chest_phantom(&PhantomConfig {
        dims: [300, 512, 512],
        spacing: [1.0, 0.7, 0.7],
        lesions: vec![Lesion {
            centre_mm: [-75.0, 70.0, 0.0],
            radii_mm: [22.0, 20.0, 25.0],
            hu: hu::CONSOLIDATION,
            pattern: LesionPattern::Solid,
        }],
        ..PhantomConfig::default()
    });
    let volume = &phantom.volume;
    let grid = DsanConfig::web_default().input;
    let config = LungMaskConfig::default();
    let mut mask_times = Vec::new();
    let mut total_times = Vec::new();
    let mut dice = 0.0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let lungs = segment_lungs(volume, &config)?;
        let masked = start.elapsed().as_secs_f64();
        let input = prepare_input(volume, &lungs, &Preprocessing::default(), grid)?;
        total_times.push(start.elapsed().as_secs_f64());
        mask_times.push(masked);
        dice = lungs.mask.dice(&phantom.lungs).unwrap_or(0.0);
        assert_eq!(input.values.len(), grid.iter().product::<usize>());
    }
    let ours = median(total_times);
    println!(
        "preprocess 512x512x300 (lung mask + crop + resample to {grid:?}), single thread: median {:.3} s \
         (lung mask {:.3} s) over {RUNS} runs; Dice vs truth {dice:.4}",
        ours,
        median(mask_times)
    );

    // The Python reference reads the same voxels from a raw file.
    let dir = std::env::temp_dir().join(format!("dsan-bench-preprocess-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let raw = dir.join("volume.f32");
    let bytes: Vec<u8> = volume
        .voxels()
        .iter()
        .flat_map(|&v| f32::from(v).to_le_bytes())
        .collect();
    std::fs::write(&raw, bytes)?;
    let [d, h, w] = volume.dims();
    let [sd, sh, sw] = volume.spacing();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/preprocess_reference.py"
    );
    let output = Command::new("python3")
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .args([script, raw.to_str().unwrap_or_default()])
        .args([d, h, w].map(|n| n.to_string()))
        .args([sd, sh, sw].map(|s| s.to_string()))
        .arg(RUNS.to_string())
        .output();
    std::fs::remove_dir_all(&dir)?;
    if std::env::var_os("DSAN_BENCH_KEEP").is_some() {
        let path = std::env::temp_dir().join("dsan-bench-phantom-512x512x300.nii");
        write_phantom_nifti(&path, volume)?;
        println!("kept {}", path.display());
    }
    match output {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let reference: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix("median_s "))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("the reference printed no median")?;
            let lung_ml = text
                .lines()
                .find_map(|l| l.strip_prefix("lung_ml "))
                .unwrap_or("?");
            println!(
                "python reference (numpy + scipy.ndimage + scikit-image, single thread): median {reference:.3} s, \
                 lungs {} mL (ours {:.0} mL)",
                lung_ml.trim(),
                phantom.lungs.volume_ml()
            );
            println!(
                "ratio: ours is {:.1}x faster than the reference",
                reference / ours
            );
        }
        Ok(out) => println!(
            "python reference skipped: {} (pip install numpy scipy scikit-image)",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("failed")
        ),
        Err(e) => println!("python reference skipped: python3 not runnable ({e})"),
    }
    Ok(())
}
