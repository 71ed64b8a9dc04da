// Replays SSE test vectors through a real Chromium EventSource and prints what it dispatched.
//
// Usage: node tests/browser/sse_eventsource.mjs <vectors.json>
// Output: one JSON line per vector, in vector order:
//   {"name": "...", "events": [{"type": "...", "data": "...", "lastEventId": "..."}, ...]}
// Exit codes: 0 ok, 2 bad usage or vectors, 3 infrastructure failure (no Chromium, timeout, ...).
import fs from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const CHUNK_PAUSE_MS = 40; // long enough that Chromium reads each chunk separately
const CONCURRENCY = 4; // below Chromium's 6 connections per host
const VECTOR_TIMEOUT_MS = 20_000;
const TOTAL_TIMEOUT_MS = 100_000; // the whole run, browser start included

function fail(code, msg) {
  process.stderr.write(`sse_eventsource: ${msg}\n`);
  process.exit(code);
}

// --- load and check the vectors: chunks are latin1 strings, one char per byte
if (process.argv.length !== 3) fail(2, 'usage: node sse_eventsource.mjs <vectors.json>');
let vectors;
try {
  vectors = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
} catch (e) {
  fail(2, `cannot read vectors: ${e.message}`);
}
if (!Array.isArray(vectors)) fail(2, 'vectors file must hold a JSON array');
for (const [i, v] of vectors.entries()) {
  const ok = v && typeof v.name === 'string' && Array.isArray(v.chunks) &&
    v.chunks.every((c) => typeof c === 'string' && /^[\u0000-\u00ff]*$/.test(c));
  if (!ok) fail(2, `vector #${i} must be {name, chunks: [latin1 strings]}`);
}

// EventSource only delivers types someone listens for, so collect every name that
// could follow `event:` (decoded leniently, with and without the one stripped space).
function candidateTypes(chunks) {
  const types = new Set(['message']);
  const bytes = chunks.join('');
  for (const raw of bytes.split(/\r\n|\r|\n/)) {
    const line = new TextDecoder('utf-8').decode(Buffer.from(raw, 'latin1')); // drops a leading BOM
    const m = /^\uFEFF?event:(.*)$/s.exec(line);
    if (!m) continue;
    types.add(m[1]);
    if (m[1].startsWith(' ')) types.add(m[1].slice(1));
  }
  types.delete('');
  return [...types];
}

// --- HTTP server: /v/<i> streams vector i chunk by chunk, / is a blank page
const requests = new Array(vectors.length).fill(0);
const finished = new Array(vectors.length).fill(false);
const server = http.createServer(async (req, res) => {
  if (req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>sse</title>');
    return;
  }
  const m = /^\/v\/(\d+)$/.exec(req.url);
  const i = m ? Number(m[1]) : -1;
  if (!(i >= 0 && i < vectors.length)) {
    res.writeHead(404).end();
    return;
  }
  if (++requests[i] > 1) {
    // A reconnect: 204 tells EventSource to stop for good.
    res.writeHead(204).end();
    return;
  }
  res.socket.setNoDelay(true);
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
  res.flushHeaders();
  for (const chunk of vectors[i].chunks) {
    await sleep(CHUNK_PAUSE_MS);
    if (res.destroyed) return;
    res.write(Buffer.from(chunk, 'latin1'));
  }
  await sleep(CHUNK_PAUSE_MS);
  res.end();
  finished[i] = true;
});

// Runs inside the page: records every MessageEvent until the stream ends.
function collectInPage([url, types, timeoutMs]) {
  return new Promise((resolve) => {
    const events = [];
    let opened = false;
    const es = new EventSource(url);
    const done = (status) => {
      es.close();
      clearTimeout(timer);
      resolve({ status, opened, events });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    const record = (e) => events.push({ type: e.type, data: e.data, lastEventId: e.lastEventId });
    // `open` and `error` can also be server-sent types: only plain Events are the built-in ones.
    es.addEventListener('open', (e) => (e instanceof MessageEvent ? record(e) : (opened = true)));
    es.addEventListener('error', (e) => (e instanceof MessageEvent ? record(e) : done('ended')));
    for (const t of types) if (t !== 'open' && t !== 'error') es.addEventListener(t, record);
  });
}

async function main() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    fail(3, `Chromium not found at ${executablePath} (apt-get install chromium, or set CHROMIUM)`);
  }
  await new Promise((ok, err) => server.once('error', err).listen(0, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${server.address().port}`;

  const t0 = Date.now();
  const browser = await chromium.launch({
    executablePath,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    process.stderr.write(`sse_eventsource: Chromium ${browser.version()}\n`);
    const page = await browser.newPage();
    await page.goto(origin + '/', { timeout: 10_000 });

    const results = new Array(vectors.length);
    let next = 0;
    const worker = async () => {
      while (next < vectors.length) {
        const i = next++;
        const r = await page.evaluate(collectInPage,
          [`/v/${i}`, candidateTypes(vectors[i].chunks), VECTOR_TIMEOUT_MS]);
        const name = vectors[i].name;
        if (r.status !== 'ended') fail(3, `vector ${name}: no end of stream within ${VECTOR_TIMEOUT_MS} ms`);
        if (!r.opened || !finished[i]) fail(3, `vector ${name}: stream failed before the server ended it`);
        results[i] = { name, events: r.events };
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    const extra = requests.filter((n) => n > 1).length;
    if (extra) process.stderr.write(`sse_eventsource: warning: ${extra} vector(s) were requested twice\n`);
    process.stderr.write(`sse_eventsource: ${vectors.length} vectors in ${Date.now() - t0} ms\n`);
    const out = results.map((r) => JSON.stringify(r) + '\n').join('');
    await new Promise((ok) => process.stdout.write(out, ok));
  } finally {
    await browser.close();
    server.close();
  }
}

// Hard limit on the whole run, whatever hangs.
setTimeout(() => fail(3, `timed out after ${TOTAL_TIMEOUT_MS} ms`), TOTAL_TIMEOUT_MS).unref();
main().then(
  () => process.exit(0),
  (e) => fail(3, `infrastructure failure: ${e && e.stack ? e.stack : e}`),
);
