// roomcast.js under Node's test runner, with `ws` as its WebSocket, against a roomcast server
// at $ROOMCAST_URL (http://127.0.0.1:PORT, started by servers/roomcast/tests/js_client.rs with
// --memory and --api-key $ROOMCAST_API_KEY). Every wait is bounded.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import WebSocket from 'ws';

import * as roomcast from '../roomcast.js';
import { RoomcastClient, RoomcastError, parseCursor } from '../roomcast.js';

const BASE = process.env.ROOMCAST_URL;
const KEY = process.env.ROOMCAST_API_KEY;
assert.ok(BASE, 'set ROOMCAST_URL to the server (http://127.0.0.1:PORT)');
const WS_URL = `${BASE.replace(/^http/, 'ws')}/ws`;

/** A connected client of `user`, its welcome in. */
async function client(user, options = {}) {
  const c = new RoomcastClient({ url: WS_URL, user, WebSocket, backoffInitialMs: 50, ...options });
  const open = next(c, 'open');
  c.connect();
  await open;
  return c;
}

/** The next `type` event's payload, within 5 s. */
function next(c, type, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} within 5 s`));
    }, 5000);
    const off = c.on(type, (payload) => {
      if (!accept(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Collects `count` events of `type`, within 5 s. */
async function collect(c, type, count) {
  const got = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got.length} of ${count} ${type} within 5 s`)), 5000);
    const off = c.on(type, (payload) => {
      got.push(payload);
      if (got.length === count) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
  return got;
}

/** Publishes through the server API. */
async function publish(room, data) {
  const response = await fetch(`${BASE}/api/rooms/${room}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ data }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).id;
}

test('join, publish and presence, with the ref promises settled by the replies', async () => {
  const alice = await client('alice');
  const bob = await client('bob');
  try {
    const joined = await alice.join('js-lobby');
    assert.deepEqual(joined.members, ['alice']);
    const present = next(alice, 'members', (m) => m.members.includes('bob'));
    await bob.join('js-lobby');
    assert.deepEqual((await present).members, ['alice', 'bob']);
    assert.equal(alice.memberCount('js-lobby'), 2);

    const arriving = next(bob, 'message');
    const reply = await alice.publish('js-lobby', { text: 'hi' });
    assert.equal(reply.room, 'js-lobby');
    const message = await arriving;
    assert.equal(message.id, reply.id);
    assert.equal(message.from, 'alice');
    assert.deepEqual(message.data, { text: 'hi' });

    // An error answers its own request, as a RoomcastError with the protocol's code.
    await assert.rejects(alice.request({ type: 'dance' }), (e) => e instanceof RoomcastError && e.code === 'unknown_type');
    await assert.rejects(alice.publish('js-nowhere', 1), (e) => e.code === 'not_member');
    await assert.rejects(alice.join('bad room'), (e) => e.code === 'bad_frame');
  } finally {
    alice.close();
    bob.close();
  }
});

test('a dropped connection resumes: what was missed arrives once, in order', async () => {
  const carol = await client('carol');
  try {
    await carol.join('js-resume');
    const first = next(carol, 'message');
    await publish('js-resume', 0);
    await first;
    // The connection drops without a close frame; three messages come while it is down (or
    // while it comes back: either way each arrives once, in order).
    const back = next(carol, 'joined', (j) => j.rejoin);
    const arrived = collect(carol, 'message', 3);
    carol._ws.terminate();
    const missed = [];
    for (let i = 1; i <= 3; i++) missed.push(await publish('js-resume', i));
    const rejoined = await back;
    assert.equal(rejoined.recovered, true);
    const messages = await arrived;
    assert.deepEqual(messages.map((m) => m.id), missed);
    assert.deepEqual(messages.map((m) => m.data), [1, 2, 3]);
    assert.ok(parseCursor(carol.cursor).get('room:js-resume'), carol.cursor);
    // Nothing more: no message twice.
    let extra = 0;
    const off = carol.on('message', () => (extra += 1));
    await new Promise((resolve) => setTimeout(resolve, 300));
    off();
    assert.equal(extra, 0);
    assert.equal(carol.stats.reconnects, 1);
  } finally {
    carol.close();
  }
});

test('direct messages are answered with their receipt, and read marks come back', async () => {
  const dan = await client('dan');
  const erin = await client('erin');
  try {
    const arriving = next(erin, 'direct');
    const sent = await dan.direct('erin', 'hey');
    assert.equal(sent.delivered, true);
    const direct = await arriving;
    assert.equal(direct.from, 'dan');
    assert.equal(direct.id, sent.id);
    const receipt = next(dan, 'receipt');
    const read = await erin.read(direct.id);
    assert.equal(read.unread, 0);
    assert.equal((await receipt).upto, direct.id);
  } finally {
    dan.close();
    erin.close();
  }
});

test('requests wait in the offline queue, bounded, and close() rejects what waits', async () => {
  const c = new RoomcastClient({ url: 'ws://127.0.0.1:9/ws', user: 'frank', WebSocket, queueLimit: 2, backoffInitialMs: 10_000 });
  await assert.rejects(c.publish('a', 1), (e) => e.code === 'not_connected');
  c.connect();
  const queued = [c.publish('a', 1), c.publish('a', 2)];
  await assert.rejects(c.publish('a', 3), (e) => e.code === 'queue_full');
  assert.equal(c.queued, 2);
  c.close();
  for (const p of queued) await assert.rejects(p, (e) => e.code === 'closed');
});

/** Disconnects `user` through the server API. */
async function disconnect(user, body) {
  const response = await fetch(`${BASE}/api/users/${user}/disconnect`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200);
  return (await response.json()).sessions;
}

test('a server disconnect says whether to come back, and the client keeps to it', async () => {
  const gina = await client('gina');
  try {
    await gina.join('js-kick');
    // Asked to come back: it reconnects and joins again.
    const back = next(gina, 'joined', (j) => j.rejoin);
    assert.equal(await disconnect('gina', { reason: 'moved' }), 1);
    const rejoined = await back;
    assert.equal(rejoined.room, 'js-kick');
    // Asked to stay away: closed, and no attempt follows.
    const closed = next(gina, 'state', (s) => s.state === 'closed');
    assert.equal(await disconnect('gina', { reconnect: false, reason: 'banned' }), 1);
    const state = await closed;
    assert.deepEqual([state.code, state.reason], [4500, 'banned']);
    let attempts = 0;
    const off = gina.on('state', () => (attempts += 1));
    await new Promise((resolve) => setTimeout(resolve, 500));
    off();
    assert.equal(attempts, 0, 'no reconnect after 4500');
    await assert.rejects(gina.publish('js-kick', 1), (e) => e.code === 'closed');
  } finally {
    gina.close();
  }
});

test('the declarations name exactly what the module exports', () => {
  const declarations = readFileSync(new URL('../roomcast.d.ts', import.meta.url), 'utf8');
  const declared = [...declarations.matchAll(/^export (?:const|class|function) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual([...new Set(declared)].sort(), Object.keys(roomcast).sort());
});
