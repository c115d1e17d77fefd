//! DICOM read benchmark (`cargo bench --bench dicom_read`): a 300-slice
//! 512x512 uncompressed CT series, built from a real file's header with
//! synthetic pixels, and a real 20-slice JPEG 2000 series, each read from disk
//! and assembled into a volume by our reader, and by pydicom + numpy in the
//! same command (the reference; skipped with a note when pydicom or its
//! JPEG 2000 plugin is not installed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, OpenFileOptions};
use dsan_ct::dicom::{Study, StudyReader, assemble, read_paths};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A real CT series in JPEG 2000 lossless: 20 slices of 512x512.
const J2K_SERIES: &str = "ct-real/totalsegmentator-example/dicom";

const TEMPLATE: &str = "ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001/98C1066-ASAD_1.dcm";

fn shared_data() -> PathBuf {
    std::env::var_os("DSAN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// Writes `slices` uncompressed files into `dir` from the template's header.
fn write_series(dir: &Path, slices: usize) -> BenchResult<()> {
    let template = OpenFileOptions::new().open_file(shared_data().join(TEMPLATE))?;
    let base = template.into_inner();
    for k in 0..slices {
        let mut obj = base.clone();
        let pixels: Vec<u16> = (0..512 * 512)
            .map(|i| ((i % 512 + i / 512 + k * 3) % 2048) as u16)
            .collect();
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(pixels.into()),
        ));
        let z = format!("0\\0\\{}", -(k as f64));
        obj.put(DataElement::new(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            PrimitiveValue::from(z),
        ));
        let uid = format!("2.25.1234567890.{k}");
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uid),
        ));
        obj.put(DataElement::new(
            tags::INSTANCE_NUMBER,
            VR::IS,
            PrimitiveValue::from((k + 1).to_string()),
        ));
        let file = obj.with_meta(
            FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
        )?;
        file.write_to_file(dir.join(format!("slice{k:04}")))?;
    }
    Ok(())
}

fn read_ours(dir: &Path) -> BenchResult<[usize; 3]> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let mut reader = StudyReader::default();
    for file in &files {
        reader.add(&file.display().to_string(), &std::fs::read(file)?);
    }
    assembled_dims(reader.finish())
}

/// The same files read on every core (`read_paths`, what `dsan` uses natively).
fn read_ours_parallel(dir: &Path, threads: usize) -> BenchResult<[usize; 3]> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    assembled_dims(read_paths(&files, threads))
}

fn assembled_dims(study: Study) -> BenchResult<[usize; 3]> {
    let index = study.default.ok_or("no series")?;
    let series = study.series.into_iter().nth(index).ok_or("no series")?;
    Ok(assemble(series)?.volume.dims())
}

/// Each reader runs this many times; the fastest run counts (the others
/// differ by what else the machine was doing).
const RUNS: usize = 5;

const PYDICOM: &str = r#"
import sys, time, pathlib
import numpy as np, pydicom
best = None
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    ds = [pydicom.dcmread(p) for p in sorted(pathlib.Path(sys.argv[1]).iterdir())]
    ds.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    vol = np.stack([d.pixel_array.astype(np.float32) * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in ds])
    best = min(best or 1e9, time.perf_counter() - t)
print(best, *vol.shape)
"#;

/// The fastest of [`RUNS`] runs of `read`, in seconds, and its result.
fn fastest<T>(mut read: impl FnMut() -> BenchResult<T>) -> BenchResult<(f64, T)> {
    let mut best = f64::MAX;
    let mut result = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        result = Some(read()?);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok((best, result.ok_or("no run")?))
}

/// Reads the series in `dir` with our reader on one thread and on every
/// core, and with pydicom + numpy, and prints the times and ratios.
fn compare(label: &str, dir: &Path) -> BenchResult<()> {
    let slices = std::fs::read_dir(dir)?.count();
    let (ours, dims) = fastest(|| read_ours(dir))?;
    println!(
        "{label}: dsan-ct reads {slices} files -> volume {dims:?} in {:.3} s ({:.1} ms/slice), one thread, fastest of {RUNS}",
        ours,
        ours * 1e3 / slices as f64
    );
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (parallel, parallel_dims) = fastest(|| read_ours_parallel(dir, threads))?;
    assert_eq!(parallel_dims, dims);
    println!(
        "{label}: the same on {threads} threads (read_paths) in {parallel:.3} s ({:.2}x one thread)",
        ours / parallel
    );
    match Command::new("python3")
        .arg("-c")
        .arg(PYDICOM)
        .arg(dir)
        .arg(RUNS.to_string())
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let seconds: f64 = text
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("pydicom output")?;
            println!("{label}: pydicom + numpy: {seconds:.3} s ({})", text.trim());
            println!(
                "{label}: speed-up over pydicom: {:.2}x on one thread, {:.2}x on {threads} threads",
                seconds / ours,
                seconds / parallel
            );
        }
        Ok(out) => println!(
            "{label}: pydicom reference not run: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ),
        Err(e) => println!("{label}: pydicom reference not run: {e}"),
    }
    Ok(())
}

fn main() -> BenchResult<()> {
    let slices: usize = std::env::var("DSAN_BENCH_SLICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = std::env::temp_dir().join(format!("dsan-dicom-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    write_series(&dir, slices)?;
    compare("uncompressed", &dir)?;
    // pydicom decodes JPEG 2000 with pylibjpeg-openjpeg (pip install
    // pylibjpeg-openjpeg), the reference here.
    compare("JPEG 2000", &shared_data().join(J2K_SERIES))?;
    if std::env::var_os("DSAN_BENCH_KEEP").is_none() {
        std::fs::remove_dir_all(&dir)?;
    } else {
        println!("kept {}", dir.display());
    }
    Ok(())
}
