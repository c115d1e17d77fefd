//! The compute worker (a dedicated Web Worker, `src/bin/dsan-worker.rs`):
//! everything that runs the network happens here, off the page's thread (the
//! page's own WebAssembly holds no Burn): the diagnosis pipeline, the check
//! of a site's own model, the self-check, the warm-up. It replies with each stage, then
//! the result or why there is none. A panic or a lost GPU device ends the
//! worker; the page sees its error event (see [`super::worker_client`]).

use std::future::ready;
use std::rc::Rc;

use burn::backend::wgpu::graphics::WebGpu;
use burn::backend::wgpu::{RuntimeOptions, WgpuDevice, init_setup_async};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, MessagePort};

use super::compute::Backend;
use super::helper::{self, Split};
use super::job::{Finished, Job, ModelChoice, Reply, Task};
use super::self_check::{Preset, SELF_CHECK_SEED, measure};
use super::wasm_memory_bytes;
use crate::CpuBackend;
use crate::model::Dsan;
use crate::phantom::{PhantomConfig, chest_phantom};
use crate::pipeline::{
    DecisionConfig, Diagnosis, DiagnosisError, ProgressSink, Stage, diagnose, diagnose_with,
};
use crate::probe::seeded_card;
use crate::weights::{ModelCard, load_weights};

/// Burn's WebGPU backend (WGSL shaders, no kernel fusion).
type GpuBackend = burn::backend::Wgpu<f32, i32, u32>;

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Posts `reply` to the page. A reply that cannot be encoded becomes a
/// failure saying why.
fn post(reply: &Reply) {
    let message = reply
        .encode()
        .or_else(|e| Reply::refused(format!("the worker could not send its result: {e}")).encode());
    if let Ok(message) = message {
        // Posting to the page only fails for uncloneable values; ours are
        // strings, numbers and typed arrays.
        let _ = scope().post_message_with_transfer(&message.value, &message.transfer);
    }
}

/// Tells the page about each stage as it starts.
struct PostProgress;

impl ProgressSink for PostProgress {
    fn stage_started(&mut self, stage: Stage) -> impl Future<Output = ()> {
        post(&Reply::Stage(stage.label().to_owned()));
        ready(())
    }
}

/// Answers the page's request (the page starts a worker for each request and
/// ends it after the reply).
/// A panic (Burn's reaction to a lost GPU device, among others) is reported
/// as a backend failure before the worker dies.
pub fn serve() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let why = info.payload_as_str().unwrap_or("a panic without a message");
        post(&Reply::Failed {
            message: format!("the computation stopped: {why}"),
            backend: true,
        });
    }));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        // Decoded here, so that the message (the CT's voxels among it) is let
        // go before the work starts rather than held while it runs.
        let task = Task::decode(&event.data());
        drop(event);
        wasm_bindgen_futures::spawn_local(async move {
            let reply = match task {
                Ok(Task::Diagnose(job, peer)) => run(*job, peer).await,
                Ok(Task::Help(model, weights, port)) => {
                    // The helper answers through the port only.
                    let device = Default::default();
                    let model = load::<CpuBackend>(*model, Rc::new(weights), &device)
                        .map(|(model, _)| model);
                    return helper::serve(model, &device, &port).await;
                }
                Ok(Task::CheckModel(card, weights)) => check_model(&card, &weights),
                Ok(Task::SelfCheck(backend, preset)) => self_check(backend, preset).await,
                Ok(Task::Warm(model, weights)) => warm(*model, weights).await,
                Err(e) => Reply::refused(format!("the worker could not read the request: {e}")),
            };
            post(&reply);
        });
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    // Messages that arrive before a handler is set are lost: the page waits
    // for this before sending its request.
    post(&Reply::Ready);
}

/// Sets Burn's WebGPU runtime up (a worker answers one request, so once).
async fn set_up_webgpu() {
    init_setup_async::<WebGpu>(&WgpuDevice::default(), RuntimeOptions::default()).await;
}

/// Loads the model on the CPU backend, every check included.
fn check_model(card: &ModelCard, weights: &[u8]) -> Reply {
    match load_weights::<CpuBackend>(card, weights, &Default::default()) {
        Ok(model) => Reply::ModelChecked(burn::module::Module::num_params(&model)),
        Err(e) => Reply::refused(e),
    }
}

/// Diagnoses a synthetic chest phantom with the model on the CPU backend,
/// for the optimised code it leaves behind.
async fn warm(model: ModelChoice, weights: Vec<u8>) -> Reply {
    let device = Default::default();
    let (model, card) = match load::<CpuBackend>(model, Rc::new(weights), &device) {
        Ok(loaded) => loaded,
        Err(message) => return Reply::refused(message),
    };
    let phantom = chest_phantom(&PhantomConfig::default());
    let decision = DecisionConfig::default();
    // Its stages are posted as a diagnosis's are (the page ignores them): one
    // instance of the generic pipeline serves both.
    match diagnose(
        &phantom.volume,
        &model,
        &card,
        &decision,
        &device,
        &mut PostProgress,
    )
    .await
    {
        Ok(_) => Reply::Warmed,
        Err(e) => Reply::refused(e),
    }
}

async fn self_check(backend: Backend, preset: Preset) -> Reply {
    let outcome = match backend {
        Backend::WebGpu => {
            set_up_webgpu().await;
            measure::<GpuBackend>(backend, preset, Default::default()).await
        }
        Backend::Cpu => measure::<CpuBackend>(backend, preset, Default::default()).await,
    };
    match outcome {
        Ok(report) => Reply::SelfChecked(Box::new(report)),
        Err(e) => Reply::refused(e),
    }
}

async fn run(job: Job, peer: Option<MessagePort>) -> Reply {
    let outcome = match job.backend {
        Backend::WebGpu => {
            set_up_webgpu().await;
            run_on::<GpuBackend>(job, peer).await
        }
        Backend::Cpu => run_on::<CpuBackend>(job, peer).await,
    };
    match outcome {
        Ok(Ran {
            diagnosis,
            model,
            helper_memory_bytes,
        }) => Reply::Done(Box::new(Finished {
            diagnosis,
            model,
            worker_memory_bytes: wasm_memory_bytes(),
            helper_memory_bytes,
        })),
        Err(Failure::Diagnosis(e)) => Reply::Failed {
            backend: matches!(e, DiagnosisError::Backend { .. }),
            message: e.to_string(),
        },
        Err(Failure::Model(message)) => Reply::refused(message),
    }
}

/// Why a job gave no diagnosis.
enum Failure {
    Model(String),
    Diagnosis(DiagnosisError),
}

/// A diagnosis, the model card's name, and the helper's memory if one ran
/// branch B.
struct Ran {
    diagnosis: Diagnosis,
    model: String,
    helper_memory_bytes: Option<f64>,
}

/// The model of `choice` (its weights `weights` for a trained one) on
/// `device`, every check included, and its card.
fn load<B: burn::prelude::Backend>(
    choice: ModelChoice,
    weights: Rc<Vec<u8>>,
    device: &B::Device,
) -> Result<(Dsan<B>, ModelCard), String> {
    let (card, weights) = match choice {
        ModelChoice::Seeded(config) => seeded_card(&config, SELF_CHECK_SEED)
            .map(|(card, bytes)| (card, Rc::new(bytes)))
            .map_err(|e| e.to_string())?,
        ModelChoice::Trained(card) => (*card, weights),
    };
    let model = load_weights::<B>(&card, &weights, device).map_err(|e| e.to_string())?;
    Ok((model, card))
}

/// Runs `job`, branch B in the helper at the other end of `peer` if there
/// is one.
async fn run_on<B: burn::prelude::Backend>(
    job: Job,
    peer: Option<MessagePort>,
) -> Result<Ran, Failure> {
    let device = B::Device::default();
    let (model, card) = load::<B>(job.model, job.weights, &device).map_err(Failure::Model)?;
    let decision = DecisionConfig::default();
    let (diagnosis, helper_memory_bytes) = match peer {
        Some(port) => {
            let mut split = Split {
                model: &model,
                device: &device,
                port,
                helper_memory_bytes: None,
            };
            let diagnosis =
                diagnose_with(&job.volume, &card, &decision, &mut split, &mut PostProgress).await;
            (diagnosis, split.helper_memory_bytes)
        }
        None => {
            let diagnosis = diagnose(
                &job.volume,
                &model,
                &card,
                &decision,
                &device,
                &mut PostProgress,
            )
            .await;
            (diagnosis, None)
        }
    };
    Ok(Ran {
        diagnosis: diagnosis.map_err(Failure::Diagnosis)?,
        model: card.name,
        helper_memory_bytes,
    })
}
