// The clients of a Spring STOMP application, ported to roomcast as a Spring user would
// (examples/stomp/chat.js and notifications.js), run in headless Chromium: a chat between two
// users (JOIN, TYPING, CHAT, PRIVATE, LEAVE), bob over SockJS's xhr-streaming, and a
// notification centre that gets what was sent while it was away, marks one read, and after a
// reconnect gets only what is still unread.
//
// Usage: node tests/browser/stomp_apps.mjs http://127.0.0.1:PORT API_KEY
//
// Run by servers/roomcast/tests/stomp.rs, which owns the server. Prints one JSON line: the steps
// that passed, in order, or `FAIL step: why` at the first that did not. Exit codes: 0 ran,
// 2 bad usage, 3 the browser could not run.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

if (process.argv.length !== 4) {
  process.stderr.write('usage: node stomp_apps.mjs http://127.0.0.1:PORT API_KEY\n');
  process.exit(2);
}
const base = process.argv[2].replace(/\/$/, '');
const key = process.argv[3];
const here = path.dirname(fileURLToPath(import.meta.url));
const examples = path.join(here, '../../examples/stomp');

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
} catch (error) {
  process.stderr.write(`stomp_apps: could not launch Chromium: ${error}\n`);
  process.exit(3);
}

const steps = [];
const expect = (ok, what) => { if (!ok) throw new Error(what); };
async function step(name, body) {
  try {
    await body();
    steps.push(name);
  } catch (error) {
    steps.push(`FAIL ${name}: ${error.message}`);
    throw error;
  }
}

// A page with the libraries and the ported clients, as the application's page loads them.
async function page() {
  const tab = await (await browser.newContext()).newPage();
  await tab.goto(`${base}/healthz`);
  for (const script of [
    path.join(here, 'node_modules/sockjs-client/dist/sockjs.min.js'),
    path.join(here, 'node_modules/@stomp/stompjs/bundles/stomp.umd.min.js'),
    path.join(examples, 'chat.js'),
    path.join(examples, 'notifications.js'),
  ]) {
    await tab.addScriptTag({ path: script });
  }
  return tab;
}

// Waits (5 s at most) in `tab` until `window.events` holds an event matching `wanted`.
function seen(tab, wanted) {
  return tab.evaluate((wanted) => new Promise((resolve, reject) => {
    const match = (e) => Object.entries(wanted).every(([k, v]) => e[k] === v);
    const started = Date.now();
    const check = () => {
      if (window.events.some(match)) resolve();
      else if (Date.now() - started > 5000) reject(new Error(`no ${JSON.stringify(wanted)} in ${JSON.stringify(window.events)}`));
      else setTimeout(check, 20);
    };
    check();
  }), wanted);
}

async function notify(user, data) {
  const response = await fetch(`${base}/api/notify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user, event: 'invoice', data }),
  });
  if (response.status !== 200) throw new Error(`notify: ${response.status}`);
  return (await response.json()).id;
}

try {
  const alice = await page();
  const bob = await page();
  const join = (tab, username, transports) => tab.evaluate(async ([base, username, transports]) => {
    window.events = [];
    window.chat = new ChatClient({
      url: `${base}/stomp?user=${username}`, room: 'public', username, transports,
      onEvent: (event) => window.events.push(event),
    });
    await window.chat.connect();
  }, [base, username, transports]);

  await step('join', async () => {
    await join(alice, 'alice', ['websocket']);
    await join(bob, 'bob', ['xhr-streaming']);
    await seen(alice, { type: 'JOIN', sender: 'bob' });
  });
  await step('typing', async () => {
    await bob.evaluate(() => window.chat.typing());
    await seen(alice, { type: 'TYPING', sender: 'bob' });
  });
  await step('chat', async () => {
    await alice.evaluate(() => window.chat.send('hello'));
    await seen(bob, { type: 'CHAT', sender: 'alice', content: 'hello' });
    await seen(alice, { type: 'CHAT', sender: 'alice', content: 'hello' });
  });
  await step('private', async () => {
    await alice.evaluate(() => window.chat.sendPrivate('bob', 'psst'));
    await seen(bob, { type: 'PRIVATE', sender: 'alice', content: 'psst' });
    const leaked = await alice.evaluate(() => window.events.some((e) => e.type === 'PRIVATE'));
    expect(!leaked, 'a private message reaches its addressee only');
  });
  await step('leave', async () => {
    await bob.evaluate(() => window.chat.disconnect());
    await seen(alice, { type: 'LEAVE', sender: 'bob' });
  });

  const carol = await page();
  const connect = () => carol.evaluate(async (base) => {
    window.events = [];
    window.centre = new NotificationClient({
      url: `${base}/stomp?user=carol`,
      onNotification: (n) => window.events.push(n),
    });
    await window.centre.connect();
  }, base);
  const ids = [];
  await step('notifications sent while away arrive', async () => {
    ids.push(await notify('carol', { n: 1 }), await notify('carol', { n: 2 }));
    await connect();
    await seen(carol, { id: ids[0], event: 'invoice' });
    await seen(carol, { id: ids[1] });
  });
  await step('marked read, then only the unread after a reconnect', async () => {
    await carol.evaluate(async (id) => {
      const first = window.events.find((n) => n.id === id);
      await window.centre.markRead(first);
      await window.centre.disconnect();
    }, ids[0]);
    await connect();
    await seen(carol, { id: ids[1] });
    const again = await carol.evaluate((id) => window.events.some((n) => n.id === id), ids[0]);
    expect(!again, 'the notification marked read is not delivered again');
  });
  await step('a live notification', async () => {
    const id = await notify('carol', { n: 3 });
    await seen(carol, { id });
  });
} catch (_) {
  // The failing step is recorded.
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(steps)}\n`);
