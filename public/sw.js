// DSAN-CT's service worker: after one visit the page works offline.
//
// At install it fetches precache.json, the list of every file of this build
// that public/precache.sh writes at build time (Trunk's post_build hook), and
// stores them all in a cache named after the build's version. The same hook
// writes that version into VERSION below, so every new build changes this
// file's bytes: the browser then installs the new worker, which fills a new
// cache, takes over at once and deletes the old caches at activate.
//
// Same-origin GETs are answered from the cache, or from the network when the
// file is not cached (nothing fetched that way is stored). Every other request
// is left to the browser exactly as if there were no worker. The worker itself
// only ever makes same-origin GETs (precache.json and the files it lists).

const VERSION = 'unbuilt'; // replaced by public/precache.sh
const PREFIX = 'dsan-ct-';
const CACHE = PREFIX + VERSION;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      // 'no-cache': revalidate with the server rather than trust the HTTP cache.
      const response = await fetch('precache.json', { cache: 'no-cache' });
      if (!response.ok) throw new Error(`precache.json: HTTP ${response.status}`);
      const list = await response.json();
      if (list.version !== VERSION) throw new Error(`precache.json is for build ${list.version}, not ${VERSION}`);
      const cache = await caches.open(CACHE);
      // All or nothing: one failed file fails the install, the old worker stays.
      await cache.addAll(list.files.map((file) => new Request(file, { cache: 'no-cache' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith(cacheFirst(request, url));
});

/** The cached copy of a same-origin GET, else the network's answer (not stored). */
async function cacheFirst(request, url) {
  const cache = await caches.open(CACHE);
  // A page address ending in '/' is its index.html (as the server would answer).
  const navigation = request.mode === 'navigate';
  const key = navigation && url.pathname.endsWith('/') ? new URL('index.html', url).href : request;
  return (await cache.match(key, { ignoreSearch: navigation })) ?? fetch(request);
}
