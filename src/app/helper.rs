//! Branch B in a second worker, the helper, so that on the CPU the network's
//! two branches run at once on two cores (WebAssembly here has one thread
//! per worker). The page gives the diagnosing worker and its helper the two
//! ends of a `MessageChannel`. The diagnosing worker sends the network input
//! through it and runs branch U meanwhile ([`Split`]); the helper, its model
//! loaded while the lungs were segmented, runs branch B and sends the result
//! back ([`serve`]). A helper that cannot sends why, and the diagnosing
//! worker runs branch B itself; one that dies is the page's to notice (see
//! [`super::worker_client`]).

use burn::prelude::Backend;
use js_sys::{Array, Float32Array, Function, Object, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::{Closure, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, MessagePort};

use super::wasm_memory_bytes;
use crate::model::Dsan;
use crate::pipeline::{Branch, BranchResult, DiagnosisError, Inference, run_branch};

/// The branch the helper runs.
const HELPER_BRANCH: Branch = Branch::Balanced;

/// The next message on `port`, listened for from this call on (a port holds
/// its messages until it is listened to). Listening ends when the returned
/// [`Listening`] is dropped.
fn next_message(port: &MessagePort) -> Listening {
    let promise = Promise::new(&mut |resolve: Function, _reject: Function| {
        let on_message = Closure::once_into_js(move |event: MessageEvent| {
            // Resolving a promise cannot fail.
            let _ = resolve.call1(&JsValue::NULL, &event.data());
        });
        port.set_onmessage(Some(on_message.unchecked_ref()));
    });
    Listening {
        port: port.clone(),
        message: JsFuture::from(promise),
    }
}

/// A port listened to for one message.
struct Listening {
    port: MessagePort,
    message: JsFuture,
}

impl Listening {
    /// The message.
    async fn message(mut self) -> JsValue {
        // The promise is only ever resolved.
        (&mut self.message).await.unwrap_or(JsValue::UNDEFINED)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.port.set_onmessage(None);
    }
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Setting a property on a plain, extensible object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn get(value: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(value, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined())
}

/// The helper's answer as it travels: its branch's result and its memory,
/// or why it has none.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Answer {
    Done {
        result: BranchResult,
        memory_bytes: f64,
    },
    Failed(String),
}

impl Answer {
    fn read(message: &JsValue) -> Self {
        let Some(text) = get(message, "answer").and_then(|v| v.as_string()) else {
            return Self::Failed("the helper's answer is malformed".to_owned());
        };
        serde_json::from_str(&text)
            .unwrap_or_else(|e| Self::Failed(format!("the helper's answer does not parse: {e}")))
    }
}

/// Both branches, branch U here and branch B in the helper at the other end
/// of `port`.
pub struct Split<'a, B: Backend> {
    /// The model (branch B runs here too when the helper fails).
    pub model: &'a Dsan<B>,
    /// Where it runs.
    pub device: &'a B::Device,
    /// The diagnosing worker's end of the channel.
    pub port: MessagePort,
    /// The helper's WebAssembly memory when it answered, bytes.
    pub helper_memory_bytes: Option<f64>,
}

impl<B: Backend> Inference for Split<'_, B> {
    async fn infer(
        &mut self,
        input: &[f32],
        grid: [usize; 3],
    ) -> Result<[BranchResult; 2], DiagnosisError> {
        let answer = next_message(&self.port);
        let request = Object::new();
        let values = Float32Array::from(input);
        set(&request, "input", &values);
        set(
            &request,
            "grid",
            &Array::of3(&grid[0].into(), &grid[1].into(), &grid[2].into()),
        );
        let sent = self
            .port
            .post_message_with_transferable(&request, &Array::of1(&values.buffer()))
            .is_ok();
        let uniform = run_branch(&self.model.uniform, input, grid, self.device).await?;
        let helped = match sent.then_some(answer) {
            Some(answer) => Answer::read(&answer.message().await),
            None => Answer::Failed("the input could not be sent".to_owned()),
        };
        let balanced = match helped {
            Answer::Done {
                result,
                memory_bytes,
            } => {
                self.helper_memory_bytes = Some(memory_bytes);
                result
            }
            Answer::Failed(_) => {
                run_branch(HELPER_BRANCH.of(self.model), input, grid, self.device).await?
            }
        };
        Ok([uniform, balanced])
    }
}

/// The network input in a message from [`Split`].
fn input_of(message: &JsValue) -> Result<(Vec<f32>, [usize; 3]), String> {
    let values: Float32Array = get(message, "input")
        .and_then(|v| v.dyn_into().ok())
        .ok_or("the input is missing")?;
    let grid: Vec<usize> = get(message, "grid")
        .map(|v| {
            Array::from(&v)
                .iter()
                .filter_map(|n| n.as_f64())
                .map(|n| n as usize)
                .collect()
        })
        .unwrap_or_default();
    let grid: [usize; 3] = grid.try_into().map_err(|_| "the grid is malformed")?;
    if values.length() as usize != grid.iter().product::<usize>() {
        return Err("the input does not fill its grid".to_owned());
    }
    Ok((values.to_vec(), grid))
}

/// The helper's side: waits for the input on `port`, runs branch B of
/// `model` (or takes `model`'s failure to load) and answers.
pub async fn serve<B: Backend>(
    model: Result<Dsan<B>, String>,
    device: &B::Device,
    port: &MessagePort,
) {
    let message = next_message(port).message().await;
    let answer = match model.and_then(|model| Ok((model, input_of(&message)?))) {
        Ok((model, (input, grid))) => {
            match run_branch(HELPER_BRANCH.of(&model), &input, grid, device).await {
                Ok(result) => Answer::Done {
                    result,
                    memory_bytes: wasm_memory_bytes(),
                },
                Err(e) => Answer::Failed(e.to_string()),
            }
        }
        Err(why) => Answer::Failed(why),
    };
    // Numbers and strings always encode; an empty answer would read as a
    // failure.
    let text = serde_json::to_string(&answer).unwrap_or_default();
    let reply = Object::new();
    set(&reply, "answer", &text.into());
    // Posting plain strings cannot fail.
    let _ = port.post_message(&reply);
}
