//! The open CT: files, a folder or a .zip are read in the browser (nothing is
//! uploaded), or a sample case is fetched from this site; the files are
//! grouped into series and the chosen series is assembled into a volume.
//! [`Study`] holds what was opened; the welcome screen and the workspace
//! show it.

use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::{File, FileSystemEntry};

use super::drop::entry_files;
use super::worker_client::stop_warm_up;
use super::{fetch_bytes, file_bytes, now_ms};
use crate::dicom::{Study as Files, StudyReader, StudyReport, assemble};
use crate::volume::Volume;

/// The volume on screen and what was noticed while assembling it.
#[derive(Debug)]
pub struct Loaded {
    /// The CT.
    pub volume: Rc<Volume>,
    /// What assembling it noticed (gaps interpolated, duplicates dropped).
    pub warnings: Vec<String>,
    /// The series' description.
    pub label: String,
    /// Time to sort and assemble the series, ms.
    pub assemble_ms: f64,
}

/// What the user opened.
pub enum Opened {
    /// Files (or a folder's files) picked in an input, with their names.
    Files(Vec<(String, File)>),
    /// Files and folders dropped on the page.
    Dropped(Vec<FileSystemEntry>),
    /// A sample case, fetched from this site.
    Sample(&'static str),
}

/// Longest stretch of work between two chances for the page to repaint.
const YIELD_EVERY_MS: f64 = 50.0;

/// What is open, as signals the page reads, and the actions that change it.
/// Copied into every component that opens or shows a CT.
#[derive(Clone, Copy)]
pub struct Study {
    /// The series a drop produced; the chosen one's slices move into the volume.
    files: StoredValue<Option<Files>>,
    /// Reading in progress, or why reading stopped.
    pub progress: RwSignal<Option<String>>,
    /// What the opened files hold.
    pub report: RwSignal<Option<StudyReport>>,
    /// Index of the series on screen.
    pub selected: RwSignal<Option<usize>>,
    /// The volume on screen, or why the chosen series could not be assembled.
    pub loaded: RwSignal<Option<Result<Rc<Loaded>, String>>, LocalStorage>,
    /// Time to read and decode the files, ms.
    pub read_ms: RwSignal<Option<f64>>,
}

impl Study {
    /// Nothing open yet.
    pub fn new() -> Self {
        Self {
            files: StoredValue::new(None),
            progress: RwSignal::new(None),
            report: RwSignal::new(None),
            selected: RwSignal::new(None),
            loaded: RwSignal::new_local(None),
            read_ms: RwSignal::new(None),
        }
    }

    /// Whether a volume is on screen (tracked).
    pub fn has_volume(&self) -> bool {
        self.loaded.with(|l| matches!(l, Some(Ok(_))))
    }

    /// Shows series `index` of the open files.
    pub fn choose(&self, index: usize) {
        self.selected.set(Some(index));
        let series = self.files.try_update_value(|files| {
            files.as_mut().and_then(|study| {
                let series = study.series.get_mut(index)?;
                (!series.slices.is_empty()).then(|| series.take_slices())
            })
        });
        let started = now_ms();
        let outcome = match series.flatten() {
            Some(series) => {
                let label = series.summary.description.clone();
                assemble(series)
                    .map(|a| {
                        Rc::new(Loaded {
                            volume: Rc::new(a.volume),
                            warnings: a.warnings,
                            label,
                            assemble_ms: now_ms() - started,
                        })
                    })
                    .map_err(|e| e.to_string())
            }
            None => Err(
                "this series was released from memory; open the files again to view it".to_owned(),
            ),
        };
        self.loaded.set(Some(outcome));
    }

    /// Reads what the user opened and shows its default series (or its first
    /// NIfTI volume).
    pub fn open(self, opened: Opened) {
        stop_warm_up();
        // The previous study's slices go before the next one is read.
        self.files.set_value(None);
        self.report.set(None);
        self.loaded.set(None);
        self.selected.set(None);
        self.read_ms.set(None);
        spawn_local(async move {
            let Some(study) = self.read(opened).await else {
                return;
            };
            self.finish(study);
        });
    }

    /// The files of `opened`, read one by one (the page repaints in between).
    async fn read(&self, opened: Opened) -> Option<Files> {
        let mut reader = StudyReader::default();
        let started = now_ms();
        let files = match opened {
            Opened::Files(files) => files,
            Opened::Dropped(entries) => {
                self.progress
                    .set(Some("Listing the dropped files…".to_owned()));
                match entry_files(entries).await {
                    Ok(files) => files,
                    Err(message) => {
                        self.progress.set(Some(message));
                        return None;
                    }
                }
            }
            Opened::Sample(file) => {
                self.progress
                    .set(Some(format!("Loading the sample {file}…")));
                TimeoutFuture::new(0).await;
                match fetch_bytes(&format!("samples/{file}")).await {
                    Ok(bytes) => reader.add(file, &bytes),
                    Err(message) => {
                        self.progress.set(Some(message));
                        return None;
                    }
                }
                Vec::new()
            }
        };
        let total = files.len();
        let mut last_yield = started;
        for (i, (name, file)) in files.iter().enumerate() {
            // Let the page paint and answer every ~50 ms of work.
            if now_ms() - last_yield > YIELD_EVERY_MS {
                self.progress
                    .set(Some(format!("Reading file {} of {total}: {name}", i + 1)));
                TimeoutFuture::new(0).await;
                last_yield = now_ms();
            }
            match file_bytes(file).await {
                Ok(bytes) => reader.add(name, &bytes),
                Err(message) => self.progress.set(Some(message)),
            }
        }
        self.read_ms.set(Some(now_ms() - started));
        Some(reader.finish())
    }

    /// Publishes what was read and shows its default series.
    fn finish(&self, mut study: Files) {
        let default = study.default;
        self.report.set(Some(study.report()));
        // Without a DICOM CT, show the first NIfTI volume opened.
        let nifti = study.volumes.drain(..).next().map(|(label, volume)| {
            Rc::new(Loaded {
                volume: Rc::new(volume),
                warnings: Vec::new(),
                label,
                assemble_ms: 0.0,
            })
        });
        self.files.set_value(Some(study));
        self.progress.set(None);
        match (default, nifti) {
            (Some(index), _) => self.choose(index),
            (None, Some(loaded)) => self.loaded.set(Some(Ok(loaded))),
            (None, None) => {}
        }
    }
}
