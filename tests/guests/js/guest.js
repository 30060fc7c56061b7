// Boson test guest (JavaScript, componentize-js): dispatches on the first path segment.
// See tests/guests/README.md for the routes.
//
// Environment and files go through the WASI interfaces imported by the world
// (`local:guest/guest-app`): StarlingMonkey has neither `process.env` nor a file API.
import { getEnvironment } from 'wasi:cli/environment@0.2.10';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.10';

const encoder = new TextEncoder();

function text(body, status = 200, contentType = 'text/plain') {
  return new Response(body, { status, headers: { 'content-type': contentType } });
}

function errorText(e) {
  if (e && e.payload !== undefined) {
    const p = e.payload;
    if (typeof p === 'string') return p;
    if (p && typeof p === 'object' && 'tag' in p) return p.tag;
    return JSON.stringify(p);
  }
  if (e && e.message) return e.message;
  return String(e);
}

function envRoute(name) {
  for (const [k, v] of getEnvironment()) {
    if (k === name) return text(v);
  }
  return text('not set\n', 404);
}

// Opens `path` (absolute) relative to the preopen whose guest path is its longest prefix.
function readFile(path) {
  let best = null;
  for (const [dir, guestPath] of getDirectories()) {
    const prefix = guestPath.endsWith('/') ? guestPath : guestPath + '/';
    if (path === guestPath || path.startsWith(prefix) || guestPath === '/') {
      if (!best || guestPath.length > best[1].length) best = [dir, guestPath];
    }
  }
  if (!best) throw new Error('no preopened directory contains ' + path);
  let rel = path.slice(best[1].length).replace(/^\/+/, '');
  if (rel === '') rel = '.';
  const file = best[0].openAt({ symlinkFollow: true }, rel, {}, { read: true });
  const chunks = [];
  let total = 0;
  let offset = 0n;
  for (;;) {
    const [data, eof] = file.read(65536n, offset);
    if (data.length) {
      chunks.push(data);
      total += data.length;
      offset += BigInt(data.length);
    }
    if (eof || data.length === 0) break;
  }
  const out = new Uint8Array(total);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

function fileRoute(path) {
  try {
    return new Response(readFile(path), { status: 200, headers: { 'content-type': 'text/plain' } });
  } catch (e) {
    return text(`error: ${errorText(e)}\n`, 404);
  }
}

async function outboundRoute(request) {
  const target = request.headers.get('x-target-url');
  if (!target) return text('error: missing x-target-url header\n', 502);
  try {
    const upstream = await fetch(target);
    const body = new Uint8Array(await upstream.arrayBuffer());
    const head = encoder.encode(`status=${upstream.status}\n`);
    const out = new Uint8Array(head.length + body.length);
    out.set(head, 0);
    out.set(body, head.length);
    return new Response(out, { status: 200, headers: { 'content-type': 'text/plain' } });
  } catch (e) {
    return text(`error: ${errorText(e)}\n`, 502);
  }
}

// JSON.stringify, but with ", " and ": " separators like the C and Python guests.
function toJson(value) {
  if (value !== null && typeof value === 'object') {
    const items = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${toJson(v)}`);
    return `{${items.join(', ')}}`;
  }
  return JSON.stringify(value);
}

async function echoRoute(request, pathWithQuery) {
  const headers = {};
  // Fetch's Headers already joins repeated values with ", " and lowercases names.
  for (const [name, value] of request.headers) {
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  // request.text() throws on invalid UTF-8 in StarlingMonkey; decode leniently (U+FFFD).
  const body = new TextDecoder('utf-8').decode(new Uint8Array(await request.arrayBuffer()));
  const doc = { method: request.method, path: pathWithQuery, headers, body };
  return text(toJson(doc), 200, 'application/json');
}

async function handle(request) {
  // request.url is "<scheme>://<authority><path-with-query>" (already URL-normalised).
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*(.*)$/.exec(request.url);
  const pathWithQuery = m && m[1] ? m[1] : '/';
  const path = pathWithQuery.split('?')[0];
  const segments = path.split('/'); // ['', first, rest...]
  const first = segments.length > 1 ? segments[1] : '';
  const rest = segments.slice(2).join('/');

  switch (first) {
    case 'hello':
      return text('hello\n');
    case 'env':
      return envRoute(rest);
    case 'file':
      return fileRoute('/' + rest);
    case 'outbound':
      return outboundRoute(request);
    case 'loop': {
      // eslint-disable-next-line no-constant-condition
      while (true) {}
    }
    case 'alloc': {
      const hoard = [];
      for (;;) {
        const chunk = new Uint8Array(1 << 20);
        chunk.fill(1);
        hoard.push(chunk);
      }
    }
    case 'trap':
      throw new Error('guest asked to trap');
    case 'stdout':
      console.log('guest says hi on stdout');
      console.error('guest says hi on stderr');
      return text('logged\n');
    case 'sleep': {
      const ms = parseInt(rest, 10) || 0;
      await new Promise((resolve) => setTimeout(resolve, ms));
      return text('slept\n');
    }
    default:
      return echoRoute(request, pathWithQuery);
  }
}

addEventListener('fetch', (event) => {
  event.respondWith(handle(event.request));
});
