// The compute worker's start (see src/app/worker_client.rs). The page
// compiles the worker's WebAssembly once and posts the module as the first
// message; each worker instantiates it rather than compiling its own copy, so
// that all of them share the browser's compiled and optimised code.
importScripts('./dsan-worker.js');
self.onmessage = (event) => {
  self.onmessage = null;
  wasm_bindgen({ module_or_path: event.data }).catch((error) => {
    // Thrown from a task of its own, it reaches the page as the worker's
    // error event.
    setTimeout(() => {
      throw error;
    });
  });
};
