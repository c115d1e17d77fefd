//! The page's side of the compute worker: one worker per request (its memory
//! goes back to the browser when it ends), the request sent, each stage
//! relayed, and a worker that dies (a panic, a lost GPU device) reported as
//! such rather than waited for. A request can be cancelled: its worker is
//! terminated at once. The page itself never runs the network.
//!
//! The workers' WebAssembly is compiled once per page and every worker
//! instantiates that module (`public/worker-boot.js`), so they share V8's
//! code, the optimised code of hot functions included. On the CPU the page
//! warms that code up ([`warm_up`]) by diagnosing a phantom before the first
//! CT arrives.
//!
//! A diagnosis on the CPU, where the browser has cores to spare, also
//! starts a helper worker that runs branch B (see [`super::helper`]); if the
//! helper dies, the diagnosis runs again without one.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise, WebAssembly};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::{Closure, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    ErrorEvent, MessageChannel, MessageEvent, Response, Worker, WorkerOptions, WorkerType,
};

use super::compute::Backend;
use super::job::{Finished, Job, Message, MessageError, ModelChoice, Reply, Request};
use super::self_check::{Preset, SelfCheckReport};
use crate::weights::ModelCard;

/// The worker's start script: it instantiates the module posted to it first.
const WORKER_BOOT: &str = "./worker-boot.js";

/// The worker's WebAssembly, as Trunk names it.
const WORKER_WASM: &str = "./dsan-worker_bg.wasm";

/// The page's workers' shared state.
#[derive(Default)]
struct Workers {
    /// Their module: its compilation, shared by every caller while it runs.
    module: Option<Promise>,
    /// Whether their code has run a model on the CPU (by the warm-up or a
    /// diagnosis), so that its hot functions are optimised.
    warm: bool,
    /// Ends the warm-up while it runs (reading a CT needs the cores).
    warming: Option<Cancel>,
    /// Something was opened or a self-check ran: a warm-up that has not
    /// started yet never does.
    declined: bool,
}

thread_local! {
    static WORKERS: RefCell<Workers> = RefCell::default();
}

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
    /// The workers' code could not be fetched or compiled (no backend helps).
    #[error("the compute worker's code could not be loaded: {0}")]
    NoCode(String),
    /// The request was cancelled (another one replaced it).
    #[error("cancelled")]
    Cancelled,
    /// The helper worker died (the request runs again without one).
    #[error("the helper worker stopped")]
    HelperDied,
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

/// The cores a browser needs for a diagnosis to get a helper: one for each
/// worker.
const HELPER_MIN_CORES: f64 = 2.0;

/// The cores a browser needs for a helper before the workers' code is warm:
/// one for each worker and the rest for V8's tier-up compiler. On 2 cold
/// cores the two workers starve the compiler and both branches stay on
/// baseline code (README, "Compute backends": cap001's inference 4.2-4.7 s
/// with a helper against 3.6-3.7 s without; warm, with a helper, 1.24-1.60 s
/// against the cold 2.37-3.69 s of the same hour).
const COLD_HELPER_MIN_CORES: f64 = 4.0;

/// Whether a diagnosis on `backend` gets a helper for branch B: on the CPU,
/// where the browser has [`COLD_HELPER_MIN_CORES`], or [`HELPER_MIN_CORES`]
/// once the workers' code is warm.
fn helped(backend: Backend) -> bool {
    let cores = web_sys::window().map_or(1.0, |w| w.navigator().hardware_concurrency());
    let warm = WORKERS.with(|w| w.borrow().warm);
    let needed = if warm {
        HELPER_MIN_CORES
    } else {
        COLD_HELPER_MIN_CORES
    };
    backend == Backend::Cpu && cores >= needed
}

/// Compiles the workers' module ahead of the first request (on WebGPU,
/// only that) and, on the CPU, diagnoses a chest phantom with `model` (its
/// `weights` for a trained one) in a worker, so that the code a diagnosis
/// runs is optimised before it is needed. A CT opened or a self-check
/// started first ends the warm-up or keeps it from starting
/// ([`stop_warm_up`]), since they need the cores. Resolves to whether the
/// warm-up ran to its end.
pub async fn warm_up(backend: Backend, model: &ModelChoice, weights: &[u8]) -> bool {
    if backend != Backend::Cpu {
        if let Err(e) = worker_module().await {
            warn(&format!("DSAN-CT: {e}"));
        }
        return false;
    }
    let cancel = Cancel::default();
    let declined = WORKERS.with(|w| {
        let mut workers = w.borrow_mut();
        if !workers.declined {
            workers.warming = Some(cancel.clone());
        }
        workers.declined
    });
    if declined {
        return false;
    }
    let outcome = run(Request::Warm(model, weights), None, |_| (), &cancel).await;
    if let Err(e) = &outcome
        && !matches!(e, JobError::Cancelled)
    {
        warn(&format!(
            "DSAN-CT: the warm-up of the compute worker failed: {e}"
        ));
    }
    WORKERS.with(|w| {
        let mut workers = w.borrow_mut();
        workers.warming = None;
        workers.warm |= matches!(outcome, Ok(Reply::Warmed));
        workers.warm
    })
}

/// Says on the browser's console why something that only speeds the page up
/// did not happen.
fn warn(message: &str) {
    web_sys::console::warn_1(&message.into());
}

/// Ends the warm-up if it runs, and keeps one from starting: the page needs
/// the cores for what the user asked.
pub fn stop_warm_up() {
    let warming = WORKERS.with(|w| {
        let mut workers = w.borrow_mut();
        workers.declined = true;
        workers.warming.take()
    });
    if let Some(cancel) = warming {
        cancel.cancel();
    }
}

/// Runs `job` in a new worker (with a helper where [`helped`]); `on_stage`
/// hears each stage's label as it starts, and `cancel` can end it early.
pub async fn run_job(
    job: &Job,
    on_stage: impl FnMut(String) + Clone + 'static,
    cancel: &Cancel,
) -> Result<Finished, JobError> {
    let channel = helped(job.backend)
        .then(|| MessageChannel::new().ok())
        .flatten();
    let reply = match channel {
        Some(channel) => {
            let (port, helper_port) = (channel.port1(), channel.port2());
            let helper = Request::Help(job, &helper_port);
            match run(
                Request::Diagnose(job, Some(&port)),
                Some(helper),
                on_stage.clone(),
                cancel,
            )
            .await
            {
                Err(JobError::HelperDied) => {
                    run(Request::Diagnose(job, None), None, on_stage, cancel).await
                }
                reply => reply,
            }
        }
        None => run(Request::Diagnose(job, None), None, on_stage, cancel).await,
    };
    match reply? {
        Reply::Done(finished) => {
            if job.backend == Backend::Cpu {
                WORKERS.with(|w| w.borrow_mut().warm = true);
            }
            Ok(*finished)
        }
        _ => Err(out_of_turn()),
    }
}

/// Loads a site's model in a new worker as a diagnosis would; returns its
/// parameter count, or why it cannot be used.
pub async fn check_model(card: &ModelCard, weights: &[u8]) -> Result<usize, JobError> {
    match run(
        Request::CheckModel(card, weights),
        None,
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
    // Its timings are the backend's own, not shared with a warm-up.
    stop_warm_up();
    match run(
        Request::SelfCheck(backend, preset),
        None,
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

/// The workers' module, compiled on first use (once: later callers await
/// the same compilation; after a failure the next caller tries again).
async fn worker_module() -> Result<JsValue, JobError> {
    let pending = WORKERS.with(|w| {
        w.borrow_mut()
            .module
            .get_or_insert_with(|| wasm_bindgen_futures::future_to_promise(compile_module()))
            .clone()
    });
    JsFuture::from(pending).await.map_err(|reason| {
        WORKERS.with(|w| w.borrow_mut().module = None);
        JobError::NoCode(
            reason
                .as_string()
                .or_else(|| js_sys::Error::from(reason).message().as_string())
                .unwrap_or_default(),
        )
    })
}

/// Compiles [`WORKER_WASM`] while it downloads (which lets the browser
/// cache the compiled code) or, where that fails (a server that does not
/// say `application/wasm`, for one), from its bytes.
async fn compile_module() -> Result<JsValue, JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let streamed = WebAssembly::compile_streaming(&window.fetch_with_str(WORKER_WASM));
    if let Ok(module) = JsFuture::from(streamed).await {
        return Ok(module);
    }
    let response: Response = JsFuture::from(window.fetch_with_str(WORKER_WASM))
        .await?
        .dyn_into()?;
    if !response.ok() {
        return Err(format!("{WORKER_WASM}: HTTP {}", response.status()).into());
    }
    let bytes = JsFuture::from(response.array_buffer()?).await?;
    JsFuture::from(WebAssembly::compile(&bytes)).await
}

/// A new worker, given `module` to instantiate.
fn new_worker(module: &JsValue) -> Result<Worker, JobError> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Classic);
    let worker = Worker::new_with_options(WORKER_BOOT, &options)
        .map_err(|_| JobError::Died("the browser refused to start it".to_owned()))?;
    worker.post_message(module).map_err(|_| {
        worker.terminate();
        JobError::Died("its code could not be sent to it".to_owned())
    })?;
    Ok(worker)
}

/// Runs `request` in a new worker (and `helper` in another), both ended
/// when the request is; the reply is the result (a failure is an error).
async fn run(
    request: Request<'_>,
    helper: Option<Request<'_>>,
    on_stage: impl FnMut(String) + 'static,
    cancel: &Cancel,
) -> Result<Reply, JobError> {
    if cancel.cancelled() {
        return Err(JobError::Cancelled);
    }
    let module = worker_module().await?;
    // Encoded (in steps, yielding to the page) before the workers start:
    // their first message, that they listen, is lost unless a handler is set
    // in the same turn as the worker is made.
    let unsent = |e: MessageError| JobError::Died(e.to_string());
    let message = request.encode().await.map_err(unsent)?;
    let helper = match helper {
        Some(helper) => Some(helper.encode().await.map_err(unsent)?),
        None => None,
    };
    if cancel.cancelled() {
        return Err(JobError::Cancelled);
    }
    let worker = new_worker(&module)?;
    let (helper_worker, helper) = match helper {
        Some(message) => match new_worker(&module) {
            Ok(helper) => (Some(helper), Some(message)),
            Err(e) => {
                worker.terminate();
                return Err(e);
            }
        },
        None => (None, None),
    };
    let helper = helper_worker.as_ref().zip(helper);
    let outcome = run_in(&worker, helper, &request, message, on_stage, cancel).await;
    worker.terminate();
    if let Some(helper) = &helper_worker {
        helper.terminate();
    }
    outcome
}

/// Sends `message` to `worker` once it says it listens.
fn send_when_ready(
    worker: &Worker,
    message: Message,
    failed: Function,
) -> impl FnMut(&JsValue) -> bool + 'static {
    let mut pending = Some(message);
    let sender = worker.clone();
    move |data: &JsValue| {
        let ready = Reply::kind(data).as_deref() == Some("ready");
        if ready
            && let Some(message) = pending.take()
            && sender
                .post_message_with_transfer(&message.value, &message.transfer)
                .is_err()
        {
            let _ = failed.call1(&JsValue::NULL, &"the request could not be sent".into());
        }
        ready
    }
}

/// A worker's two handlers, kept as long as they are set.
type Handlers = (
    Closure<dyn FnMut(MessageEvent)>,
    Closure<dyn FnMut(ErrorEvent)>,
);

fn set_handlers(worker: &Worker, handlers: &Handlers) {
    worker.set_onmessage(Some(handlers.0.as_ref().unchecked_ref()));
    worker.set_onerror(Some(handlers.1.as_ref().unchecked_ref()));
}

fn clear_handlers(worker: &Worker) {
    worker.set_onmessage(None);
    worker.set_onerror(None);
}

/// The helper's handlers: its request sent when it listens; its death (an
/// error, or a failure it reports to the page) sets `died` and rejects the
/// request with `reject`.
fn helper_handlers(
    helper: &Worker,
    message: Message,
    reject: &Function,
    died: &Rc<Cell<bool>>,
) -> Handlers {
    let lost = {
        let (reject, died) = (reject.clone(), Rc::clone(died));
        move || {
            died.set(true);
            let _ = reject.call1(&JsValue::NULL, &"the helper stopped".into());
        }
    };
    let mut ready = send_when_ready(helper, message, reject.clone());
    let on_failed = lost.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let data = event.data();
        if !ready(&data) && Reply::kind(&data).as_deref() == Some("failed") {
            on_failed();
        }
    });
    let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
        event.prevent_default();
        lost();
    });
    (on_message, on_error)
}

async fn run_in(
    worker: &Worker,
    helper: Option<(&Worker, Message)>,
    request: &Request<'_>,
    message: Message,
    on_stage: impl FnMut(String) + 'static,
    cancel: &Cancel,
) -> Result<Reply, JobError> {
    let mut message = Some(message);
    let mut on_stage = Some(on_stage);
    let helper_worker = helper.as_ref().map(|(helper, _)| *helper);
    let mut helper = helper;
    let mut handlers = Vec::new();
    let helper_died = Rc::new(Cell::new(false));
    let settled = Promise::new(&mut |resolve: Function, reject: Function| {
        let (Some(mut on_stage), Some(message)) = (on_stage.take(), message.take()) else {
            return;
        };
        cancel.hold(Some(reject.clone()));
        let mut ready = send_when_ready(worker, message, reject.clone());
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            if ready(&data) {
                return;
            }
            match Reply::kind(&data).as_deref() {
                Some("stage") => on_stage(Reply::stage_of(&data).unwrap_or_default()),
                _ => {
                    let _ = resolve.call1(&JsValue::NULL, &data);
                }
            }
        });
        let died = reject.clone();
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            event.prevent_default();
            let _ = died.call1(&JsValue::NULL, &JsValue::from_str(&event.message()));
        });
        let own = (on_message, on_error);
        set_handlers(worker, &own);
        handlers.push(own);
        if let Some((helper, message)) = helper.take() {
            let theirs = helper_handlers(helper, message, &reject, &helper_died);
            set_handlers(helper, &theirs);
            handlers.push(theirs);
        }
    });
    let reply = JsFuture::from(settled).await;
    cancel.hold(None);
    clear_handlers(worker);
    if let Some(helper) = helper_worker {
        clear_handlers(helper);
    }
    drop(handlers);
    if cancel.cancelled() {
        return Err(JobError::Cancelled);
    }
    if helper_died.get() {
        return Err(JobError::HelperDied);
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
