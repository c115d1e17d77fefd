//! DICOM read benchmark (`cargo bench --bench dicom_read`): a 300-slice
//! 512x512 uncompressed CT series, built from a real file's header with
//! synthetic pixels, and a real 20-slice JPEG 2000 series, each read from disk
//! and assembled into a volume by our reader, and by pydicom + numpy in the
//! same command, run for run in turn (the reference; skipped with a note when
//! pydicom or its JPEG 2000 plugin is not installed).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, OpenFileOptions};
use dsan_ct::dicom::{Study, assemble, read_paths};

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

/// The files in `dir` read on `threads` threads (`read_paths`, what `dsan`
/// does) into the default series' volume.
fn read_ours(dir: &Path, threads: usize) -> BenchResult<[usize; 3]> {
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

/// Each reader runs this many times, the three in turn (so that what else
/// the machine is doing weighs on all alike); the fastest run counts.
const RUNS: usize = 5;

/// The reference: reads the folder in `argv[1]` into a float32 HU volume
/// once per line on stdin, and prints the time and the volume's shape.
const PYDICOM: &str = r#"
import sys, time, pathlib
import numpy as np, pydicom
print("ready", flush=True)
for _ in sys.stdin:
    t = time.perf_counter()
    ds = [pydicom.dcmread(p) for p in sorted(pathlib.Path(sys.argv[1]).iterdir())]
    ds.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    vol = np.stack([d.pixel_array.astype(np.float32) * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in ds])
    print(time.perf_counter() - t, *vol.shape, flush=True)
"#;

/// pydicom + numpy in a Python process that reads the folder on request.
struct Pydicom {
    child: Child,
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl Pydicom {
    /// Starts the reference on `dir`; Err says why it cannot run (pydicom
    /// or its JPEG 2000 plugin missing, no Python).
    fn start(dir: &Path) -> Result<Self, String> {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(PYDICOM)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let (Some(requests), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("no pipes to python3".to_owned());
        };
        let mut reference = Self {
            child,
            requests,
            answers: BufReader::new(stdout),
        };
        match reference.answer() {
            Ok(line) if line.trim() == "ready" => Ok(reference),
            _ => Err(reference.failure()),
        }
    }

    fn answer(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        self.answers.read_line(&mut line)?;
        Ok(line)
    }

    /// The last line Python wrote to stderr, once it has stopped.
    fn failure(mut self) -> String {
        drop(self.requests);
        let mut errors = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut errors);
        }
        let _ = self.child.wait();
        errors
            .lines()
            .last()
            .unwrap_or("python3 stopped")
            .to_owned()
    }

    /// One timed read: seconds and the volume's shape.
    fn run(&mut self) -> BenchResult<(f64, String)> {
        writeln!(self.requests)?;
        let line = self.answer()?;
        let (seconds, shape) = line.trim().split_once(' ').ok_or("pydicom output")?;
        Ok((seconds.parse()?, shape.to_owned()))
    }
}

/// Seconds `read` takes, and its result.
fn timed<T>(read: impl FnOnce() -> BenchResult<T>) -> BenchResult<(f64, T)> {
    let start = Instant::now();
    let result = read()?;
    Ok((start.elapsed().as_secs_f64(), result))
}

/// Reads the series in `dir` with our reader on one thread and on every
/// core, and with pydicom + numpy, and prints the times and ratios.
fn compare(label: &str, dir: &Path) -> BenchResult<()> {
    let slices = std::fs::read_dir(dir)?.count();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut reference = Pydicom::start(dir);
    let (mut ours, mut parallel, mut theirs) = (f64::MAX, f64::MAX, f64::MAX);
    let (mut dims, mut shape) = ([0; 3], String::new());
    for _ in 0..RUNS {
        let (seconds, read) = timed(|| read_ours(dir, 1))?;
        (ours, dims) = (ours.min(seconds), read);
        let (seconds, read) = timed(|| read_ours(dir, threads))?;
        assert_eq!(read, dims);
        parallel = parallel.min(seconds);
        if let Ok(pydicom) = &mut reference {
            let (seconds, read) = pydicom.run()?;
            (theirs, shape) = (theirs.min(seconds), read);
        }
    }
    println!(
        "{label}: dsan-ct reads {slices} files -> volume {dims:?} in {ours:.3} s ({:.1} ms/slice), one thread, fastest of {RUNS}",
        ours * 1e3 / slices as f64
    );
    println!(
        "{label}: the same on {threads} threads (read_paths) in {parallel:.3} s ({:.2}x one thread)",
        ours / parallel
    );
    match reference {
        Ok(_) => {
            println!("{label}: pydicom + numpy: {theirs:.3} s (volume {shape})");
            println!(
                "{label}: speed-up over pydicom: {:.2}x on one thread, {:.2}x on {threads} threads",
                theirs / ours,
                theirs / parallel
            );
        }
        Err(why) => println!("{label}: pydicom reference not run: {why}"),
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
