// An HTTP handler in TypeScript: the `fetch` event fires once per request, as in a service
// worker. `Request`, `Response`, `Headers`, `URL` and `fetch` (outbound HTTP, to the hosts that
// spin.toml's `allowed_outbound_hosts` grants) are the web platform's.

async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  return new Response(`Hello from TypeScript! You asked for ${url.pathname}${url.search}\n`, {
    status: 200,
    headers: { 'content-type': 'text/plain' },
  });
}

addEventListener('fetch', (event: FetchEvent) => {
  event.respondWith(handle(event.request));
});
