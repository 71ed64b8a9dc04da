// One room, five kinds of client in one headless Chromium page: @stomp/stompjs over a native
// WebSocket (/stomp), sockjs-client over xhr-streaming carrying roomcast.v1 (/sockjs), a
// roomcast.v1 WebSocket (/ws), an EventSource (/events) and a long-poll loop (/poll). Node
// publishes through the HTTP API; every client must see the same messages in the same order,
// each once, including the ones published while all of them were cut off, which each gets back
// by its own protocol's resume: STOMP's `x-roomcast-since`, a v1 `join` with `since`, SSE's
// `lastEventId`, the long-poll's cursor.
//
// Usage: node tests/browser/mixed_room.mjs http://127.0.0.1:PORT API_KEY
//
// Run by servers/roomcast/tests/stomp.rs, which owns the server. Prints one JSON line:
// `{"published": [ids], "seen": {client: [ids]}, "recovered": {client: bool}}`, or
// `{"error": "..."}`. Exit codes: 0 ran, 2 bad usage, 3 the browser could not run.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

if (process.argv.length !== 4) {
  process.stderr.write('usage: node mixed_room.mjs http://127.0.0.1:PORT API_KEY\n');
  process.exit(2);
}
const base = process.argv[2].replace(/\/$/, '');
const key = process.argv[3];
const here = path.dirname(fileURLToPath(import.meta.url));

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
} catch (error) {
  process.stderr.write(`mixed_room: could not launch Chromium: ${error}\n`);
  process.exit(3);
}

// Publishes `count` messages to the room through the API, one after another: their ids.
async function publish(count, from) {
  const ids = [];
  for (let i = 0; i < count; i += 1) {
    const response = await fetch(`${base}/api/rooms/lobby/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ data: { n: from + i } }),
    });
    if (response.status !== 200) throw new Error(`publish: ${response.status} ${await response.text()}`);
    ids.push((await response.json()).id);
  }
  return ids;
}

try {
  const page = await browser.newPage();
  await page.goto(`${base}/healthz`);
  await page.addScriptTag({ path: path.join(here, 'node_modules/sockjs-client/dist/sockjs.min.js') });
  await page.addScriptTag({ path: path.join(here, 'node_modules/@stomp/stompjs/bundles/stomp.umd.min.js') });
  await page.evaluate(install, base);
  const published = [];
  await page.evaluate(() => window.mixed.connectAll());
  published.push(...await publish(5, 0));
  await page.evaluate((n) => window.mixed.waitAll(n), published.length);
  await page.evaluate(() => window.mixed.cutAll());
  published.push(...await publish(5, 5));
  await page.evaluate(() => window.mixed.resumeAll());
  published.push(...await publish(2, 10));
  await page.evaluate((n) => window.mixed.waitAll(n), published.length);
  // Nothing more may come: a duplicate would arrive now.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const { seen, recovered } = await page.evaluate(() => window.mixed.report());
  process.stdout.write(`${JSON.stringify({ published, seen, recovered })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: String(error && error.stack || error) })}\n`);
} finally {
  await browser.close();
}

// Runs in the page: the five clients, as `window.mixed`.
function install(base) {
  const ws = base.replace(/^http/, 'ws');
  const seen = { stomp: [], sockjs: [], websocket: [], sse: [], poll: [] };
  const recovered = {};
  const within = (what, promise) => Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what} within 10 s`)), 10000)),
  ]);
  const last = (name) => seen[name][seen[name].length - 1];
  const clients = {};

  // A roomcast.v1 client over `open()`'s socket (a WebSocket or a SockJS): it joins the room,
  // with `since` when resuming, and resolves once the join is answered.
  const v1 = (name, open) => ({
    start(since) {
      return within(`${name}'s join`, new Promise((resolve, reject) => {
        const sock = open();
        this.sock = sock;
        sock.onmessage = (event) => {
          const message = JSON.parse(event.data);
          if (message.type === 'welcome') {
            sock.send(JSON.stringify({ type: 'join', room: 'lobby', ref: 'j', ...(since ? { since } : {}) }));
          } else if (message.type === 'reply' && message.ref === 'j') {
            if (since) recovered[name] = message.recovered;
            resolve();
          } else if (message.type === 'message') {
            seen[name].push(message.id);
          }
        };
        sock.onclose = () => reject(new Error(`${name} closed`));
      }));
    },
    cut() {
      this.sock.onclose = null;
      this.sock.onmessage = null;
      this.sock.close();
    },
  });
  clients.websocket = v1('websocket', () => new WebSocket(`${ws}/ws?user=ws`, 'roomcast.v1'));
  clients.sockjs = v1('sockjs', () => new SockJS(`${base}/sockjs?user=sockjs`, null, { transports: ['xhr-streaming'] }));

  clients.stomp = {
    start(since) {
      return within('the STOMP subscription', new Promise((resolve, reject) => {
        const client = new StompJs.Client({
          brokerURL: `${ws}/stomp?user=stomp`,
          reconnectDelay: 0,
          heartbeatIncoming: 0,
          heartbeatOutgoing: 0,
        });
        this.client = client;
        client.onStompError = (frame) => reject(new Error(frame.headers.message));
        client.onConnect = () => {
          client.watchForReceipt('sub', resolve);
          const headers = { receipt: 'sub', ...(since ? { 'x-roomcast-since': since } : {}) };
          client.subscribe('/topic/lobby', (message) => {
            // A resume's first frame says whether it was whole, and carries no message.
            if (message.headers['message-id'].startsWith('resume-')) {
              recovered.stomp = JSON.parse(message.body).recovered;
            } else {
              seen.stomp.push(message.headers['message-id']);
            }
          }, headers);
        };
        client.activate();
      }));
    },
    cut() {
      this.client.forceDisconnect();
      return this.client.deactivate();
    },
  };

  clients.sse = {
    start(since) {
      return within('the SSE stream', new Promise((resolve, reject) => {
        const resume = since ? `&lastEventId=${encodeURIComponent(`room:lobby=${since}`)}` : '';
        const source = new EventSource(`${base}/events?user=sse&rooms=lobby&broadcast=0${resume}`);
        this.source = source;
        source.addEventListener('streams', (event) => {
          const streams = JSON.parse(event.data).streams;
          const room = streams.find((s) => s.stream === 'room:lobby');
          if (since && room) recovered.sse = room.recovered;
          resolve();
        });
        source.addEventListener('message', (event) => seen.sse.push(JSON.parse(event.data).id));
        source.onerror = () => reject(new Error('the SSE stream failed'));
      }));
    },
    cut() {
      this.source.close();
    },
  };

  clients.poll = {
    start(since) {
      this.running = true;
      const loop = async (cursor) => {
        while (this.running) {
          const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
          const response = await fetch(`${base}/poll?user=poll&rooms=lobby&broadcast=0&timeout=1${query}`);
          const answer = await response.json();
          if (!this.running) return; // cut: what this answer held was never read
          if (since && recovered.poll === undefined) recovered.poll = answer.recovered;
          for (const event of answer.events) {
            if (event.type === 'message') seen.poll.push(event.id);
          }
          cursor = answer.cursor;
          this.ready();
        }
      };
      const ready = new Promise((resolve) => { this.ready = resolve; });
      this.done = loop(since ? `room:lobby=${since}` : null);
      return within('the first poll', ready);
    },
    async cut() {
      this.running = false;
      await this.done;
    },
  };

  window.mixed = {
    async connectAll() {
      for (const name of Object.keys(clients)) await clients[name].start(null);
    },
    async waitAll(count) {
      await within(`${count} messages everywhere (${JSON.stringify(seen)})`, new Promise((resolve) => {
        const check = () => (Object.values(seen).every((ids) => ids.length >= count)
          ? resolve() : setTimeout(check, 20));
        check();
      }));
    },
    async cutAll() {
      for (const name of Object.keys(clients)) await clients[name].cut();
    },
    async resumeAll() {
      for (const name of Object.keys(clients)) await clients[name].start(last(name));
    },
    report() {
      return { seen, recovered };
    },
  };
}
