// @stomp/stompjs 7 in Node (with `ws`) against roomcast's /stomp: two users connect, subscribe to a
// room and to their own queue, send with receipts, send a direct message, resume a room after a
// disconnect, and get an ERROR for what roomcast refuses.
//
// Usage: node tests/browser/stomp_node.mjs ws://127.0.0.1:PORT/stomp
//        node tests/browser/stomp_node.mjs ws://127.0.0.1:PORT/stomp passcode TOKEN
//        node tests/browser/stomp_node.mjs ws://127.0.0.1:PORT/stomp heartbeats
//
// With `passcode TOKEN` it runs the credential scenario instead: no credential in the URL, the
// token in CONNECT's `passcode` (as Spring applications send it), then a wrong one refused.
// With `heartbeats` (against a server run with `--ping-interval 1s --ping-timeout 1s`): a client
// that keeps heart-beats up stays connected and receives the server's, and one that goes silent
// (its socket paused: no heart-beat, no pong) is closed with 4001.
//
// Run by servers/roomcast/tests/stomp.rs, which owns the server. Prints one JSON line: the steps
// that passed, in order, or `FAIL step: why` at the first that did not. Exit codes: 0 ran, 2 bad
// usage. Every wait is bounded (5 s a step, 30 s in all).
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const mode = process.argv[3];
if (!(process.argv.length === 3 || (process.argv.length === 5 && mode === 'passcode')
  || (process.argv.length === 4 && mode === 'heartbeats'))) {
  process.stderr.write('usage: node stomp_node.mjs ws://127.0.0.1:PORT/stomp [passcode TOKEN | heartbeats]\n');
  process.exit(2);
}
const base = process.argv[2];
const passcode = process.argv[4];
const steps = [];
setTimeout(() => {
  steps.push('FAIL the whole scenario: not done within 30 s');
  finish();
}, 30_000).unref();

function finish() {
  process.stdout.write(`${JSON.stringify(steps)}\n`);
  process.exit(0);
}

const within = (what, promise) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what} within 5 s`)), 5000)),
]);

/// A connected client of `user`; `errors` collects its ERROR frames.
async function connect(user, extra = {}) {
  const errors = [];
  const client = new Client({
    brokerURL: `${base}?user=${user}`,
    webSocketFactory: () => new WebSocket(`${base}?user=${user}`, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
    reconnectDelay: 0,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
    ...extra,
  });
  client.errors = errors;
  const connected = new Promise((resolve, reject) => {
    client.onConnect = (frame) => resolve(frame);
    client.onStompError = (frame) => { errors.push(frame); reject(new Error(frame.headers.message)); };
    client.onWebSocketError = () => reject(new Error(`${user}: WebSocket error`));
  });
  client.activate();
  client.connectedFrame = await within(`${user}'s CONNECTED`, connected);
  client.onStompError = (frame) => errors.push(frame);
  return client;
}

/// The next `count` messages of a subscription, in order.
function inbox(client, destination, headers = {}) {
  const messages = [];
  const waiters = [];
  const subscription = client.subscribe(destination, (message) => {
    messages.push(message);
    for (const waiter of waiters.splice(0)) waiter();
  }, headers);
  const take = (count, what) => within(what, new Promise((resolve) => {
    const check = () => (messages.length >= count ? resolve(messages.splice(0, count)) : waiters.push(check));
    check();
  }));
  return { subscription, messages, take };
}

async function step(name, body) {
  try {
    await body();
    steps.push(name);
  } catch (error) {
    steps.push(`FAIL ${name}: ${error.message}`);
    throw error;
  }
}

const expect = (ok, what) => { if (!ok) throw new Error(what); };

/// A client with `passcode` in CONNECT and nothing in the URL; resolves with its CONNECTED or
/// its ERROR frame.
function withPasscode(code) {
  return within('an answer to CONNECT', new Promise((resolve) => {
    const client = new Client({
      webSocketFactory: () => new WebSocket(base, ['v12.stomp']),
      connectHeaders: { login: 'ignored', passcode: code },
      reconnectDelay: 0,
    });
    client.onConnect = (frame) => { resolve(frame); client.deactivate(); };
    client.onStompError = (frame) => { resolve(frame); client.deactivate(); };
    client.activate();
  }));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

if (mode === 'heartbeats') {
  try {
    await step('heart-beats kept up', async () => {
      let beats = 0;
      const client = await connect('steady', {
        heartbeatIncoming: 1000,
        heartbeatOutgoing: 1000,
        debug: (line) => { if (line === '<<< PONG') beats += 1; },
      });
      const agreed = client.connectedFrame.headers['heart-beat'];
      expect(agreed === '1000,1000', `heart-beat ${agreed}`);
      await sleep(3500);
      expect(client.connected, 'still connected after 3.5 s');
      expect(beats >= 2, `${beats} heart-beats from the server in 3.5 s`);
      await client.deactivate();
    });
    await step('heart-beats missed', async () => {
      let socket;
      const client = new Client({
        webSocketFactory: () => {
          socket = new WebSocket(`${base}?user=quiet`, ['v12.stomp']);
          return socket;
        },
        reconnectDelay: 0,
        heartbeatIncoming: 0,
        heartbeatOutgoing: 0,
      });
      const connected = new Promise((resolve) => { client.onConnect = resolve; });
      const closed = new Promise((resolve) => { client.onWebSocketClose = resolve; });
      client.activate();
      await within("quiet's CONNECTED", connected);
      // Silent: nothing read, so no pong either, and nothing sent.
      socket._socket.pause();
      await sleep(3000);
      socket._socket.resume();
      const event = await within('the close', closed);
      expect(event.code === 4001, `closed with ${event.code} ${event.reason}`);
    });
  } catch (_) {
    // The failing step is recorded.
  }
  finish();
}

if (passcode) {
  try {
    await step('connect with a passcode', async () => {
      const frame = await withPasscode(passcode);
      expect(frame.command === 'CONNECTED', `${frame.command}: ${frame.body}`);
      expect(frame.headers['user-name'] === 'alice', `user-name ${frame.headers['user-name']}`);
    });
    await step('refused with a wrong passcode', async () => {
      const frame = await withPasscode(`${passcode}x`);
      expect(frame.command === 'ERROR', `${frame.command}`);
      expect(frame.headers.message === 'unauthorized', `message ${frame.headers.message}`);
    });
  } catch (_) {
    // The failing step is recorded.
  }
  finish();
}

try {
  let alice, bob, bobRoom, bobQueue, lastId;
  await step('connect', async () => {
    alice = await connect('alice');
    bob = await connect('bob');
    const headers = alice.connectedFrame.headers;
    expect(headers.version === '1.2', `version ${headers.version}`);
    expect(headers['user-name'] === 'alice', `user-name ${headers['user-name']}`);
    expect(headers['heart-beat'] && headers['heart-beat'] !== '0,0', `heart-beat ${headers['heart-beat']}`);
  });
  await step('subscribe', async () => {
    const subscribed = new Promise((resolve) => alice.watchForReceipt('sub-a', resolve));
    inbox(alice, '/topic/lobby', { receipt: 'sub-a' });
    await within('the SUBSCRIBE receipt', subscribed);
    // Bob's SUBSCRIBEs travel on his own connection: wait for their receipts, or alice's
    // SEND may be handled before bob is in the room.
    const bobIn = ['sub-b', 'sub-bq'].map((id) => new Promise((resolve) => bob.watchForReceipt(id, resolve)));
    bobRoom = inbox(bob, '/topic/lobby', { receipt: 'sub-b' });
    bobQueue = inbox(bob, '/user/queue/notifications', { receipt: 'sub-bq' });
    await within("bob's SUBSCRIBE receipts", Promise.all(bobIn));
  });
  await step('send with a receipt', async () => {
    const stored = new Promise((resolve) => alice.watchForReceipt('send-1', resolve));
    alice.publish({ destination: '/app/lobby', body: JSON.stringify({ text: 'hi' }), headers: { receipt: 'send-1' } });
    const receipt = await within('the SEND receipt', stored);
    lastId = receipt.headers['x-roomcast-id'];
    expect(lastId, `the receipt names the message's id: ${JSON.stringify(receipt.headers)}`);
  });
  await step('message', async () => {
    const [message] = await bobRoom.take(1, "bob's message");
    expect(message.headers.destination === '/topic/lobby', `destination ${message.headers.destination}`);
    expect(message.headers['message-id'] === lastId, `message-id ${message.headers['message-id']} against ${lastId}`);
    expect(message.headers['x-roomcast-from'] === 'alice', 'from alice');
    expect(JSON.parse(message.body).text === 'hi', `body ${message.body}`);
  });
  await step('direct to a user queue', async () => {
    alice.publish({ destination: '/user/bob/queue/messages', body: 'psst' });
    const [message] = await bobQueue.take(1, "bob's direct message");
    expect(JSON.parse(message.body) === 'psst', `body ${message.body}`);
    expect(message.headers['x-roomcast-from'] === 'alice', 'from alice');
  });
  await step('resume after a disconnect', async () => {
    await bob.deactivate();
    for (const n of [1, 2]) {
      const stored = new Promise((resolve) => alice.watchForReceipt(`gap-${n}`, resolve));
      alice.publish({ destination: '/topic/lobby', body: JSON.stringify({ n }), headers: { receipt: `gap-${n}` } });
      await within(`receipt gap-${n}`, stored);
    }
    bob = await connect('bob');
    const again = inbox(bob, '/topic/lobby', { 'x-roomcast-since': lastId });
    const [resume, first, second] = await again.take(3, 'the resume and the two missed messages');
    expect(resume.headers['x-roomcast-recovered'] === 'true', `resume ${JSON.stringify(resume.headers)}`);
    expect(resume.headers['x-roomcast-replayed'] === '2', `replayed ${resume.headers['x-roomcast-replayed']}`);
    expect(JSON.parse(first.body).n === 1 && JSON.parse(second.body).n === 2, `${first.body} ${second.body}`);
  });
  await step('error on what roomcast refuses', async () => {
    const closed = new Promise((resolve) => { alice.onWebSocketClose = resolve; });
    alice.publish({ destination: '/queue/jobs', body: 'x' });
    await within('the connection to close', closed);
    expect(alice.errors.length === 1, `${alice.errors.length} ERROR frames`);
    expect(/competing consumers/.test(alice.errors[0].body), `ERROR says ${alice.errors[0].body}`);
  });
  await step('disconnect', async () => {
    await within('the DISCONNECT', bob.deactivate());
  });
} catch (_) {
  // The failing step is recorded.
}
finish();
