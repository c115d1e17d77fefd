// Starts the page's WebAssembly. Trunk's default loader is an inline script,
// which the Content-Security-Policy forbids; Trunk.toml's `pattern_script`
// emits a <script src="boot.js"> tag instead, carrying the hashed file names.
const tag = document.querySelector('script[data-js][data-wasm]');
const { default: init } = await import(tag.dataset.js);
await init({ module_or_path: tag.dataset.wasm });

// Offline use: once the page runs, the service worker (sw.js) keeps this
// build's files, so later visits need no network. Not available on insecure
// origins; the page works the same without it.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').catch((e) => console.warn('offline use unavailable:', e));
}
