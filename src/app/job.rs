//! The messages between the page and its compute worker. The page asks for
//! one [`Request`]: a diagnosis job (the volume, the model, the backend), the
//! check of a site's own model, the self-check of a seeded network, or a
//! warm-up run of the model on a phantom. The
//! worker replies with each stage as it starts, then the result or why there
//! is none. Small parts travel as JSON (the attention maps too: they are on
//! the feature grid); voxels, weights and the two masks as typed arrays (the
//! masks' buffers transferred, not copied).

use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use js_sys::{Array, Int16Array, Object, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::MessagePort;

use super::compute::Backend;
use super::self_check::{Preset, SelfCheckReport};
use crate::model::DsanConfig;
use crate::pipeline::{Diagnosis, DiagnosisSummary};
use crate::preprocess::Mask;
use crate::volume::Volume;
use crate::weights::ModelCard;

/// Which model a job runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ModelChoice {
    /// The untrained network of this architecture, seeded.
    Seeded(DsanConfig),
    /// A trained model (the bundled one or a site's own); its weights travel
    /// beside the header.
    Trained(Box<ModelCard>),
}

/// A job's small part.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobHeader {
    backend: Backend,
    model: ModelChoice,
    dims: [usize; 3],
    spacing: [f64; 3],
    origin: [f64; 3],
    direction: [[f64; 3]; 3],
}

/// A request's small part.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum RequestHeader {
    Diagnose(Box<JobHeader>),
    Help(Box<ModelChoice>),
    CheckModel(Box<ModelCard>),
    SelfCheck { backend: Backend, preset: Preset },
    Warm(Box<ModelChoice>),
}

/// What the page asks its worker to do.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// Diagnose a CT; with a port, branch B runs in the helper at its other
    /// end.
    Diagnose(&'a Job, Option<&'a MessagePort>),
    /// Be the helper of a diagnosis of this job (its model, not its CT): run
    /// branch B on the input that comes through the port.
    Help(&'a Job, &'a MessagePort),
    /// Load a site's model (card and weights) as a diagnosis would, on the
    /// CPU backend: size, SHA-256, layout and every tensor.
    CheckModel(&'a ModelCard, &'a [u8]),
    /// Build the seeded network of a preset on a backend and time its
    /// forward pass on the synthetic phantom.
    SelfCheck(Backend, Preset),
    /// Diagnose a synthetic chest phantom with this model on the CPU and
    /// reply [`Reply::Warmed`]: the worker code it runs is then optimised for
    /// every worker of the page (see [`super::worker_client::warm_up`]).
    Warm(&'a ModelChoice, &'a [u8]),
}

/// A request as the worker received it.
#[derive(Debug)]
pub enum Task {
    /// See [`Request::Diagnose`].
    Diagnose(Box<Job>, Option<MessagePort>),
    /// See [`Request::Help`]: the model, its weights, the port.
    Help(Box<ModelChoice>, Vec<u8>, MessagePort),
    /// See [`Request::CheckModel`].
    CheckModel(Box<ModelCard>, Vec<u8>),
    /// See [`Request::SelfCheck`].
    SelfCheck(Backend, Preset),
    /// See [`Request::Warm`]: the model and its weights.
    Warm(Box<ModelChoice>, Vec<u8>),
}

/// A diagnosis to run in the worker.
#[derive(Debug, Clone)]
pub struct Job {
    /// The backend to run it on.
    pub backend: Backend,
    /// The model.
    pub model: ModelChoice,
    /// The weights of [`ModelChoice::Trained`] (empty for a seeded model),
    /// shared with the model panel rather than copied.
    pub weights: Rc<Vec<u8>>,
    /// The CT, shared with the viewer rather than copied.
    pub volume: Rc<Volume>,
}

/// What the worker says about a job.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The worker is listening (sent once, when it has started).
    Ready,
    /// A stage started (its label).
    Stage(String),
    /// The model of a [`Request::CheckModel`] loaded; its parameter count.
    ModelChecked(usize),
    /// What a [`Request::SelfCheck`] measured.
    SelfChecked(Box<SelfCheckReport>),
    /// The model of a [`Request::Warm`] ran.
    Warmed,
    /// The diagnosis.
    Done(Box<Finished>),
    /// No diagnosis; `backend` tells whether the backend failed (worth a
    /// retry on the CPU) rather than the input.
    Failed {
        /// Why, for the user.
        message: String,
        /// The backend failed.
        backend: bool,
    },
}

/// A diagnosis as the worker sends it.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The diagnosis.
    pub diagnosis: Diagnosis,
    /// The model card's name.
    pub model: String,
    /// The worker's WebAssembly memory when it finished, bytes: the peak of
    /// its heap during the job.
    pub worker_memory_bytes: f64,
    /// The helper's, when one ran branch B.
    pub helper_memory_bytes: Option<f64>,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// A field is absent or of the wrong type.
    #[error("message field {0} is missing or malformed")]
    Field(&'static str),
    /// The JSON part does not parse.
    #[error("message header: {0}")]
    Json(#[from] serde_json::Error),
    /// The volume's parts do not fit together.
    #[error("volume: {0}")]
    Volume(#[from] crate::volume::VolumeError),
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Setting a property on a plain, extensible object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn get(value: &JsValue, key: &'static str) -> Result<JsValue, MessageError> {
    Reflect::get(value, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined())
        .ok_or(MessageError::Field(key))
}

fn text(value: &JsValue, key: &'static str) -> Result<String, MessageError> {
    get(value, key)?.as_string().ok_or(MessageError::Field(key))
}

fn bytes(value: &JsValue, key: &'static str) -> Result<Vec<u8>, MessageError> {
    let array: Uint8Array = get(value, key)?
        .dyn_into()
        .map_err(|_| MessageError::Field(key))?;
    Ok(array.to_vec())
}

/// Elements a copy between the page's WebAssembly memory and a typed array
/// moves before it lets the page's other work run: the voxels of a
/// 2,000-slice CT and its masks, each copied in one call, paused the page
/// for 2.6 s.
const COPY_STEP: usize = 16 << 20;

/// Runs `copy` on the consecutive ranges of `len` elements, [`COPY_STEP`]
/// at a time, letting the page's other work run after each.
async fn in_steps(len: usize, mut copy: impl FnMut(u32, u32, std::ops::Range<usize>)) {
    for start in (0..len).step_by(COPY_STEP) {
        let end = (start + COPY_STEP).min(len);
        copy(start as u32, end as u32, start..end);
        TimeoutFuture::new(0).await;
    }
}

/// `voxels` as a new `Int16Array`, copied in steps.
async fn int16_array(voxels: &[i16]) -> Int16Array {
    let array = Int16Array::new_with_length(voxels.len() as u32);
    in_steps(voxels.len(), |start, end, range| {
        array.subarray(start, end).copy_from(&voxels[range]);
    })
    .await;
    array
}

/// The mask under `key` of a reply about a CT of `dims` and `spacing`,
/// copied into WebAssembly memory in steps.
async fn mask(
    value: &JsValue,
    key: &'static str,
    dims: [usize; 3],
    spacing: [f64; 3],
) -> Result<Mask, MessageError> {
    let array: Uint8Array = get(value, key)?
        .dyn_into()
        .map_err(|_| MessageError::Field(key))?;
    let len = array.length() as usize;
    if len != dims.iter().product::<usize>() {
        return Err(MessageError::Field(key));
    }
    let mut data = vec![0; len];
    in_steps(len, |start, end, range| {
        array.subarray(start, end).copy_to(&mut data[range]);
    })
    .await;
    Ok(Mask::from_data(dims, spacing, data))
}

/// A message and the buffers to transfer with it.
pub struct Message {
    /// The message.
    pub value: JsValue,
    /// Its typed arrays' buffers.
    pub transfer: Array,
}

impl Request<'_> {
    /// The request as a message (the voxels copied out in steps).
    pub async fn encode(&self) -> Result<Message, MessageError> {
        let object = Object::new();
        let transfer = Array::new();
        let (header, weights) = match *self {
            Self::Diagnose(job, peer) => {
                if let Some(port) = peer {
                    transfer.push(port);
                    set(&object, "port", port);
                }
                let volume = &job.volume;
                let voxels = int16_array(volume.voxels()).await;
                transfer.push(&voxels.buffer());
                set(&object, "voxels", &voxels);
                let header = JobHeader {
                    backend: job.backend,
                    model: job.model.clone(),
                    dims: volume.dims(),
                    spacing: volume.spacing(),
                    origin: volume.origin(),
                    direction: volume.direction(),
                };
                (
                    RequestHeader::Diagnose(Box::new(header)),
                    job.weights.as_slice(),
                )
            }
            Self::Help(job, port) => {
                transfer.push(port);
                set(&object, "port", port);
                (
                    RequestHeader::Help(Box::new(job.model.clone())),
                    job.weights.as_slice(),
                )
            }
            Self::CheckModel(card, weights) => {
                (RequestHeader::CheckModel(Box::new(card.clone())), weights)
            }
            Self::SelfCheck(backend, preset) => {
                (RequestHeader::SelfCheck { backend, preset }, &[][..])
            }
            Self::Warm(model, weights) => (RequestHeader::Warm(Box::new(model.clone())), weights),
        };
        set(&object, "header", &serde_json::to_string(&header)?.into());
        let weights = Uint8Array::from(weights);
        transfer.push(&weights.buffer());
        set(&object, "weights", &weights);
        Ok(Message {
            value: object.into(),
            transfer,
        })
    }

    /// The volume a diagnosis reply's maps cover.
    fn volume(&self) -> Option<&Volume> {
        match self {
            Self::Diagnose(job, _) => Some(&job.volume),
            _ => None,
        }
    }
}

impl Task {
    /// The request in a message.
    pub fn decode(value: &JsValue) -> Result<Self, MessageError> {
        let weights = bytes(value, "weights")?;
        Ok(match serde_json::from_str(&text(value, "header")?)? {
            RequestHeader::Diagnose(header) => {
                let voxels: Int16Array = get(value, "voxels")?
                    .dyn_into()
                    .map_err(|_| MessageError::Field("voxels"))?;
                let volume = Volume::new(
                    voxels.to_vec(),
                    header.dims,
                    header.spacing,
                    header.origin,
                    header.direction,
                )?;
                let peer = get(value, "port").ok().and_then(|p| p.dyn_into().ok());
                Self::Diagnose(
                    Box::new(Job {
                        backend: header.backend,
                        model: header.model,
                        weights: Rc::new(weights),
                        volume: Rc::new(volume),
                    }),
                    peer,
                )
            }
            RequestHeader::Help(model) => {
                let port = get(value, "port")?
                    .dyn_into()
                    .map_err(|_| MessageError::Field("port"))?;
                Self::Help(model, weights, port)
            }
            RequestHeader::CheckModel(card) => Self::CheckModel(card, weights),
            RequestHeader::SelfCheck { backend, preset } => Self::SelfCheck(backend, preset),
            RequestHeader::Warm(model) => Self::Warm(model, weights),
        })
    }
}

impl Reply {
    /// A failure of the input or the model (not of the backend).
    pub fn refused(message: impl ToString) -> Self {
        Self::Failed {
            message: message.to_string(),
            backend: false,
        }
    }

    /// The reply as a message.
    pub fn encode(&self) -> Result<Message, MessageError> {
        let object = Object::new();
        let transfer = Array::new();
        match self {
            Self::Ready => set(&object, "kind", &"ready".into()),
            Self::Warmed => set(&object, "kind", &"warmed".into()),
            Self::Stage(label) => {
                set(&object, "kind", &"stage".into());
                set(&object, "stage", &label.into());
            }
            Self::ModelChecked(parameters) => {
                set(&object, "kind", &"checked".into());
                set(&object, "parameters", &(*parameters as f64).into());
            }
            Self::SelfChecked(report) => {
                set(&object, "kind", &"self-checked".into());
                set(&object, "report", &serde_json::to_string(report)?.into());
            }
            Self::Failed { message, backend } => {
                set(&object, "kind", &"failed".into());
                set(&object, "message", &message.into());
                set(&object, "backend", &(*backend).into());
            }
            Self::Done(finished) => {
                let Finished {
                    diagnosis,
                    model,
                    worker_memory_bytes,
                    helper_memory_bytes,
                } = &**finished;
                set(&object, "kind", &"done".into());
                set(&object, "model", &model.into());
                set(&object, "memory", &(*worker_memory_bytes).into());
                if let Some(bytes) = helper_memory_bytes {
                    set(&object, "helper-memory", &(*bytes).into());
                }
                set(
                    &object,
                    "summary",
                    &serde_json::to_string(&diagnosis.summary)?.into(),
                );
                let arrays = [
                    ("mask", diagnosis.lung_mask.data()),
                    ("region", diagnosis.lung_region.data()),
                ];
                for (key, data) in arrays {
                    let array = Uint8Array::from(data);
                    transfer.push(&array.buffer());
                    set(&object, key, &array);
                }
            }
        }
        Ok(Message {
            value: object.into(),
            transfer,
        })
    }

    /// The kind of reply a message holds (`ready`, `stage`, `checked`,
    /// `self-checked`, `warmed`, `done` or `failed`), if it is one.
    pub fn kind(value: &JsValue) -> Option<String> {
        text(value, "kind").ok()
    }

    /// The label in a stage message; None for any other message.
    pub fn stage_of(value: &JsValue) -> Option<String> {
        (text(value, "kind").ok()? == "stage")
            .then(|| text(value, "stage").ok())
            .flatten()
    }

    /// The reply in a message about `request` (the masks copied in steps).
    pub async fn decode(value: &JsValue, request: &Request<'_>) -> Result<Self, MessageError> {
        match text(value, "kind")?.as_str() {
            "ready" => Ok(Self::Ready),
            "warmed" => Ok(Self::Warmed),
            "stage" => Ok(Self::Stage(text(value, "stage")?)),
            "checked" => get(value, "parameters")?
                .as_f64()
                .map(|n| Self::ModelChecked(n as usize))
                .ok_or(MessageError::Field("parameters")),
            "self-checked" => Ok(Self::SelfChecked(Box::new(serde_json::from_str(&text(
                value, "report",
            )?)?))),
            "failed" => Ok(Self::Failed {
                message: text(value, "message")?,
                backend: get(value, "backend")?.as_bool().unwrap_or(false),
            }),
            "done" => {
                let volume = request.volume().ok_or(MessageError::Field("volume"))?;
                let summary: DiagnosisSummary = serde_json::from_str(&text(value, "summary")?)?;
                if !summary.maps_fit(volume.dims()) {
                    return Err(MessageError::Field("summary"));
                }
                let (dims, spacing) = (volume.dims(), volume.spacing());
                let lung_mask = mask(value, "mask", dims, spacing).await?;
                let lung_region = mask(value, "region", dims, spacing).await?;
                Ok(Self::Done(Box::new(Finished {
                    diagnosis: Diagnosis {
                        summary,
                        lung_mask,
                        lung_region,
                    },
                    model: text(value, "model")?,
                    worker_memory_bytes: get(value, "memory")?
                        .as_f64()
                        .ok_or(MessageError::Field("memory"))?,
                    helper_memory_bytes: get(value, "helper-memory").ok().and_then(|v| v.as_f64()),
                })))
            }
            _ => Err(MessageError::Field("kind")),
        }
    }
}
