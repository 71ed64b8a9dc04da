/**
 * @file roomcast.js: a browser client for the roomcast wire protocol, version 1
 * (`docs/protocol.md`). An ES module with no dependencies and no build step; the roomcast
 * server serves it at `/roomcast.js`.
 *
 * ```js
 * import { RoomcastClient, subscribe } from '/roomcast.js';
 *
 * const client = new RoomcastClient({ user: 'alice' }); // or { token: 'JWT' } or { token: async () => fetchJwt() }
 * client.on('state', ({ state }) => console.log(state)); // connecting | open | reconnecting | closed
 * client.on('message', (m) => console.log(m.room, m.from, m.data));
 * client.on('presence', (p) => console.log(p.room, p.joins, p.leaves));
 * client.connect();
 * const { members } = await client.join('lobby');
 * await client.publish('lobby', { text: 'hi' });         // resolves with { room, id }
 * const { delivered } = await client.direct('bob', 'hey'); // the receipt
 *
 * const stop = subscribe('/events?user=alice', { notify: (n) => console.log(n.event, n.data) });
 * ```
 *
 * **RoomcastClient** (WebSocket, subprotocol `roomcast.v1`):
 *
 * - Connects to `/ws` of the page's origin (or `options.url`) with `?user=` (development mode)
 *   or `?token=` (a string, or a function returning one or a promise of one, called before every
 *   attempt so an expired token can be renewed).
 * - Reconnects by itself with capped exponential backoff and full jitter (`backoffInitialMs`
 *   250 doubling to `backoffMaxMs` 10 000; the delay is uniform in [0, that]). Close codes:
 *   `1001` (after a `shutdown`) waits the server's `reconnect_ms` plus jitter; `4000` (slow
 *   consumer) and `4001` (heartbeat timeout) come back promptly; `4003` (unauthorized) and
 *   `1008` (policy) wait at least half the cap; `4500` to `4999` (the server disconnected the
 *   user and asks it to stay away) and `close()` by the application never reconnect.
 *   A server's `1000` is followed by a backed-off reconnect (call `close()` to stop). When the
 *   browser reports itself offline the socket is dropped and the client waits for `online`.
 * - Liveness: browsers cannot see the server's WebSocket pings, so when nothing arrived for
 *   `ping_interval_ms` (from `welcome`, or `heartbeatMs`) the client sends a `ping` and drops the
 *   connection if nothing arrives within `ping_timeout_ms` (or `heartbeatTimeoutMs`).
 * - Resume: it keeps the position of every stream (`room:NAME`, `user`, `all`) from `streams`,
 *   join replies and each stored message's `id`. A reconnect presents `?cursor=user=..,all=..`
 *   (protocol section 7; the WebSocket joins no room at connect) and re-joins every room it was
 *   in with `since`, so missed messages are replayed. A stream that could not be resumed
 *   (`recovered: false`, e.g. after a server restart) is reported as a `resync` event.
 * - Exactly once: a stored message (`message`, `direct`, `notify`, `receipt`, `broadcast`) is never
 *   delivered twice to the application, whatever replays happen (dedupe by stream and id; ids
 *   are compared within an epoch by offset). The client's own publishes are not delivered back
 *   by a replay either: the application already has them from `publish()`.
 * - Requests: `join`, `leave`, `publish`, `typing`, `direct`, `read`, `ping` and `request(frame)` (for
 *   application-defined types) send a `ref` and return a promise settled by the `reply`
 *   (resolved with it) or the `error` (rejected with a {@link RoomcastError} carrying `code`),
 *   or rejected with code `timeout` after `requestTimeoutMs` (10 s), counted from the moment the
 *   frame is written.
 * - Offline queue: while not connected, `publish`, `direct` and `request` frames wait in a queue
 *   of at most `queueLimit` (100) frames, sent in order after the rooms are re-joined; a send
 *   that finds the queue full is rejected at once with code `queue_full`. `typing` and `ping`
 *   are never queued. A request already written when the connection drops is rejected with code
 *   `disconnected` (for a publish or direct, it may or may not have been stored). Rooms joined
 *   while offline are joined on connect; `join()` then resolves with that reply.
 * - Events (`on(type, fn)` returns an unsubscribe function; `off`, `once`; it is also a real
 *   `EventTarget`, the payload being the `CustomEvent`'s `detail`):
 *   - server messages by type: `welcome`, `streams`, `message`, `presence`, `typing`, `direct`,
 *     `notify`, `receipt` (a user read the direct messages you sent them up to `upto`: each
 *     direct whose `id` is at or before it), `read` (your outbox was marked read on another
 *     device), `broadcast`, `shutdown`, `error` (an `error` without `ref`), and any other type;
 *   - `state` `{state, previous, ...}`: `idle`, `connecting`, `open`, `reconnecting`, `closed`;
 *     `reconnecting` carries `{attempt, delayMs, code, reason, offline}`;
 *   - `open` (the welcome), `close` `{code, reason, wasClean, byApp}`;
 *   - `members` `{room, members, count}` after a join reply or a presence frame; in a room above
 *     the server's size for names (`--presence-counts-above`) `members` is empty and `count`
 *     says how many are present;
 *   - `joined` (each join reply, `rejoin: true` for automatic re-joins);
 *   - `resync` `{stream, room?}`: that stream's history could not be resumed; refetch state;
 *   - `frame`: every frame received, before dedupe (for debugging).
 *
 * **subscribe(url, handlers, options)** follows an SSE stream (`/events?user=..&rooms=..`) with
 * `EventSource`: one listener per message type in `handlers` (plus the standard ones), each
 * called with the parsed frame and the `MessageEvent`; `handlers.open` gets the welcome,
 * `handlers.state` the connection state, `handlers.resync` streams that were not recovered.
 * The browser's automatic `Last-Event-ID` resumes exactly; when the EventSource gives up (a
 * non-200 answer such as 503 while a server restarts) or the browser goes offline, the helper
 * starts a new one itself with `?lastEventId=` and backoff. Stored messages are deduped as
 * above. Returns a function that closes the stream.
 *
 * @module roomcast
 */

/** The WebSocket subprotocol of version 1. */
export const SUBPROTOCOL = 'roomcast.v1';

const ROOM_NAME = /^[A-Za-z0-9_.:/-]{1,64}$/;
const POSITION = /^([0-9a-f]{1,16})\.([0-9]{1,20})$/;
const OWN_IDS_KEPT = 1000;

/** A failed request: `code` is the protocol's error code (section 6) or a client-side one. */
export class RoomcastError extends Error {
  /**
   * @param {string} code `bad_frame`, `not_member`, ... or client-side: `timeout`,
   *   `disconnected`, `queue_full`, `closed`, `not_connected`, `too_large`.
   * @param {string} message for humans
   * @param {object} [frame] the server's `error` frame, if any
   */
  constructor(code, message, frame) {
    super(message);
    this.name = 'RoomcastError';
    this.code = code;
    this.frame = frame;
  }
}

/**
 * Parses a position `epoch.offset`.
 * @param {string} id
 * @returns {{epoch: string, offset: bigint} | null}
 */
export function parsePosition(id) {
  const m = typeof id === 'string' ? POSITION.exec(id) : null;
  return m ? { epoch: m[1], offset: BigInt(m[2]) } : null;
}

/**
 * The stream a stored server message belongs to, or null for ephemeral ones.
 * @param {object} frame
 * @returns {string | null} `room:NAME`, `user` or `all`
 */
export function streamOf(frame) {
  switch (frame && frame.type) {
    case 'message': return `room:${frame.room}`;
    case 'direct':
    case 'notify':
    case 'receipt': return 'user';
    case 'broadcast': return 'all';
    default: return null;
  }
}

/**
 * Writes a cursor (section 7) in the server's stable order: rooms by name, `user`, `all`.
 * @param {Iterable<[string, string]>} entries stream and position pairs
 * @returns {string}
 */
export function formatCursor(entries) {
  const rank = (s) => (s === 'user' ? 1 : s === 'all' ? 2 : 0);
  return [...entries]
    .sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map(([stream, id]) => `${stream}=${id}`)
    .join(',');
}

/**
 * Reads a cursor into a Map of stream to position (no validation beyond the shape).
 * @param {string} text
 * @returns {Map<string, string>}
 */
export function parseCursor(text) {
  const out = new Map();
  for (const entry of (text || '').split(',')) {
    const at = entry.lastIndexOf('=');
    if (at > 0) out.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return out;
}

/**
 * Positions of streams, and the exactly-once filter for stored messages. Within an epoch,
 * offsets grow by one per message, so a message at or before the position is a repeat; a new
 * epoch starts afresh. Ids that do not parse as positions are remembered as they are.
 */
export class StreamPositions {
  constructor() {
    /** @type {Map<string, {id: string, epoch: string|null, offset: bigint}>} */
    this._pos = new Map();
    /** ids published by this client, not to be delivered back: key `stream\nid` */
    this._own = new Set();
    /** fallback for ids that are not positions */
    this._opaque = new Set();
  }

  /** @returns {string | undefined} the position of `stream` */
  get(stream) {
    const p = this._pos.get(stream);
    return p && p.id;
  }

  /** Forgets a stream (after `leave`). */
  delete(stream) {
    this._pos.delete(stream);
  }

  /** @returns {Array<[string, string]>} every stream with its position */
  entries() {
    return [...this._pos].map(([s, p]) => [s, p.id]);
  }

  /**
   * A resume point from `streams` or a join reply: the stream continues after `id`.
   * @returns {boolean} whether the epoch changed (or the stream is new)
   */
  resumeAt(stream, id) {
    const p = parsePosition(id);
    const cur = this._pos.get(stream);
    if (!p) {
      this._pos.set(stream, { id, epoch: null, offset: 0n });
      return true;
    }
    if (cur && cur.epoch === p.epoch) {
      if (p.offset > cur.offset) this._pos.set(stream, { id, ...p });
      return false;
    }
    this._pos.set(stream, { id, ...p });
    return true;
  }

  /**
   * A stored message arrived.
   * @returns {boolean} true to deliver it, false for a repeat (or the client's own message)
   */
  accept(stream, id) {
    const p = parsePosition(id);
    if (!p) {
      const key = `${stream}\n${id}`;
      if (this._opaque.has(key)) return false;
      this._opaque.add(key);
      if (this._opaque.size > 10 * OWN_IDS_KEPT) this._opaque.delete(this._opaque.values().next().value);
      return true;
    }
    const cur = this._pos.get(stream);
    if (cur && cur.epoch === p.epoch && p.offset <= cur.offset) return false;
    this._pos.set(stream, { id, ...p });
    const key = `${stream}\n${id}`;
    if (this._own.delete(key)) return false;
    return true;
  }

  /** Marks `id` in `stream` as published by this client: a replay of it is not delivered. */
  markOwn(stream, id) {
    const cur = this._pos.get(stream);
    const p = parsePosition(id);
    if (cur && p && cur.epoch === p.epoch && p.offset <= cur.offset) return; // already past it
    this._own.add(`${stream}\n${id}`);
    if (this._own.size > OWN_IDS_KEPT) this._own.delete(this._own.values().next().value);
  }
}

function defaultUrl() {
  const loc = globalThis.location;
  if (!loc) return 'ws://127.0.0.1:8080/ws';
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
}

function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}

const hasWindow = typeof window !== 'undefined' && typeof window.addEventListener === 'function';

/** Stops listening to a socket being let go of. Its errors are still taken, and ignored: Node's
 * `ws` reports one for a socket closed while connecting, and throws it when nobody listens. */
function abandon(ws) {
  ws.onmessage = ws.onclose = null;
  ws.onerror = () => {};
}

/**
 * A roomcast connection over WebSocket that survives drops, restarts and offline periods.
 * See the module documentation for the behaviour; construct, add listeners, then `connect()`.
 */
export class RoomcastClient extends EventTarget {
  /**
   * @param {object} [options]
   * @param {string} [options.url] WebSocket URL of `/ws` (default: the page's origin)
   * @param {string} [options.user] user name, development mode (`?user=`)
   * @param {string | (() => string | Promise<string>)} [options.token] credential (`?token=`)
   * @param {number} [options.requestTimeoutMs=10000] how long a request waits for its answer
   * @param {number} [options.queueLimit=100] frames kept while offline
   * @param {number} [options.backoffInitialMs=250] first reconnect delay bound
   * @param {number} [options.backoffMaxMs=10000] largest reconnect delay bound
   * @param {number} [options.connectTimeoutMs=15000] an attempt without `welcome` is dropped
   * @param {number} [options.heartbeatMs] idle time before a client `ping` (default: welcome's)
   * @param {number} [options.heartbeatTimeoutMs] wait for any frame after it (default: welcome's)
   * @param {boolean} [options.watchOnline=true] follow the browser's online/offline events
   * @param {typeof WebSocket} [options.WebSocket] WebSocket implementation
   */
  constructor(options = {}) {
    super();
    this.options = {
      url: defaultUrl(),
      user: undefined,
      token: undefined,
      requestTimeoutMs: 10_000,
      queueLimit: 100,
      backoffInitialMs: 250,
      backoffMaxMs: 10_000,
      connectTimeoutMs: 15_000,
      heartbeatMs: undefined,
      heartbeatTimeoutMs: undefined,
      watchOnline: true,
      WebSocket: globalThis.WebSocket,
      ...options,
    };
    /** @type {'idle'|'connecting'|'open'|'reconnecting'|'closed'} */
    this.state = 'idle';
    /** The current session's `welcome`, or null. */
    this.welcome = null;
    /** Failed attempts since the last `welcome`. */
    this.attempt = 0;
    /** Stream positions; `cursor` is derived from them. */
    this.positions = new StreamPositions();
    /** Counters, for display and tests. */
    this.stats = { connects: 0, reconnects: 0, duplicatesDropped: 0, resyncs: 0 };

    this._ws = null;
    this._ready = false; // welcome received on this._ws
    this._closedByApp = false;
    this._nextRef = 1;
    /** @type {Map<string, {members: Set<string>, count: number|null, waiters: Array<{resolve: Function, reject: Function}>, joined: boolean, joining: boolean, reply: object|null}>} */
    this._rooms = new Map();
    /** @type {Map<number, {resolve: Function, reject: Function, timer: any, kind: string, room?: string}>} */
    this._pending = new Map();
    /** @type {Array<{text: string, ref: number, resolve: Function, reject: Function, kind: string, onReply?: Function}>} */
    this._queue = [];
    this._reconnectTimer = null;
    this._connectTimer = null;
    this._idleTimer = null;
    this._deadTimer = null;
    this._shutdown = null; // {reconnectMs, at} from the last `shutdown`
    this._listeners = new Map(); // fn -> Map(type -> wrapped)
    this._onOnline = () => this._online();
    this._onOffline = () => this._offline();
  }

  // ---- events

  /**
   * Listens for `type`; `fn` gets the payload (a frame, or an object for client events).
   * @returns {() => void} unsubscribe
   */
  on(type, fn) {
    let byType = this._listeners.get(fn);
    if (!byType) this._listeners.set(fn, (byType = new Map()));
    if (!byType.has(type)) {
      const wrapped = (e) => fn(e.detail, e);
      byType.set(type, wrapped);
      this.addEventListener(type, wrapped);
    }
    return () => this.off(type, fn);
  }

  /** Stops a listener added with `on`. */
  off(type, fn) {
    const byType = this._listeners.get(fn);
    const wrapped = byType && byType.get(type);
    if (!wrapped) return;
    this.removeEventListener(type, wrapped);
    byType.delete(type);
    if (!byType.size) this._listeners.delete(fn);
  }

  /** Listens for the next `type` only. */
  once(type, fn) {
    const off = this.on(type, (detail, e) => {
      off();
      fn(detail, e);
    });
    return off;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state, extra = {}) {
    const previous = this.state;
    this.state = state;
    if (previous !== state || state === 'reconnecting') {
      this._emit('state', { state, previous, ...extra });
    }
  }

  // ---- connection

  /** The cursor of every stream followed (rooms included), as in protocol section 7. */
  get cursor() {
    return formatCursor(this.positions.entries());
  }

  /** The rooms this client is in (or joining). */
  get rooms() {
    return [...this._rooms.keys()];
  }

  /** Users present in `room`, as last known (none in a room that gets counts only). */
  members(room) {
    const r = this._rooms.get(room);
    return r ? [...r.members].sort() : [];
  }

  /** How many users are present in `room`, as last known: the count of a room that gets
   * counts only, else the size of `members(room)`. */
  memberCount(room) {
    const r = this._rooms.get(room);
    if (!r) return 0;
    return r.count === null ? r.members.size : r.count;
  }

  /** Starts connecting (again, after `close()`). @returns {this} */
  connect() {
    if (this._ws || this._reconnectTimer) return this;
    this._closedByApp = false;
    if (this.state === 'idle' || this.state === 'closed') this._setState('connecting', { attempt: 0 });
    if (this.options.watchOnline && hasWindow) {
      window.addEventListener('online', this._onOnline);
      window.addEventListener('offline', this._onOffline);
    }
    this._attemptConnect();
    return this;
  }

  /**
   * Closes for good (until `connect()`): no reconnect; waiting requests are rejected (`closed`).
   * @param {number} [code=1000]
   * @param {string} [reason]
   */
  close(code = 1000, reason = 'closed by the application') {
    this._closedByApp = true;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    if (hasWindow) {
      window.removeEventListener('online', this._onOnline);
      window.removeEventListener('offline', this._onOffline);
    }
    const ws = this._ws;
    this._teardown(new RoomcastError('closed', 'the client was closed'));
    for (const item of this._queue.splice(0)) item.reject(new RoomcastError('closed', 'the client was closed'));
    for (const r of this._rooms.values()) {
      for (const w of r.waiters.splice(0)) w.reject(new RoomcastError('closed', 'the client was closed'));
    }
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        ws.close();
      }
      this._emit('close', { code, reason, wasClean: true, byApp: true });
    }
    this._setState('closed');
  }

  async _attemptConnect() {
    this._reconnectTimer = null;
    if (this._closedByApp || this._ws) return;
    if (this.options.watchOnline && globalThis.navigator && navigator.onLine === false) {
      this._setState(this.stats.connects ? 'reconnecting' : 'connecting', { attempt: this.attempt, offline: true });
      return; // `online` resumes
    }
    let token = this.options.token;
    if (typeof token === 'function') {
      try {
        token = await token();
      } catch (e) {
        this._scheduleReconnect(4003, `could not get a token: ${e && e.message}`);
        return;
      }
      if (this._closedByApp || this._ws) return;
    }
    const url = new URL(this.options.url, globalThis.location && location.href);
    if (this.options.user != null) url.searchParams.set('user', this.options.user);
    if (token != null) url.searchParams.set('token', token);
    const cursor = formatCursor(this.positions.entries().filter(([s]) => s === 'user' || s === 'all'));
    if (cursor) url.searchParams.set('cursor', cursor);
    else url.searchParams.delete('cursor');

    this._setState(this.stats.connects ? 'reconnecting' : 'connecting', { attempt: this.attempt, connecting: true });
    let ws;
    try {
      ws = new this.options.WebSocket(url.toString(), SUBPROTOCOL);
    } catch (e) {
      this._scheduleReconnect(1006, String(e && e.message));
      return;
    }
    this._ws = ws;
    this._ready = false;
    ws.onmessage = (e) => this._onFrame(ws, e.data);
    ws.onclose = (e) => this._onClose(ws, e.code, e.reason, e.wasClean);
    ws.onerror = () => {}; // a close event follows
    this._connectTimer = setTimeout(() => {
      if (this._ws === ws && !this._ready) this._drop(ws, 4008, 'no welcome in time (client)');
    }, this.options.connectTimeoutMs);
  }

  /** Abandons `ws` at once (dead, offline, timed out) and reacts as if it closed with `code`. */
  _drop(ws, code, reason) {
    abandon(ws);
    try {
      ws.close(1000, reason.slice(0, 100));
    } catch {
      try { ws.close(); } catch { /* already closing */ }
    }
    this._onClose(ws, code, reason, false);
  }

  _teardown(error) {
    clearTimeout(this._connectTimer);
    clearTimeout(this._idleTimer);
    clearTimeout(this._deadTimer);
    this._connectTimer = this._idleTimer = this._deadTimer = null;
    if (this._ws) abandon(this._ws);
    this._ws = null;
    this._ready = false;
    this.welcome = null;
    for (const [ref, p] of this._pending) {
      clearTimeout(p.timer);
      this._pending.delete(ref);
      // A join is not lost: the room is joined again on the next connection.
      if (p.kind !== 'join' || error.code === 'closed') p.reject(error);
    }
    for (const r of this._rooms.values()) {
      r.joined = false;
      r.joining = false;
    }
  }

  _onClose(ws, code, reason, wasClean) {
    if (ws !== this._ws) return;
    const wasOpen = this._ready;
    this._teardown(new RoomcastError('disconnected', `the connection closed (${code}) before the answer`));
    this._emit('close', { code, reason, wasClean, byApp: false, wasOpen });
    if (this._closedByApp) {
      this._setState('closed');
      return;
    }
    if (code >= 4500 && code <= 4999) {
      // The server disconnected this user and asks it to stay away: closed until `connect()`.
      this._closedByApp = true;
      if (hasWindow) {
        window.removeEventListener('online', this._onOnline);
        window.removeEventListener('offline', this._onOffline);
      }
      for (const item of this._queue.splice(0)) item.reject(new RoomcastError('closed', reason || 'disconnected by the server'));
      this._setState('closed', { code, reason });
      return;
    }
    this._scheduleReconnect(code, reason);
  }

  _scheduleReconnect(code, reason) {
    if (this._closedByApp) return;
    clearTimeout(this._reconnectTimer);
    const { backoffInitialMs: base, backoffMaxMs: cap } = this.options;
    const bound = Math.min(cap, base * 2 ** Math.min(this.attempt, 30));
    let delayMs = Math.random() * bound; // full jitter
    if (code === 4000 || code === 4001) {
      delayMs = Math.random() * base; // slow consumer, heartbeat: come back promptly
    } else if (code === 4003 || code === 1008) {
      delayMs = cap / 2 + (Math.random() * cap) / 2; // not at once
    }
    if (this._shutdown) {
      // The server asked for `reconnect_ms` (from its notice) plus jitter.
      const waited = Date.now() - this._shutdown.at;
      const hint = this._shutdown.reconnectMs;
      delayMs = Math.max(delayMs, hint - waited + Math.random() * Math.min(hint, cap));
      this._shutdown = null;
    }
    this.attempt += 1;
    delayMs = Math.round(delayMs);
    const offline = this.options.watchOnline && globalThis.navigator && navigator.onLine === false;
    this._setState('reconnecting', { attempt: this.attempt, delayMs: offline ? null : delayMs, code, reason, offline });
    if (offline) return; // `online` resumes
    this._reconnectTimer = setTimeout(() => this._attemptConnect(), delayMs);
  }

  _offline() {
    if (this._closedByApp) return;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    if (this._ws) this._drop(this._ws, 1006, 'the browser went offline');
    else this._setState('reconnecting', { attempt: this.attempt, offline: true });
  }

  _online() {
    if (this._closedByApp || this._ws) return;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this.attempt = 0;
    this._attemptConnect();
  }

  _armHeartbeat() {
    clearTimeout(this._idleTimer);
    clearTimeout(this._deadTimer);
    this._deadTimer = null;
    const w = this.welcome;
    if (!w) return;
    const idleMs = this.options.heartbeatMs ?? w.ping_interval_ms ?? 25_000;
    const timeoutMs = this.options.heartbeatTimeoutMs ?? w.ping_timeout_ms ?? 10_000;
    const ws = this._ws;
    this._idleTimer = setTimeout(() => {
      if (ws !== this._ws) return;
      const ref = this._nextRef++;
      try {
        ws.send(JSON.stringify({ type: 'ping', ref }));
      } catch { /* the close event comes */ }
      this._deadTimer = setTimeout(() => {
        if (ws === this._ws) this._drop(ws, 4001, 'no answer to ping (client heartbeat)');
      }, timeoutMs);
    }, idleMs);
  }

  // ---- inbound

  _onFrame(ws, text) {
    if (ws !== this._ws) return;
    if (this._ready) this._armHeartbeat();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      console.warn('roomcast: dropped a frame that is not JSON', text);
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') {
      console.warn('roomcast: dropped a frame without a type', text);
      return;
    }
    this._emit('frame', frame);
    switch (frame.type) {
      case 'welcome':
        return this._onWelcome(frame);
      case 'streams':
        for (const s of frame.streams || []) {
          const had = this.positions.get(s.stream) !== undefined;
          this.positions.resumeAt(s.stream, s.id);
          if (s.recovered === false && had) this._resync(s.stream);
        }
        return this._emit('streams', frame);
      case 'reply':
      case 'error':
        return this._onAnswer(frame);
      case 'message':
      case 'direct':
      case 'notify':
      case 'receipt':
      case 'broadcast': {
        if (!this.positions.accept(streamOf(frame), frame.id)) {
          this.stats.duplicatesDropped += 1;
          return;
        }
        return this._emit(frame.type, frame);
      }
      case 'presence': {
        const r = this._rooms.get(frame.room);
        if (r) {
          if (typeof frame.count === 'number') {
            // A room above the server's size for names: counts only.
            r.count = frame.count;
            r.members.clear();
          } else if (Array.isArray(frame.members)) {
            // Back to that size: the whole list replaces the count.
            r.count = null;
            r.members = new Set(frame.members);
          } else {
            // Set operations: a join may name a user the join reply listed.
            r.count = null;
            for (const u of frame.leaves || []) r.members.delete(u);
            for (const u of frame.joins || []) r.members.add(u);
          }
        }
        this._emit('presence', frame);
        if (r) this._emitMembers(frame.room);
        return;
      }
      case 'shutdown':
        this._shutdown = { reconnectMs: Number(frame.reconnect_ms) || 0, at: Date.now() };
        return this._emit('shutdown', frame);
      default:
        return this._emit(frame.type, frame); // typing, and types of later versions
    }
  }

  _onWelcome(frame) {
    clearTimeout(this._connectTimer);
    this._connectTimer = null;
    this.welcome = frame;
    this._ready = true;
    this.attempt = 0;
    this._shutdown = null;
    if (this.stats.connects++) this.stats.reconnects += 1;
    this._armHeartbeat();
    this._setState('open', { session: frame.session, user: frame.user });
    this._emit('welcome', frame);
    this._emit('open', frame);
    for (const room of this._rooms.keys()) this._sendJoin(room);
    this._flush();
  }

  _resync(stream) {
    this.stats.resyncs += 1;
    const detail = { stream };
    if (stream.startsWith('room:')) detail.room = stream.slice(5);
    this._emit('resync', detail);
  }

  _onAnswer(frame) {
    const p = frame.ref == null ? undefined : this._pending.get(frame.ref);
    if (!p) {
      if (frame.type === 'error') this._emit('error', frame);
      return;
    }
    this._pending.delete(frame.ref);
    clearTimeout(p.timer);
    if (frame.type === 'reply') p.resolve(frame);
    else p.reject(new RoomcastError(frame.code, frame.message, frame));
  }

  // ---- outbound

  _transmit(item) {
    const ws = this._ws;
    if (!ws || !this._ready || ws.readyState !== 1) return false;
    ws.send(item.text);
    const timer = setTimeout(() => {
      if (this._pending.get(item.ref) !== entry) return;
      this._pending.delete(item.ref);
      item.reject(new RoomcastError('timeout', `no answer within ${this.options.requestTimeoutMs} ms`));
    }, this.options.requestTimeoutMs);
    const entry = { resolve: item.resolve, reject: item.reject, timer, kind: item.kind };
    this._pending.set(item.ref, entry);
    return true;
  }

  _flush() {
    while (this._queue.length && this._transmit(this._queue[0])) this._queue.shift();
  }

  /**
   * Sends `frame` with a new `ref`; resolves with the `reply`, rejects with a RoomcastError.
   * @param {object} frame a client message without `ref` (`{type, ...}`)
   * @param {{queue?: boolean}} [opts] `queue: false` fails at once when not connected
   * @returns {Promise<object>}
   */
  request(frame, { queue = true, kind = frame.type } = {}) {
    return new Promise((resolve, reject) => {
      if (this._closedByApp || this.state === 'idle') {
        reject(new RoomcastError(this._closedByApp ? 'closed' : 'not_connected', 'call connect() first'));
        return;
      }
      const ref = this._nextRef++;
      const { type, ...rest } = frame;
      const text = JSON.stringify({ type, ref, ...rest });
      const limit = (this.welcome && this.welcome.max_frame) || 65_536;
      if (utf8Length(text) > limit) {
        reject(new RoomcastError('too_large', `the frame is over the server's limit of ${limit} bytes`));
        return;
      }
      const item = { text, ref, resolve, reject, kind };
      if (!this._queue.length && this._transmit(item)) return;
      if (!queue) {
        reject(new RoomcastError('not_connected', 'not connected'));
      } else if (this._queue.length >= this.options.queueLimit) {
        reject(new RoomcastError('queue_full', `the offline queue holds ${this.options.queueLimit} frames already`));
      } else {
        this._queue.push(item);
      }
    });
  }

  /** Frames waiting to be sent. */
  get queued() {
    return this._queue.length;
  }

  /**
   * Joins `room` (and joins it again after every reconnect, with `since`, until `leave`).
   * Resolves with the reply: `{room, members, id, recovered?, replayed?}` (`count` instead of
   * `members` in a room above the server's size for names).
   */
  join(room) {
    if (!ROOM_NAME.test(room)) {
      return Promise.reject(new RoomcastError('bad_frame', `bad room name ${JSON.stringify(room)}`));
    }
    if (this._closedByApp || this.state === 'idle') {
      return Promise.reject(new RoomcastError('not_connected', 'call connect() first'));
    }
    let r = this._rooms.get(room);
    if (r && r.joined && r.reply) {
      const known = r.count === null ? { members: this.members(room) } : { count: r.count };
      return Promise.resolve({ ...r.reply, ...known });
    }
    if (!r) {
      r = { members: new Set(), count: null, waiters: [], joined: false, joining: false, reply: null };
      this._rooms.set(room, r);
    }
    const promise = new Promise((resolve, reject) => r.waiters.push({ resolve, reject }));
    if (this._ready && !r.joining) this._sendJoin(room);
    return promise;
  }

  _emitMembers(room) {
    this._emit('members', { room, members: this.members(room), count: this.memberCount(room) });
  }

  _sendJoin(room) {
    const r = this._rooms.get(room);
    if (!r || r.joining) return;
    const since = this.positions.get(`room:${room}`);
    const frame = since === undefined ? { type: 'join', room } : { type: 'join', room, since };
    const rejoin = since !== undefined;
    r.joining = true;
    const ref = this._nextRef++;
    const resolve = (reply) => {
      if (this._rooms.get(room) !== r) return; // left meanwhile
      r.joining = false;
      r.joined = true;
      r.reply = reply;
      r.members = new Set(reply.members || []);
      r.count = typeof reply.count === 'number' ? reply.count : null;
      const stream = `room:${room}`;
      this.positions.resumeAt(stream, reply.id);
      if (rejoin && reply.recovered === false) this._resync(stream);
      this._emit('joined', { ...reply, rejoin });
      this._emitMembers(room);
      for (const w of r.waiters.splice(0)) w.resolve(reply);
    };
    const reject = (error) => {
      if (this._rooms.get(room) !== r) return;
      r.joining = false;
      if (error.code === 'timeout') {
        for (const w of r.waiters.splice(0)) w.reject(error);
        return; // still wanted: joined again on the next connection
      }
      this._rooms.delete(room);
      for (const w of r.waiters.splice(0)) w.reject(error);
      this._emit('error', error.frame || { type: 'error', code: error.code, message: error.message });
    };
    const text = JSON.stringify({ type: frame.type, ref, room, ...(rejoin ? { since } : {}) });
    if (!this._transmit({ text, ref, resolve, reject, kind: 'join' })) r.joining = false;
  }

  /** Leaves `room`; resolves with the reply (or at once when not connected). */
  async leave(room) {
    const r = this._rooms.get(room);
    this._rooms.delete(room);
    this.positions.delete(`room:${room}`);
    if (r) for (const w of r.waiters.splice(0)) w.reject(new RoomcastError('left', `left ${room}`));
    if (!this._ready) return { type: 'reply', room };
    try {
      return await this.request({ type: 'leave', room }, { queue: false });
    } catch (e) {
      if (e.code === 'not_member' || e.code === 'disconnected' || e.code === 'not_connected') return { type: 'reply', room };
      throw e;
    }
  }

  /** Publishes `data` to `room`; resolves with `{room, id}`. Queued while offline. */
  async publish(room, data) {
    const reply = await this.request({ type: 'publish', room, data: data === undefined ? null : data });
    if (reply.id) this.positions.markOwn(`room:${room}`, reply.id);
    return reply;
  }

  /**
   * Says the user is (or stopped) typing in `room`. Ephemeral: never queued.
   * @returns {Promise<boolean>} false when not connected
   */
  async typing(room, typing = true) {
    if (!this._ready) return false;
    try {
      await this.request({ type: 'typing', room, typing: !!typing }, { queue: false });
      return true;
    } catch (e) {
      if (e.code === 'not_connected' || e.code === 'disconnected') return false;
      throw e;
    }
  }

  /**
   * Sends `data` to every session of `user`, or to their outbox. Queued while offline.
   * @returns {Promise<{id: string, delivered: boolean}>} the receipt
   */
  async direct(user, data) {
    const reply = await this.request({ type: 'direct', to: user, data: data === undefined ? null : data });
    return { id: reply.id, delivered: reply.delivered === true };
  }

  /**
   * Marks the user's outbox (direct messages and notifications) read up to `upto`, the `id`
   * of the last one shown, on every device; the senders of the direct messages get a
   * `receipt`. Queued while offline.
   * @returns {Promise<{id: string, unread: number}>} the mark now, and what is left unread
   */
  async read(upto) {
    const reply = await this.request({ type: 'read', upto });
    return { id: reply.id, unread: Number(reply.unread) || 0 };
  }

  /** An application-level ping; resolves when answered. */
  ping() {
    return this.request({ type: 'ping' }, { queue: false });
  }
}

const SSE_TYPES = ['streams', 'message', 'presence', 'typing', 'direct', 'notify', 'receipt', 'broadcast', 'shutdown', 'error'];
const SSE_META = new Set(['state', 'resync', 'open']);

/**
 * Follows an SSE stream of the server with `EventSource`, resuming and deduplicating.
 * @param {string} url e.g. `/events?user=bob` or `/events?token=JWT&rooms=a,b`
 * @param {Object<string, Function>} handlers by message type (`notify`, `broadcast`, `direct`,
 *   `message`, ...), each `(frame, event)`; `open(welcome)`, `state(state, detail)` with state
 *   `connecting`, `open`, `reconnecting`, `closed`; `resync({stream})`
 * @param {object} [options]
 * @param {number} [options.backoffInitialMs=1000] first delay when restarting a failed stream
 * @param {number} [options.backoffMaxMs=10000]
 * @param {boolean} [options.watchOnline=true] close while offline, resume at once when online
 * @param {boolean} [options.withCredentials=false]
 * @returns {() => void} closes the stream
 */
export function subscribe(url, handlers = {}, options = {}) {
  const o = {
    backoffInitialMs: 1000,
    backoffMaxMs: 10_000,
    watchOnline: true,
    withCredentials: false,
    EventSource: globalThis.EventSource,
    ...options,
  };
  const positions = new StreamPositions();
  const types = new Set([...SSE_TYPES, ...Object.keys(handlers).filter((k) => !SSE_META.has(k))]);
  let es = null;
  let lastEventId = '';
  let timer = null;
  let closed = false;
  let attempt = 0;
  let state = 'idle';

  const call = (name, ...args) => {
    const fn = handlers[name];
    if (typeof fn !== 'function') return;
    try {
      fn(...args);
    } catch (e) {
      setTimeout(() => { throw e; }); // reported, without breaking the stream
    }
  };
  const setState = (next, detail = {}) => {
    if (next === state && next !== 'reconnecting') return;
    state = next;
    call('state', next, detail);
  };
  const parse = (e) => {
    if (e.lastEventId) lastEventId = e.lastEventId;
    try {
      return JSON.parse(e.data);
    } catch {
      console.warn('roomcast: dropped an SSE event that is not JSON', e.data);
      return null;
    }
  };

  const open = () => {
    timer = null;
    if (closed) return;
    if (o.watchOnline && globalThis.navigator && navigator.onLine === false) {
      setState('reconnecting', { offline: true });
      return;
    }
    const u = new URL(url, globalThis.location && location.href);
    if (lastEventId) u.searchParams.set('lastEventId', lastEventId);
    const source = new o.EventSource(u.toString(), { withCredentials: o.withCredentials });
    es = source;
    setState(state === 'idle' ? 'connecting' : 'reconnecting', { attempt });
    source.addEventListener('open', (e) => {
      if (source !== es || !(e instanceof MessageEvent)) return; // the transport's own open: wait for the welcome
      const frame = parse(e);
      if (!frame) return;
      attempt = 0;
      setState('open', { session: frame.session });
      call('open', frame, e);
    });
    source.addEventListener('error', (e) => {
      if (source !== es) return;
      if (e instanceof MessageEvent) {
        const frame = parse(e); // an `error` frame of the protocol
        if (frame) call('error', frame, e);
        return;
      }
      if (source.readyState === 2) {
        // EventSource gave up (a refusal such as 503 or 429): start a new one, backed off.
        const bound = Math.min(o.backoffMaxMs, o.backoffInitialMs * 2 ** Math.min(attempt, 30));
        attempt += 1;
        const delayMs = Math.round(bound / 2 + (Math.random() * bound) / 2);
        es = null;
        setState('reconnecting', { attempt, delayMs });
        timer = setTimeout(open, delayMs);
      } else {
        setState('reconnecting', { attempt, native: true }); // EventSource retries by itself
      }
    });
    for (const type of types) {
      if (type === 'error') continue;
      source.addEventListener(type, (e) => {
        if (source !== es) return;
        const frame = parse(e);
        if (!frame) return;
        if (type === 'streams') {
          for (const s of frame.streams || []) {
            const had = positions.get(s.stream) !== undefined;
            positions.resumeAt(s.stream, s.id);
            if (s.recovered === false && had) call('resync', { stream: s.stream }, e);
          }
        }
        const stream = streamOf(frame);
        if (stream && frame.id && !positions.accept(stream, frame.id)) return; // a repeat
        call(type, frame, e);
      });
    }
  };

  const onOffline = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = null;
    if (es) es.close();
    es = null;
    setState('reconnecting', { offline: true });
  };
  const onOnline = () => {
    if (closed || es) return;
    clearTimeout(timer);
    attempt = 0;
    open();
  };
  if (o.watchOnline && hasWindow) {
    window.addEventListener('offline', onOffline);
    window.addEventListener('online', onOnline);
  }
  open();

  return () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    if (es) es.close();
    es = null;
    if (hasWindow) {
      window.removeEventListener('offline', onOffline);
      window.removeEventListener('online', onOnline);
    }
    setState('closed');
  };
}
