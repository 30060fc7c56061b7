// An HTTP handler in JavaScript: the `fetch` event fires once per request, as in a service
// worker. `Request`, `Response`, `Headers`, `URL` and `fetch` (outbound HTTP, to the hosts that
// spin.toml's `allowed_outbound_hosts` grants) are the web platform's.

async function handle(request) {
  const url = new URL(request.url);
  return new Response(`Hello from JavaScript! You asked for ${url.pathname}${url.search}\n`, {
    status: 200,
    headers: { 'content-type': 'text/plain' },
  });
}

addEventListener('fetch', (event) => {
  event.respondWith(handle(event.request));
});
