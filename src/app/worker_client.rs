//! The page's side of the compute worker: one worker per request (its memory
//! goes back to the browser when it ends), the request sent, each stage
//! relayed, and a worker that dies (a panic, a lost GPU device) reported as
//! such rather than waited for. A request can be cancelled: its worker is
//! terminated at once. The page itself never runs the network.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::{Closure, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

use super::compute::Backend;
use super::job::{Finished, Job, Message, Reply, Request};
use super::self_check::{Preset, SelfCheckReport};
use crate::weights::ModelCard;

/// The worker's loader script, as Trunk names it (`data-loader-shim`).
const WORKER_SCRIPT: &str = "./dsan-worker_loader.js";

/// Why a request gave no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// The worker refused the input or the model (`backend`: the backend
    /// failed rather than the input).
    #[error("{message}")]
    Failed {
        /// Why.
        message: String,
        /// Whether the backend failed.
        backend: bool,
    },
    /// The worker could not start, or died while running the job.
    #[error("the compute worker stopped: {0}")]
    Died(String),
    /// The request was cancelled (another one replaced it).
    #[error("cancelled")]
    Cancelled,
}

/// Cancels a request before its reply: the request ends with
/// [`JobError::Cancelled`] and its worker is terminated. A handle serves one
/// request; cancelling it before the request starts stops it from starting.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Rc<RefCell<CancelState>>);

#[derive(Debug, Default)]
struct CancelState {
    cancelled: bool,
    /// Settles the running request's promise.
    reject: Option<Function>,
}

impl Cancel {
    /// Cancels the request (nothing happens once it has ended).
    pub fn cancel(&self) {
        let reject = {
            let mut state = self.0.borrow_mut();
            state.cancelled = true;
            state.reject.take()
        };
        if let Some(reject) = reject {
            // Rejecting a pending promise cannot fail.
            let _ = reject.call1(&JsValue::NULL, &JsValue::UNDEFINED);
        }
    }

    fn cancelled(&self) -> bool {
        self.0.borrow().cancelled
    }

    /// Where the running request can be settled from (`None` when it ends).
    fn hold(&self, reject: Option<Function>) {
        self.0.borrow_mut().reject = reject;
    }
}

/// Runs `job` in a new worker; `on_stage` hears each stage's label as it
/// starts, and `cancel` can end it early.
pub async fn run_job(
    job: &Job,
    on_stage: impl FnMut(String) + 'static,
    cancel: &Cancel,
) -> Result<Finished, JobError> {
    match run(Request::Diagnose(job), on_stage, cancel).await? {
        Reply::Done(finished) => Ok(*finished),
        _ => Err(out_of_turn()),
    }
}

/// Loads a site's model in a new worker as a diagnosis would; returns its
/// parameter count, or why it cannot be used.
pub async fn check_model(card: &ModelCard, weights: &[u8]) -> Result<usize, JobError> {
    match run(
        Request::CheckModel(card, weights),
        |_| (),
        &Cancel::default(),
    )
    .await?
    {
        Reply::ModelChecked(parameters) => Ok(parameters),
        _ => Err(out_of_turn()),
    }
}

/// Runs the self-check of `preset` on `backend` in a new worker.
pub async fn self_check(backend: Backend, preset: Preset) -> Result<SelfCheckReport, JobError> {
    match run(
        Request::SelfCheck(backend, preset),
        |_| (),
        &Cancel::default(),
    )
    .await?
    {
        Reply::SelfChecked(report) => Ok(*report),
        _ => Err(out_of_turn()),
    }
}

fn out_of_turn() -> JobError {
    JobError::Died("it answered out of turn".to_owned())
}

/// Runs `request` in a new worker, ended when the request is; the reply is
/// the result (a failure is an error).
async fn run(
    request: Request<'_>,
    on_stage: impl FnMut(String) + 'static,
    cancel: &Cancel,
) -> Result<Reply, JobError> {
    if cancel.cancelled() {
        return Err(JobError::Cancelled);
    }
    let died = |what: &str| JobError::Died(what.to_owned());
    // Encoded (in steps, yielding to the page) before the worker starts: its
    // first message, that it listens, is lost unless a handler is set in the
    // same turn as the worker is made.
    let message = request
        .encode()
        .await
        .map_err(|e| JobError::Died(e.to_string()))?;
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Classic);
    let worker = Worker::new_with_options(WORKER_SCRIPT, &options)
        .map_err(|_| died("the browser refused to start it"))?;
    let outcome = run_in(&worker, &request, message, on_stage, cancel).await;
    worker.terminate();
    outcome
}

async fn run_in(
    worker: &Worker,
    request: &Request<'_>,
    message: Message,
    on_stage: impl FnMut(String) + 'static,
    cancel: &Cancel,
) -> Result<Reply, JobError> {
    let mut message = Some(message);
    let mut on_stage = Some(on_stage);
    let mut handlers = None;
    let settled = Promise::new(&mut |resolve: Function, reject: Function| {
        let (Some(mut on_stage), Some(message)) = (on_stage.take(), message.take()) else {
            return;
        };
        cancel.hold(Some(reject.clone()));
        let mut pending = Some(message);
        let sender = worker.clone();
        let failed = reject.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            match Reply::kind(&data).as_deref() {
                // The worker listens: the request goes out (once).
                Some("ready") => {
                    if let Some(message) = pending.take()
                        && sender
                            .post_message_with_transfer(&message.value, &message.transfer)
                            .is_err()
                    {
                        let _ =
                            failed.call1(&JsValue::NULL, &"the request could not be sent".into());
                    }
                }
                Some("stage") => on_stage(Reply::stage_of(&data).unwrap_or_default()),
                _ => {
                    let _ = resolve.call1(&JsValue::NULL, &data);
                }
            }
        });
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            event.prevent_default();
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(&event.message()));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        handlers = Some((on_message, on_error));
    });
    let reply = JsFuture::from(settled).await;
    cancel.hold(None);
    worker.set_onmessage(None);
    worker.set_onerror(None);
    drop(handlers);
    if cancel.cancelled() {
        return Err(JobError::Cancelled);
    }
    let data = reply.map_err(|reason| {
        JobError::Died(
            reason
                .as_string()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "an error without a message".to_owned()),
        )
    })?;
    match Reply::decode(&data, request).await {
        Ok(Reply::Failed { message, backend }) => Err(JobError::Failed { message, backend }),
        Ok(Reply::Stage(_) | Reply::Ready) => Err(out_of_turn()),
        Ok(reply) => Ok(reply),
        Err(e) => Err(JobError::Died(format!("its reply could not be read: {e}"))),
    }
}
