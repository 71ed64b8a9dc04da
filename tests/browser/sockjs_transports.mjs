// sockjs-client 1.6 carrying @stomp/stompjs 7 in headless Chromium against roomcast's SockJS
// endpoint (/stomp/...), its WebSocket transport forced: what a Spring page written with
// `new SockJS('/ws')` and `Stomp.over` does. Two users subscribe to a room and to their own
// queue, one sends with a receipt, the other gets the message; a direct message arrives.
//
// Usage: node tests/browser/sockjs_stomp.mjs http://127.0.0.1:PORT
//
// Run by servers/roomcast/tests/stomp.rs, which owns the server. Prints one JSON line: the steps
// that passed, in order, or `FAIL step: why` at the first that did not, and the SockJS
// transport used. Exit codes: 0 ran, 2 bad usage, 3 the browser could not run.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

if (process.argv.length !== 3) {
  process.stderr.write('usage: node sockjs_stomp.mjs http://127.0.0.1:PORT\n');
  process.exit(2);
}
const base = process.argv[2].replace(/\/$/, '');
const here = path.dirname(fileURLToPath(import.meta.url));

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
} catch (error) {
  process.stderr.write(`sockjs_stomp: could not launch Chromium: ${error}\n`);
  process.exit(3);
}
try {
  const page = await browser.newPage();
  await page.goto(`${base}/healthz`);
  await page.addScriptTag({ path: path.join(here, 'node_modules/sockjs-client/dist/sockjs.min.js') });
  await page.addScriptTag({ path: path.join(here, 'node_modules/@stomp/stompjs/bundles/stomp.umd.min.js') });
  const result = await page.evaluate(scenario, base);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}

// Runs in the page.
async function scenario(base) {
  const steps = [];
  const transports = [];
  const within = (what, promise) => Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what} within 5 s`)), 5000)),
  ]);
  const expect = (ok, what) => { if (!ok) throw new Error(what); };
  const connect = (user) => within(`${user}'s CONNECTED`, new Promise((resolve, reject) => {
    const client = new StompJs.Client({
      webSocketFactory: () => {
        const sock = new SockJS(`${base}/stomp?user=${user}`, null, { transports: ['websocket'] });
        sock.addEventListener('open', () => transports.push(sock.transport));
        return sock;
      },
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
    });
    client.onConnect = () => resolve(client);
    client.onStompError = (frame) => reject(new Error(frame.headers.message));
    client.activate();
  }));
  const inbox = (client, destination) => {
    const messages = [];
    const waiters = [];
    client.subscribe(destination, (message) => {
      messages.push(message);
      waiters.splice(0).forEach((w) => w());
    });
    return (what) => within(what, new Promise((resolve) => {
      const check = () => (messages.length ? resolve(messages.shift()) : waiters.push(check));
      check();
    }));
  };
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
    let alice, bob, bobRoom, bobQueue;
    await step('connect over SockJS', async () => {
      alice = await connect('alice');
      bob = await connect('bob');
    });
    await step('subscribe', async () => {
      bobRoom = inbox(bob, '/topic/lobby');
      bobQueue = inbox(bob, '/user/queue/messages');
      const joined = new Promise((resolve) => alice.watchForReceipt('sub', resolve));
      alice.subscribe('/topic/lobby', () => {}, { receipt: 'sub' });
      await within('the SUBSCRIBE receipt', joined);
    });
    await step('send and receive', async () => {
      const stored = new Promise((resolve) => alice.watchForReceipt('send', resolve));
      alice.publish({ destination: '/app/lobby', body: JSON.stringify({ text: 'over sockjs' }), headers: { receipt: 'send' } });
      const receipt = await within('the SEND receipt', stored);
      const message = await bobRoom("bob's message");
      expect(JSON.parse(message.body).text === 'over sockjs', `body ${message.body}`);
      expect(message.headers['message-id'] === receipt.headers['x-roomcast-id'], 'the same id');
    });
    await step('direct', async () => {
      alice.publish({ destination: '/user/bob/queue/messages', body: 'psst' });
      const message = await bobQueue("bob's direct message");
      expect(JSON.parse(message.body) === 'psst', `body ${message.body}`);
    });
    await alice.deactivate();
    await bob.deactivate();
  } catch (_) {
    // The failing step is recorded.
  }
  return { steps, transports };
}
