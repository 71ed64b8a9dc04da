// One page opens 10 EventSources and a roomcast.v1 WebSocket on one origin, in headless
// Chromium. Over HTTP/1.1 a browser holds at most 6 connections per origin, so the seventh
// stream waits; over HTTP/2 (TLS) they all share one connection, and the WebSocket rides it too
// (RFC 8441, extended CONNECT).
//
// Usage: node tests/browser/h2_tabs.mjs <base URL> <publish URL>
//
// Run by servers/roomcast/tests/tls_browser.rs, which starts the server and publishes when told.
// Then two more WebSockets on the same origin (alice and bob) play the roomcast.v1 scenario:
// welcome, join with presence, publish and its message, a direct message, ping, leave.
// Prints one JSON line: how many streams opened, what each received, the protocols Chromium used,
// and each step of the scenario (`v1`: step names, in order, with what failed).
// Exit codes: 0 ran, 2 bad usage, 3 the browser could not run.
import readline from 'node:readline';
import { chromium } from 'playwright-core';

if (process.argv.length !== 3) {
  process.stderr.write('usage: node h2_tabs.mjs <base URL>\n');
  process.exit(2);
}
const base = process.argv[2].replace(/\/$/, '');

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--ignore-certificate-errors'],
  });
} catch (error) {
  process.stderr.write(`h2_tabs: could not launch Chromium: ${error}\n`);
  process.exit(3);
}
const input = readline.createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();
try {
  const page = await browser.newPage();
  await page.goto(`${base}/healthz`);
  await page.evaluate((base) => {
    window.seen = { open: Array(10).fill(false), messages: Array(10).fill(0), ws: 'connecting', wsMessages: 0 };
    window.sources = [];
    for (let i = 0; i < 10; i++) {
      const source = new EventSource(`${base}/events?user=tab${i}`);
      source.onopen = () => { window.seen.open[i] = true; };
      source.addEventListener('broadcast', () => { window.seen.messages[i] += 1; });
      window.sources.push(source);
    }
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?user=socket`, 'roomcast.v1');
    ws.onopen = () => { window.seen.ws = 'open'; };
    ws.onerror = () => { window.seen.ws = 'error'; };
    ws.onmessage = (event) => {
      if (JSON.parse(event.data).type === 'broadcast') window.seen.wsMessages += 1;
    };
  }, base);
  // Let every stream that can open, open; then tell the test, which publishes 3 broadcasts.
  await page.waitForTimeout(2000);
  process.stdout.write('@@publish\n');
  await lines.next();
  await page.waitForTimeout(2000);
  const v1 = await page.evaluate(roomcastV1, base);
  // The scenario's sockets are still open: the test counts the TCP connections now.
  process.stdout.write('@@count\n');
  await lines.next();
  const seen = await page.evaluate(() => {
    const protocols = performance.getEntriesByType('resource')
      .concat(performance.getEntriesByType('navigation'))
      .map((entry) => entry.nextHopProtocol);
    const opened = window.seen.open.filter((open) => open).length;
    return { ...window.seen, opened, protocols };
  });
  seen.v1 = v1;
  process.stdout.write(`${JSON.stringify(seen)}\n`);
} finally {
  input.close();
  await browser.close();
}

// The roomcast.v1 scenario between two WebSockets, run in the page: each step's name once it
// passed, or `FAIL step: why` at the first that did not (each waits at most 5 s).
async function roomcastV1(base) {
  const steps = [];
  const open = (user) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?user=${user}`, 'roomcast.v1');
    ws.inbox = [];
    ws.waiters = [];
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const at = ws.waiters.findIndex((w) => w.test(message));
      if (at >= 0) ws.waiters.splice(at, 1)[0].resolve(message);
      else ws.inbox.push(message);
    };
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`${user}: the WebSocket failed`));
  });
  const next = (ws, what, test) => {
    const at = ws.inbox.findIndex(test);
    if (at >= 0) return Promise.resolve(ws.inbox.splice(at, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = { test, resolve };
      ws.waiters.push(waiter);
      setTimeout(() => {
        ws.waiters = ws.waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${what} within 5 s; got ${JSON.stringify(ws.inbox)}`));
      }, 5000);
    });
  };
  const reply = (ws, ref) => next(ws, `reply ${ref}`, (m) => m.ref === ref);
  const step = async (name, body) => {
    try {
      await body();
      steps.push(name);
    } catch (error) {
      steps.push(`FAIL ${name}: ${error.message}`);
      throw error;
    }
  };
  try {
    let alice, bob;
    await step('welcome', async () => {
      [alice, bob] = await Promise.all([open('alice'), open('bob')]);
      for (const [ws, user] of [[alice, 'alice'], [bob, 'bob']]) {
        const welcome = await next(ws, 'welcome', (m) => m.type === 'welcome');
        if (welcome.user !== user || welcome.protocol !== 1) throw new Error(JSON.stringify(welcome));
      }
    });
    await step('join', async () => {
      alice.send(JSON.stringify({ type: 'join', ref: 1, room: 'lobby' }));
      const first = await reply(alice, 1);
      if (first.type !== 'reply' || first.room !== 'lobby') throw new Error(JSON.stringify(first));
      bob.send(JSON.stringify({ type: 'join', ref: 1, room: 'lobby' }));
      const second = await reply(bob, 1);
      if (JSON.stringify(second.members) !== '["alice","bob"]') throw new Error(JSON.stringify(second));
    });
    await step('presence', async () => {
      await next(alice, 'presence of bob', (m) => m.type === 'presence' && (m.joins || []).includes('bob'));
    });
    await step('publish', async () => {
      bob.send(JSON.stringify({ type: 'publish', ref: 2, room: 'lobby', data: { text: 'hi over h2' } }));
      const answer = await reply(bob, 2);
      if (answer.type !== 'reply' || !answer.id) throw new Error(JSON.stringify(answer));
      const got = await next(alice, 'the message', (m) => m.type === 'message');
      if (got.from !== 'bob' || got.data.text !== 'hi over h2' || got.id !== answer.id) {
        throw new Error(`${JSON.stringify(got)} against reply ${JSON.stringify(answer)}`);
      }
    });
    await step('direct', async () => {
      alice.send(JSON.stringify({ type: 'direct', ref: 3, to: 'bob', data: 'psst' }));
      const answer = await reply(alice, 3);
      if (answer.delivered !== true) throw new Error(JSON.stringify(answer));
      const got = await next(bob, 'the direct message', (m) => m.type === 'direct');
      if (got.from !== 'alice' || got.data !== 'psst') throw new Error(JSON.stringify(got));
    });
    await step('ping', async () => {
      alice.send(JSON.stringify({ type: 'ping', ref: 4 }));
      const answer = await reply(alice, 4);
      if (answer.type !== 'reply') throw new Error(JSON.stringify(answer));
    });
    await step('leave', async () => {
      alice.send(JSON.stringify({ type: 'leave', ref: 5, room: 'lobby' }));
      const answer = await reply(alice, 5);
      if (answer.type !== 'reply' || answer.room !== 'lobby') throw new Error(JSON.stringify(answer));
      await next(bob, 'presence without alice', (m) => m.type === 'presence' && (m.leaves || []).includes('alice'));
    });
    window.v1Sockets = [alice, bob]; // kept open until the page closes
  } catch (_) {
    // The failing step is recorded.
  }
  return steps;
}
