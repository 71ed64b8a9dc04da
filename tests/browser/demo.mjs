// Drives roomcast's demo page (servers/roomcast/assets/index.html and roomcast.js) in headless
// Chromium: two users chat, type, send a direct message and get notifications, survive a network
// drop and a server restart.
//
// Usage: node tests/browser/demo.mjs <server base URL> <screenshot path>
//
// Run by servers/roomcast/tests/demo_browser.rs, which owns the server process. The two talk over
// stdio: this script writes a command line `@@sigterm`, `@@wait-exit` or `@@start` on stdout and
// reads one answer line (`ok ...` or `fail ...`) from stdin; `@@done` ends the scenario. Progress
// and failures go to stderr. Exit codes: 0 ok, 1 the scenario failed, 2 bad usage, 3 the browser
// could not run.
//
// Bob's page goes through a TCP proxy run here, so that his network can be cut for real (RST on
// every connection, new ones refused) while Alice stays connected directly.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const TOTAL_TIMEOUT_MS = 75_000;
const STEP_TIMEOUT_MS = 10_000;
const t0 = Date.now();

function log(msg) {
  process.stderr.write(`demo [${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}

class Failure extends Error {}
function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}

if (process.argv.length !== 4) {
  process.stderr.write('usage: node demo.mjs <server base URL> <screenshot path>\n');
  process.exit(2);
}
const base = process.argv[2].replace(/\/$/, '');
const screenshotPath = path.resolve(process.argv[3]);
const serverPort = Number(new URL(base).port);

// ---- the control channel to the Rust test
const answers = [];
const waiting = [];
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const w = waiting.shift();
  if (w) w(line);
  else answers.push(line);
});
async function ask(command, timeoutMs = 20_000) {
  process.stdout.write(`@@${command}\n`);
  const line = answers.length ? answers.shift() : await Promise.race([
    new Promise((resolve) => waiting.push(resolve)),
    sleep(timeoutMs).then(() => { throw new Failure(`no answer to @@${command} within ${timeoutMs} ms`); }),
  ]);
  check(line.startsWith('ok'), `@@${command} failed: ${line}`);
  log(`@@${command}: ${line}`);
  return line;
}

// ---- a TCP proxy whose "network" can be cut
function startProxy(targetPort) {
  const pairs = new Set();
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject).listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      block() {
        blocked = true;
        for (const { client, upstream } of pairs) {
          client.resetAndDestroy();
          upstream.destroy();
        }
        pairs.clear();
      },
      unblock() {
        blocked = false;
      },
      close() {
        this.block();
        server.close();
      },
    }));
  });
}

// ---- the HTTP API
async function notify(user, event, text) {
  const res = await fetch(`${base}/api/notify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, event, data: { text } }),
    signal: AbortSignal.timeout(5000),
  });
  const body = await res.text();
  check(res.ok, `POST /api/notify answered ${res.status}: ${body}`);
  const json = JSON.parse(body);
  check(typeof json.id === 'string' && typeof json.sessions === 'number', `unexpected /api/notify answer ${body}`);
  log(`notified ${user} (${event}): id ${json.id}, live sessions ${json.sessions}`);
  return json;
}

// ---- page helpers
const pages = {};

async function openPage(browser, name, origin) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 820 } });
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => {
    consoleLines.push(`[${m.type()}] ${m.text()}`);
    if (consoleLines.length > 60) consoleLines.shift();
  });
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  const p = { name, page, context, consoleLines };
  pages[name] = p;
  await page.goto(`${origin}/?user=${encodeURIComponent(name)}`, { timeout: STEP_TIMEOUT_MS });
  return p;
}

/** Waits until `fn(arg)` is truthy in the page, or fails with `what`. */
async function until(p, what, fn, arg, timeout = STEP_TIMEOUT_MS) {
  try {
    return await p.page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (e) {
    throw new Failure(`${p.name}: ${what} (not within ${timeout} ms)`);
  }
}

const stateIs = (p, state, timeout) => until(p, `connection state should be "${state}"`,
  (s) => document.getElementById('status').dataset.state === s, state, timeout);

/** Chat entries of the log: [{kind, from, text, id}]. */
function entries(p) {
  return p.page.$$eval('#log li', (lis) => lis.map((li) => ({
    kind: li.dataset.kind, from: li.dataset.from ?? null, id: li.dataset.id ?? null,
    text: li.querySelector('.text')?.textContent ?? '',
  })));
}

function seesMessage(p, from, text, timeout) {
  return until(p, `should show "${text}" from ${from}`, ([f, t]) => [...document.querySelectorAll('#log li[data-kind="message"], #log li[data-kind="direct"]')]
    .some((li) => li.dataset.from === f && li.querySelector('.text')?.textContent === t), [from, text], timeout);
}

async function say(p, text) {
  await p.page.fill('#message', text);
  await p.page.press('#message', 'Enter');
  await until(p, `own message "${text}" should be confirmed with an id`, (t) => [...document.querySelectorAll('#log li[data-kind="own"]')]
    .some((li) => li.querySelector('.text')?.textContent === t && li.dataset.id), text);
}

const membersInclude = (p, user, timeout) => until(p, `should see ${user} present`,
  (u) => !!document.querySelector(`#members li[data-user="${CSS.escape(u)}"]`), user, timeout);

const hasNotification = (p, id, timeout) => until(p, `notification ${id} should be shown`,
  (i) => !!document.querySelector(`#notifications li[data-id="${CSS.escape(i)}"]`), id, timeout);

/** No stored message (chat or notification) is shown twice on the page. */
async function noDuplicates(p) {
  const ids = await p.page.$$eval('#log li[data-id], #notifications li[data-id]',
    (lis) => lis.map((li) => `${li.closest('ul').id} ${li.dataset.id}`));
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  check(dup.length === 0, `${p.name}: shown twice: ${dup.join(', ')}`);
}

async function diagnostics(p) {
  try {
    const d = await p.page.evaluate(() => ({
      status: document.getElementById('status').textContent,
      sse: document.getElementById('sse-status').textContent,
      notice: document.getElementById('notice').hidden ? null : document.getElementById('notice').textContent,
      connLog: [...document.querySelectorAll('#conn-log li')].map((li) => li.textContent).slice(-15),
      log: [...document.querySelectorAll('#log li')].map((li) => `${li.dataset.kind} ${li.dataset.id ?? '-'} ${li.textContent}`).slice(-15),
      notifications: [...document.querySelectorAll('#notifications li')].map((li) => `${li.dataset.id} ${li.textContent}`),
      states: window.demo.states.slice(-20), closes: window.demo.closes, shutdowns: window.demo.shutdowns,
      stats: window.demo.client && window.demo.client.stats,
    }));
    return `--- ${p.name}'s page:\n${JSON.stringify(d, null, 2)}\n--- ${p.name}'s console (last lines):\n${p.consoleLines.slice(-20).join('\n')}`;
  } catch (e) {
    return `--- ${p.name}'s page: cannot read it (${e.message})`;
  }
}

// ---- the client library alone, in the page, against a scripted fake WebSocket and EventSource:
// what the live scenario cannot force (timeouts, the queue bound, close codes, replays).
async function clientUnitChecks() {
  const { RoomcastClient, RoomcastError, formatCursor, parseCursor, subscribe } = await import('/roomcast.js');
  const failures = [];
  const ok = (cond, msg) => { if (!cond) failures.push(msg); };
  const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
  const until = async (fn, ms = 2000) => {
    const end = Date.now() + ms;
    while (!fn()) {
      if (Date.now() > end) return false;
      await tick(5);
    }
    return true;
  };
  class FakeWS {
    static all = [];
    static get last() { return FakeWS.all[FakeWS.all.length - 1]; }
    constructor(url, protocol) {
      this.url = url;
      this.protocol = protocol;
      this.readyState = 1;
      this.sent = [];
      FakeWS.all.push(this);
    }
    send(text) { this.sent.push(JSON.parse(text)); }
    close(code) { this.readyState = 3; this.closedWith = code; }
    recv(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
    serverClose(code, reason = '') { this.readyState = 3; this.onclose?.({ code, reason, wasClean: true }); }
  }
  // Every await is bounded: a broken client must fail here, not hang.
  const settle = (promise, what, ms = 1500) => Promise.race([promise, tick(ms).then(() => {
    throw new RoomcastError('hung', `${what}: not settled within ${ms} ms`);
  })]);
  const value = async (promise, what) => {
    try {
      return await settle(promise, what);
    } catch (e) {
      ok(false, `${what}: ${e.code ?? ''} ${e.message}`);
      return {};
    }
  };
  const welcome = (extra = {}) => ({ type: 'welcome', protocol: 1, session: 's1', user: 'zoë', ping_interval_ms: 25000, ping_timeout_ms: 10000, max_frame: 200, ...extra });
  const rejects = async (promise, code, what) => {
    try {
      await settle(promise, what);
      ok(false, `${what}: should be rejected with ${code}`);
    } catch (e) {
      ok(e instanceof RoomcastError && e.code === code, `${what}: rejected with ${e.code} (${e.message}), not ${code}`);
    }
  };

  ok(formatCursor([['user', 'a.1'], ['room:b', 'x.1'], ['all', 'c.2'], ['room:a', 'y.3']]) === 'room:a=y.3,room:b=x.1,user=a.1,all=c.2', 'formatCursor order');
  ok(parseCursor('room:a=y.3,user=a.1').get('room:a') === 'y.3', 'parseCursor');

  const c = new RoomcastClient({ url: 'ws://fake.invalid/ws', user: 'zoë', WebSocket: FakeWS, backoffInitialMs: 20, backoffMaxMs: 200, requestTimeoutMs: 300, queueLimit: 2, watchOnline: false });
  const events = { message: [], state: [], resync: [], close: [], notify: [], receipt: [] };
  for (const t of Object.keys(events)) c.on(t, (d) => events[t].push(d));
  await rejects(c.publish('lobby', 1), 'not_connected', 'publish before connect()');
  c.connect();
  let ws = FakeWS.last;
  ok(ws.protocol === 'roomcast.v1', 'offers the subprotocol roomcast.v1');
  let url = new URL(ws.url);
  ok(url.searchParams.get('user') === 'zoë' && !url.searchParams.has('cursor'), `first URL: ${ws.url}`);
  ws.recv(welcome());
  ok(c.state === 'open', 'open after welcome');
  ws.recv({ type: 'streams', streams: [{ stream: 'user', id: 'a.0', replayed: 1 }, { stream: 'all', id: 'b.0', replayed: 0 }] });
  ws.recv({ type: 'notify', id: 'a.1', event: 'e', data: 1 });
  const joined = c.join('lobby');
  const j = ws.sent.at(-1);
  ok(j.type === 'join' && j.room === 'lobby' && !('since' in j) && typeof j.ref === 'number', `first join: ${JSON.stringify(j)}`);
  ws.recv({ type: 'reply', ref: j.ref, room: 'lobby', members: ['zoë', 'x'], id: 'e.0' });
  ok((await value(joined, 'join')).members?.length === 2 && c.members('lobby').join() === 'x,zoë', 'join resolves with the members');
  ws.recv({ type: 'presence', room: 'lobby', joins: ['y'], leaves: ['x'] });
  ok(c.members('lobby').join() === 'y,zoë', `presence diffs apply: ${c.members('lobby')}`);
  ws.recv({ type: 'message', room: 'lobby', id: 'e.1', from: 'x', data: 1 });
  ws.recv({ type: 'message', room: 'lobby', id: 'e.2', from: 'x', data: 2 });
  ws.recv({ type: 'message', room: 'lobby', id: 'e.2', from: 'x', data: 2 });
  ok(events.message.map((m) => m.id).join() === 'e.1,e.2', 'a repeated id is not delivered again');
  const pub = c.publish('lobby', { t: 'mine' });
  const pf = ws.sent.at(-1);
  ok(pf.type === 'publish' && pf.room === 'lobby' && pf.data.t === 'mine', `publish frame ${JSON.stringify(pf)}`);
  ws.recv({ type: 'reply', ref: pf.ref, room: 'lobby', id: 'e.3' });
  ok((await value(pub, 'publish')).id === 'e.3', 'publish resolves with its id');
  const bad = c.publish('nope', 1);
  ws.recv({ type: 'error', ref: ws.sent.at(-1).ref, code: 'not_member', message: 'join first' });
  await rejects(bad, 'not_member', 'an error reply');
  await rejects(c.publish('lobby', 'x'.repeat(300)), 'too_large', 'a frame over welcome.max_frame');
  const t0 = Date.now();
  await rejects(c.ping(), 'timeout', 'a request without an answer');
  ok(Date.now() - t0 >= 280, 'the timeout waits requestTimeoutMs');
  const dm = c.direct('bob', 'hey');
  const df = ws.sent.at(-1);
  ok(df.type === 'direct' && df.to === 'bob' && df.data === 'hey', `direct frame ${JSON.stringify(df)}`);
  ws.recv({ type: 'reply', ref: df.ref, id: 'q.1', delivered: false });
  const receipt = await value(dm, 'direct');
  ok(receipt.id === 'q.1' && receipt.delivered === false, `direct resolves with the receipt ${JSON.stringify(receipt)}`);
  // Bob reads it: a read receipt arrives in the user stream, once, and moves its position.
  ws.recv({ type: 'receipt', id: 'a.2', from: 'bob', upto: 'q.1' });
  ws.recv({ type: 'receipt', id: 'a.2', from: 'bob', upto: 'q.1' });
  ok(events.receipt.length === 1 && events.receipt[0].upto === 'q.1', `a receipt, once: ${JSON.stringify(events.receipt)}`);
  const rd = c.read('a.2');
  const rf = ws.sent.at(-1);
  ok(rf.type === 'read' && rf.upto === 'a.2', `read frame ${JSON.stringify(rf)}`);
  ws.recv({ type: 'reply', ref: rf.ref, id: 'a.2', unread: 0 });
  const marked = await value(rd, 'read');
  ok(marked.id === 'a.2' && marked.unread === 0, `read resolves with the mark and unread ${JSON.stringify(marked)}`);

  // A drop (4000): the request in flight fails, sends queue (bounded), the client comes back at
  // once with its cursor, re-joins with since, then sends the queue.
  const inflight = c.publish('lobby', 'lost?');
  ws.serverClose(4000, 'slow consumer');
  await rejects(inflight, 'disconnected', 'a request in flight when the connection drops');
  let st = events.state.at(-1);
  ok(st.state === 'reconnecting' && st.delayMs <= 20, `4000 reconnects promptly: ${JSON.stringify(st)}`);
  ok(await value(c.typing('lobby'), 'typing while offline') === false, 'typing is not queued');
  const q1 = c.publish('lobby', 'q1');
  const q2 = c.publish('lobby', 'q2');
  await rejects(c.publish('lobby', 'q3'), 'queue_full', 'a send beyond the queue bound');
  ok(await until(() => FakeWS.last !== ws), 'a new attempt after 4000');
  ws = FakeWS.last;
  url = new URL(ws.url);
  ok(url.searchParams.get('cursor') === 'user=a.2,all=b.0', `the reconnect presents the cursor: ${ws.url}`);
  ws.recv(welcome());
  ws.recv({ type: 'streams', streams: [{ stream: 'user', id: 'a.2', recovered: true, replayed: 0 }, { stream: 'all', id: 'b.0', recovered: true, replayed: 0 }] });
  const rj = ws.sent[0];
  ok(rj && rj.type === 'join' && rj.room === 'lobby' && rj.since === 'e.2', `re-join with since = the last message seen: ${JSON.stringify(rj)}`);
  ok(ws.sent[1]?.data === 'q1' && ws.sent[2]?.data === 'q2', `the queue follows the re-join, in order: ${JSON.stringify(ws.sent)}`);
  ws.recv({ type: 'reply', ref: rj.ref, room: 'lobby', members: ['zoë'], id: 'e.2', recovered: true, replayed: 2 });
  ws.recv({ type: 'message', room: 'lobby', id: 'e.3', from: 'zoë', data: { t: 'mine' } });
  ws.recv({ type: 'message', room: 'lobby', id: 'e.4', from: 'x', data: 4 });
  ok(events.message.map((m) => m.id).join() === 'e.1,e.2,e.4', `the replay delivers only what is new (not the own e.3): ${events.message.map((m) => m.id)}`);
  ws.recv({ type: 'reply', ref: ws.sent[1].ref, room: 'lobby', id: 'e.5' });
  ws.recv({ type: 'reply', ref: ws.sent[2].ref, room: 'lobby', id: 'e.6' });
  ok((await value(q1, 'queued q1')).id === 'e.5' && (await value(q2, 'queued q2')).id === 'e.6', 'queued publishes resolve');
  ok(events.resync.length === 0, 'nothing to resync after an exact resume');

  // Shutdown: wait reconnect_ms; the new server has new epochs: resync, then a fresh start.
  ws.recv({ type: 'shutdown', reason: 'restart', reconnect_ms: 150 });
  ws.serverClose(1001, 'going away');
  st = events.state.at(-1);
  ok(st.state === 'reconnecting' && st.delayMs >= 140, `1001 after shutdown waits reconnect_ms: ${JSON.stringify(st)}`);
  ok(await until(() => FakeWS.last !== ws), 'a new attempt after 1001');
  ws = FakeWS.last;
  ws.recv(welcome());
  ws.recv({ type: 'streams', streams: [{ stream: 'user', id: 'c.0', recovered: false, replayed: 1 }, { stream: 'all', id: 'd.0', recovered: false, replayed: 0 }] });
  ws.recv({ type: 'notify', id: 'c.1', event: 'e', data: 2 });
  ws.recv({ type: 'reply', ref: ws.sent[0].ref, room: 'lobby', members: ['zoë'], id: 'f.0', recovered: false, replayed: 0 });
  ws.recv({ type: 'message', room: 'lobby', id: 'f.1', from: 'x', data: 'new epoch' });
  ok(events.resync.map((r) => r.stream).sort().join() === 'all,room:lobby,user', `resync for each stream not recovered: ${JSON.stringify(events.resync)}`);
  ok(events.message.at(-1).id === 'f.1' && events.notify.map((n) => n.id).join() === 'a.1,c.1', 'a new epoch starts afresh');

  // 4003 backs off (at least half the cap); close() by the app never reconnects.
  ws.serverClose(4003, 'expired');
  st = events.state.at(-1);
  ok(st.state === 'reconnecting' && st.delayMs >= 100, `4003 does not reconnect at once: ${JSON.stringify(st)}`);
  const pending = c.publish('lobby', 'never');
  c.close();
  await rejects(pending, 'closed', 'a queued send when the app closes');
  ok(c.state === 'closed', 'closed by the app');
  const n = FakeWS.all.length;
  await tick(300);
  ok(FakeWS.all.length === n, 'no reconnect after close()');

  // Backoff: full jitter under a bound that doubles up to the cap.
  class Refused extends FakeWS {
    constructor(...a) { super(...a); setTimeout(() => this.serverClose(1006), 0); }
  }
  const b = new RoomcastClient({ url: 'ws://fake.invalid/ws', user: 'b', WebSocket: Refused, backoffInitialMs: 10, backoffMaxMs: 80, watchOnline: false });
  const delays = [];
  b.on('state', (d) => { if (d.delayMs != null) delays.push([d.attempt, d.delayMs]); });
  b.connect();
  ok(await until(() => delays.length >= 6), `six attempts: ${JSON.stringify(delays)}`);
  b.close();
  for (const [attempt, delay] of delays) {
    ok(delay >= 0 && delay <= Math.min(80, 10 * 2 ** (attempt - 1)), `attempt ${attempt} waited ${delay} ms, over its bound`);
  }

  // The client's heartbeat: silence after its ping means a dead connection (closed as 4001).
  const h = new RoomcastClient({ url: 'ws://fake.invalid/ws', user: 'h', WebSocket: FakeWS, heartbeatMs: 40, heartbeatTimeoutMs: 40, watchOnline: false });
  const hc = [];
  h.on('close', (d) => hc.push(d.code));
  h.connect();
  const hw = FakeWS.last;
  hw.recv(welcome());
  ok(await until(() => hc.length > 0, 1000), 'a silent connection is dropped');
  ok(hw.sent.some((f) => f.type === 'ping') && hc[0] === 4001, `ping, then 4001: ${JSON.stringify(hw.sent)} ${hc}`);
  h.close();

  // subscribe(): repeats dropped; a stream the browser gave up on restarts with ?lastEventId=.
  class FakeES extends EventTarget {
    static all = [];
    constructor(url) { super(); this.url = url; this.readyState = 0; FakeES.all.push(this); }
    close() { this.readyState = 2; }
    emit(type, frame, id) { this.dispatchEvent(new MessageEvent(type, { data: JSON.stringify(frame), lastEventId: id })); }
    fail() { this.readyState = 2; this.dispatchEvent(new Event('error')); }
  }
  const got = [];
  const states = [];
  const stop = subscribe('/events?user=zoë', { notify: (f) => got.push(f.id), state: (s) => states.push(s) }, { EventSource: FakeES, backoffInitialMs: 10, watchOnline: false });
  const es = FakeES.all[0];
  es.emit('open', welcome(), '');
  es.emit('streams', { type: 'streams', streams: [{ stream: 'user', id: 'u.0', replayed: 1 }] }, 'user=u.0');
  es.emit('notify', { type: 'notify', id: 'u.1', data: 1 }, 'user=u.1');
  es.emit('notify', { type: 'notify', id: 'u.1', data: 1 }, 'user=u.1');
  ok(got.join() === 'u.1' && states.includes('open'), `SSE: a repeat is dropped: ${got} ${states}`);
  es.fail();
  ok(await until(() => FakeES.all.length === 2), 'SSE: restarted after the EventSource gave up');
  ok(new URL(FakeES.all[1].url, location.href).searchParams.get('lastEventId') === 'user=u.1', `SSE: resumes with lastEventId: ${FakeES.all[1].url}`);
  stop();
  ok(states.at(-1) === 'closed', 'SSE: closed');
  return failures;
}

// ---- the scenario
async function scenario(browser, proxy) {
  const proxyOrigin = `http://127.0.0.1:${proxy.port}`;

  log('0. the client library against a scripted fake WebSocket and EventSource');
  const alice = await openPage(browser, 'alice', base);
  const failures = await Promise.race([alice.page.evaluate(clientUnitChecks),
    sleep(15_000).then(() => { throw new Failure('the client library checks did not finish within 15 s'); })]);
  check(failures.length === 0, `the client library failed ${failures.length} check(s):\n  ${failures.join('\n  ')}`);

  log('1. alice and bob open the page and join lobby');
  const bob = await openPage(browser, 'bob', proxyOrigin);
  for (const p of [alice, bob]) {
    const prefilled = await p.page.inputValue('#name');
    check(prefilled === p.name, `${p.name}: the name field should be prefilled from ?user=, got "${prefilled}"`);
    await p.page.fill('#room', 'lobby');
    await p.page.click('#join');
    await stateIs(p, 'open');
  }
  await until(alice, 'the notifications stream should be open', () => document.getElementById('sse-status').dataset.state === 'open');
  await until(bob, 'the notifications stream should be open', () => document.getElementById('sse-status').dataset.state === 'open');
  await membersInclude(alice, 'bob');
  await membersInclude(bob, 'alice');
  await membersInclude(alice, 'alice');

  log('2. bob types, alice sees it');
  await bob.page.click('#message');
  await bob.page.keyboard.type('hel', { delay: 30 });
  await until(alice, 'should see "bob is typing"', () => (document.getElementById('typing').dataset.users || '').split(',').includes('bob')
    && /bob is typing/.test(document.getElementById('typing').textContent));

  log('3. they chat both ways');
  await bob.page.fill('#message', '');
  await say(bob, 'hello alice');
  await seesMessage(alice, 'bob', 'hello alice');
  await until(alice, 'the typing indicator should clear once bob sent', () => !document.getElementById('typing').textContent);
  await say(alice, 'hi bob');
  await seesMessage(bob, 'alice', 'hi bob');

  log('4. alice sends bob a direct message and gets the delivered receipt');
  await alice.page.fill('#dm-to', 'bob');
  await alice.page.fill('#dm-text', 'psst, bob');
  await alice.page.click('#dm-send');
  await until(alice, 'the direct message should get a "delivered" receipt',
    () => document.querySelector('#receipts li[data-to="bob"][data-state="done"][data-delivered="true"]'));
  await seesMessage(bob, 'alice', 'psst, bob');

  log('5. POST /api/notify reaches bob\'s notifications panel');
  const n1 = await notify('bob', 'invoice', 'invoice #1 paid');
  check(n1.sessions >= 1, `bob is online, yet /api/notify reached ${n1.sessions} sessions`);
  await hasNotification(bob, n1.id);
  // Bob follows his outbox on both connections: the SSE helper must have delivered it too.
  await until(bob, `notification ${n1.id} should also arrive over SSE (shown once)`,
    (i) => (document.querySelector(`#notifications li[data-id="${CSS.escape(i)}"]`)?.dataset.sources ?? '').split(',').sort().join() === 'sse,ws', n1.id, 5000);

  log('6. network drop: bob is cut off while alice publishes 3 messages and bob gets a notification');
  proxy.block();
  await stateIs(bob, 'reconnecting', 5000);
  for (const text of ['drop-1', 'drop-2', 'drop-3']) await say(alice, text);
  const n2 = await notify('bob', 'reminder', 'sent while you were cut off');
  await sleep(1000); // let bob's reconnect attempts fail at least once
  const failedAttempts = await bob.page.evaluate(() => window.demo.closes.length);
  log(`bob's connection closed ${failedAttempts} time(s) so far; restoring his network`);
  proxy.unblock();
  await stateIs(bob, 'open', 15_000);
  await seesMessage(bob, 'alice', 'drop-3', 10_000);
  await hasNotification(bob, n2.id);
  // The SSE stream comes back too (EventSource retries every 3 s): it must not show anything twice.
  await until(bob, 'the notifications stream should reconnect', () => document.getElementById('sse-status').dataset.state === 'open', null, 10_000);
  await sleep(500);
  const rejoin = await bob.page.evaluate(() => window.demo.joins.filter((j) => j.rejoin).at(-1));
  check(rejoin && rejoin.recovered === true && rejoin.replayed === 3,
    `bob should have re-joined lobby with since and got the 3 missed messages replayed, got ${JSON.stringify(rejoin)}`);
  const drops = (await entries(bob)).filter((e) => /^drop-\d$/.test(e.text));
  check(JSON.stringify(drops.map((e) => e.text)) === JSON.stringify(['drop-1', 'drop-2', 'drop-3']),
    `bob should show drop-1, drop-2, drop-3 once each and in order, got ${JSON.stringify(drops)}`);
  check(drops.every((e) => e.kind === 'message' && e.from === 'alice'), `the drop messages should be alice's: ${JSON.stringify(drops)}`);
  const n2count = await bob.page.$$eval(`#notifications li[data-id="${n2.id}"]`, (l) => l.length);
  check(n2count === 1, `the notification sent during the drop is shown ${n2count} times, not once`);
  await noDuplicates(bob);
  await say(bob, 'back again');
  await seesMessage(alice, 'bob', 'back again');

  log('7. server restart: SIGTERM, both pages get the shutdown notice and reconnect by themselves');
  await ask('sigterm');
  for (const p of [alice, bob]) {
    await until(p, 'should show the shutdown notice', () => window.demo.shutdowns >= 1 && !document.getElementById('notice').hidden, null, 5000);
  }
  for (const p of [alice, bob]) {
    await until(p, 'should see the close 1001 and be reconnecting', () => window.demo.closes.includes(1001)
      && document.getElementById('status').dataset.state === 'reconnecting', null, 10_000);
  }
  await ask('wait-exit');
  log('bob goes offline while the server is down');
  await bob.context.setOffline(true);
  await until(bob, 'should show that it waits for the network', () => /offline/.test(document.getElementById('status').textContent));
  await ask('start');
  await stateIs(alice, 'open', 15_000);
  await membersInclude(alice, 'alice');
  // The server stores its streams: lobby's history survives the restart, and alice's page
  // resumes it exactly rather than being told it was lost.
  const aliceResyncs = await alice.page.evaluate(() => window.demo.resyncs);
  check(!aliceResyncs.includes('room:lobby'), `lobby's history is stored, yet alice was told it was not recovered: ${JSON.stringify(aliceResyncs)}`);
  await until(alice, 'should re-join lobby with since after the restart', () => window.demo.joins.filter((j) => j.rejoin).length > 0, null, 10_000);
  const aliceRejoin = await alice.page.evaluate(() => window.demo.joins.filter((j) => j.rejoin).at(-1));
  check(aliceRejoin && aliceRejoin.recovered === true,
    `alice should have re-joined lobby with since and resumed it after the restart, got ${JSON.stringify(aliceRejoin)}`);
  const n3 = await notify('bob', 'outbox', 'kept for you while you were offline');
  check(n3.sessions === 0, `bob is offline, yet /api/notify reached ${n3.sessions} sessions`);
  log('bob comes back online');
  await bob.context.setOffline(false);
  await stateIs(bob, 'open', 15_000);
  await hasNotification(bob, n3.id, 10_000);
  await until(bob, 'the notifications stream should reconnect', () => document.getElementById('sse-status').dataset.state === 'open', null, 10_000);
  await membersInclude(alice, 'bob');
  await membersInclude(bob, 'alice');
  await say(alice, 'are you there after the restart?');
  await seesMessage(bob, 'alice', 'are you there after the restart?');
  await say(bob, 'yes, back after the restart');
  await seesMessage(alice, 'bob', 'yes, back after the restart');
  await sleep(300);
  const n3count = await bob.page.$$eval(`#notifications li[data-id="${n3.id}"]`, (l) => l.length);
  check(n3count === 1, `the notification kept in the outbox is shown ${n3count} times, not once`);
  const n3sources = await bob.page.$eval(`#notifications li[data-id="${n3.id}"]`, (li) => li.dataset.sources);
  log(`the outbox notification reached bob via ${n3sources} (each connection without a cursor gets the unread outbox; the page shows it once)`);
  for (const p of [alice, bob]) await noDuplicates(p);

  fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
  await bob.page.screenshot({ path: screenshotPath, fullPage: true });
  log(`screenshot of bob's page: ${screenshotPath}`);
  for (const p of [alice, bob]) {
    const d = await p.page.evaluate(() => ({ closes: window.demo.closes, stats: window.demo.client.stats }));
    log(`${p.name}: closes ${JSON.stringify(d.closes)}, ${JSON.stringify(d.stats)}`);
  }
}

async function main() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    process.stderr.write(`demo: Chromium not found at ${executablePath}\n`);
    process.exit(3);
  }
  const proxy = await startProxy(serverPort);
  let browser;
  try {
    browser = await chromium.launch({
      executablePath,
      timeout: 30_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    process.stderr.write(`demo: cannot start Chromium: ${e.message}\n`);
    process.exit(3);
  }
  log(`Chromium ${browser.version()}, server ${base}, bob through the proxy on port ${proxy.port}`);
  let code = 0;
  try {
    await scenario(browser, proxy);
    process.stdout.write('@@done\n');
    log('PASS');
  } catch (e) {
    code = 1;
    process.stderr.write(`\ndemo: FAIL: ${e instanceof Failure ? e.message : e.stack}\n\n`);
    for (const p of Object.values(pages)) {
      process.stderr.write(`${await diagnostics(p)}\n`);
      const shot = screenshotPath.replace(/\.png$/, `-failure-${p.name}.png`);
      await p.page.screenshot({ path: shot, fullPage: true }).then(() => process.stderr.write(`(failure screenshot: ${shot})\n`), () => {});
    }
  } finally {
    await browser.close().catch(() => {});
    proxy.close();
  }
  process.exit(code);
}

setTimeout(() => {
  process.stderr.write(`demo: FAIL: the scenario did not finish within ${TOTAL_TIMEOUT_MS} ms\n`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS).unref();
main().catch((e) => {
  process.stderr.write(`demo: infrastructure failure: ${e && e.stack ? e.stack : e}\n`);
  process.exit(3);
});
