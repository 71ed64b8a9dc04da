// sockjs-client 1.6 in headless Chromium against roomcast's SockJS endpoints, each SockJS
// transport forced in turn (websocket, xhr-streaming, xhr-polling, eventsource), carrying
// @stomp/stompjs 7 under /stomp (what a Spring page written with `new SockJS('/ws')` and
// `Stomp.over` does) and roomcast.v1 messages under /sockjs.
//
// STOMP: two users subscribe to a room and to their own queue, one sends with a receipt, the
// other gets the message with the receipt's id; a direct message arrives.
// roomcast.v1: two users join a room, one publishes, the other gets the message with the
// reply's id; a ping is answered.
//
// Usage: node tests/browser/sockjs_transports.mjs http://127.0.0.1:PORT [TRANSPORT...]
//
// Run by servers/roomcast/tests/stomp.rs, which owns the server. Prints one JSON line: for each
// transport, the steps that passed in order (or `FAIL step: why` at the first that did not) and
// the SockJS transports the clients used. Exit codes: 0 ran, 2 bad usage, 3 no browser.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

if (process.argv.length < 3) {
  process.stderr.write('usage: node sockjs_transports.mjs http://127.0.0.1:PORT [TRANSPORT...]\n');
  process.exit(2);
}
const base = process.argv[2].replace(/\/$/, '');
const forced = process.argv.length > 3
  ? process.argv.slice(3)
  : ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];
const here = path.dirname(fileURLToPath(import.meta.url));

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
} catch (error) {
  process.stderr.write(`sockjs_transports: could not launch Chromium: ${error}\n`);
  process.exit(3);
}
try {
  const page = await browser.newPage();
  await page.goto(`${base}/healthz`);
  await page.addScriptTag({ path: path.join(here, 'node_modules/sockjs-client/dist/sockjs.min.js') });
  await page.addScriptTag({ path: path.join(here, 'node_modules/@stomp/stompjs/bundles/stomp.umd.min.js') });
  const results = {};
  for (const transport of forced) {
    results[transport] = {
      stomp: await page.evaluate(stomp, [base, transport]),
      v1: await page.evaluate(v1, [base, transport]),
    };
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
} finally {
  await browser.close();
}

// Runs in the page: STOMP over SockJS forced to `transport`.
async function stomp([base, transport]) {
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
        const sock = new SockJS(`${base}/stomp?user=${user}`, null, { transports: [transport] });
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
  // Subscribes with a receipt: bob's SUBSCRIBE travels on his own connection, so without
  // waiting for its RECEIPT alice's SEND may be handled before bob is in the room.
  const inbox = async (client, destination, receipt) => {
    const messages = [];
    const waiters = [];
    const subscribed = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
    client.subscribe(destination, (message) => {
      messages.push(message);
      waiters.splice(0).forEach((w) => w());
    }, { receipt });
    await within(`the receipt of ${destination}`, subscribed);
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
      bobRoom = await inbox(bob, '/topic/lobby', 'bob-room');
      bobQueue = await inbox(bob, '/user/queue/messages', 'bob-queue');
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

// Runs in the page: roomcast.v1 over SockJS forced to `transport`.
async function v1([base, transport]) {
  const steps = [];
  const transports = [];
  const within = (what, promise) => Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what} within 5 s`)), 5000)),
  ]);
  const expect = (ok, what) => { if (!ok) throw new Error(what); };
  // A client: its messages in order, and a way to wait for the next of a type.
  const connect = (user) => within(`${user}'s welcome`, new Promise((resolve, reject) => {
    const sock = new SockJS(`${base}/sockjs?user=${user}`, null, { transports: [transport] });
    const messages = [];
    const waiters = [];
    const next = (type) => within(`${user}'s ${type}`, new Promise((done) => {
      const check = () => {
        const i = messages.findIndex((m) => m.type === type);
        if (i >= 0) done(messages.splice(i, 1)[0]); else waiters.push(check);
      };
      check();
    }));
    sock.onopen = () => transports.push(sock.transport);
    sock.onmessage = (event) => {
      messages.push(JSON.parse(event.data));
      waiters.splice(0).forEach((w) => w());
    };
    sock.onclose = (event) => reject(new Error(`closed ${event.code} ${event.reason}`));
    const send = (message) => sock.send(JSON.stringify(message));
    next('welcome').then(() => resolve({ sock, next, send }), reject);
  }));
  const step = async (name, body) => {
    try {
      await body();
      steps.push(name);
    } catch (error) {
      steps.push(`FAIL ${name}: ${error.message}`);
      throw error;
    }
  };
  let alice, bob;
  try {
    await step('welcome', async () => {
      alice = await connect('alice');
      bob = await connect('bob');
    });
    await step('join', async () => {
      alice.send({ type: 'join', room: 'lobby', ref: 'a1' });
      await alice.next('reply');
      bob.send({ type: 'join', room: 'lobby', ref: 'b1' });
      const reply = await bob.next('reply');
      expect(reply.members.includes('alice') && reply.members.includes('bob'), JSON.stringify(reply));
    });
    await step('publish', async () => {
      alice.send({ type: 'publish', room: 'lobby', ref: 'a2', data: { text: `over ${transport}` } });
      const reply = await alice.next('reply');
      const message = await bob.next('message');
      expect(message.data.text === `over ${transport}`, JSON.stringify(message));
      expect(message.id === reply.id && message.from === 'alice', `ids ${message.id} ${reply.id}`);
    });
    await step('ping', async () => {
      bob.send({ type: 'ping', ref: 'b2' });
      const reply = await bob.next('reply');
      expect(reply.ref === 'b2', JSON.stringify(reply));
    });
  } catch (_) {
    // The failing step is recorded.
  }
  for (const client of [alice, bob]) {
    if (client) {
      client.sock.onclose = null;
      client.sock.close();
    }
  }
  return { steps, transports };
}
