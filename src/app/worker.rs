//! The compute worker (a dedicated Web Worker, `src/bin/dsan-worker.rs`):
//! runs the library's pipeline on each job the page sends, off the page's
//! thread, and replies with each stage, then the diagnosis or why there is
//! none. A panic or a lost GPU device ends the worker; the page sees its
//! error event (see [`super::worker_client`]).

use std::future::ready;
use std::rc::Rc;

use burn::backend::wgpu::graphics::WebGpu;
use burn::backend::wgpu::{RuntimeOptions, WgpuDevice, init_setup_async};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use super::compute::{Backend, CpuBackend, GpuBackend};
use super::job::{Job, ModelChoice, Reply};
use super::self_check::SELF_CHECK_SEED;
use crate::pipeline::{DecisionConfig, Diagnosis, DiagnosisError, ProgressSink, Stage, diagnose};
use crate::probe::seeded_card;
use crate::weights::load_weights;

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Posts `reply` to the page. A reply that cannot be encoded becomes a
/// failure saying why.
fn post(reply: &Reply) {
    let message = reply.encode().or_else(|e| {
        Reply::Failed {
            message: format!("the worker could not send its result: {e}"),
            backend: false,
        }
        .encode()
    });
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

/// Answers the page's job (the page starts a worker for each job and ends it
/// after the reply).
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
        wasm_bindgen_futures::spawn_local(async move {
            let reply = match Job::decode(&event.data()) {
                Ok(job) => run(job).await,
                Err(e) => Reply::Failed {
                    message: format!("the worker could not read the job: {e}"),
                    backend: false,
                },
            };
            post(&reply);
        });
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    // Messages that arrive before a handler is set are lost: the page waits
    // for this before sending the job.
    post(&Reply::Ready);
}

async fn run(job: Job) -> Reply {
    let outcome = match job.backend {
        Backend::WebGpu => {
            // A worker runs one job, so it sets WebGPU up once.
            init_setup_async::<WebGpu>(&WgpuDevice::default(), RuntimeOptions::default()).await;
            run_on::<GpuBackend>(job).await
        }
        Backend::Cpu => run_on::<CpuBackend>(job).await,
    };
    match outcome {
        Ok((diagnosis, model)) => Reply::Done {
            diagnosis: Box::new(diagnosis),
            model,
        },
        Err(Failure::Diagnosis(e)) => Reply::Failed {
            backend: matches!(e, DiagnosisError::Backend { .. }),
            message: e.to_string(),
        },
        Err(Failure::Model(message)) => Reply::Failed {
            message,
            backend: false,
        },
    }
}

/// Why a job gave no diagnosis.
enum Failure {
    Model(String),
    Diagnosis(DiagnosisError),
}

/// The diagnosis and the model card's name.
async fn run_on<B: burn::prelude::Backend>(job: Job) -> Result<(Diagnosis, String), Failure> {
    let device = B::Device::default();
    let (card, weights) = match job.model {
        ModelChoice::Seeded(config) => seeded_card(&config, SELF_CHECK_SEED)
            .map(|(card, bytes)| (card, Rc::new(bytes)))
            .map_err(|e| Failure::Model(e.to_string()))?,
        ModelChoice::Own(card) => (*card, job.weights),
    };
    let model =
        load_weights::<B>(&card, &weights, &device).map_err(|e| Failure::Model(e.to_string()))?;
    let diagnosis = diagnose(
        &job.volume,
        &model,
        &card,
        &DecisionConfig::default(),
        &device,
        &mut PostProgress,
    )
    .await
    .map_err(Failure::Diagnosis)?;
    Ok((diagnosis, card.name))
}
