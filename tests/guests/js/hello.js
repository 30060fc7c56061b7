// Boson test guest (JavaScript): responds 200 `Hello from JavaScript!`.
addEventListener('fetch', (event) => {
  event.respondWith(new Response('Hello from JavaScript!\n', {
    status: 200,
    headers: { 'content-type': 'text/plain' },
  }));
});
