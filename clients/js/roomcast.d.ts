// Type declarations of roomcast.js (the roomcast wire protocol, version 1: docs/protocol.md).
// Hand-written beside the module, which needs no build step; `npm test` type-checks a typed
// use of them (test/types.ts) with `tsc --strict`.

/** The WebSocket subprotocol of version 1. */
export const SUBPROTOCOL: 'roomcast.v1';

/** A message id: the stream's epoch in hex, a dot, the offset (`"1f.42"`). */
export type Position = string;

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A stream a client follows: `room:NAME`, `user` (the outbox) or `all` (the broadcast feed). */
export type StreamName = `room:${string}` | 'user' | 'all';

/** The protocol's error codes, and the client's own. */
export type ErrorCode =
  | 'bad_frame'
  | 'unknown_type'
  | 'too_large'
  | 'not_member'
  | 'rate_limited'
  | 'unauthorized'
  | 'unavailable'
  | 'limit_reached'
  | 'timeout'
  | 'disconnected'
  | 'queue_full'
  | 'closed'
  | 'not_connected'
  | 'left'
  | (string & {});

/** A failed request: `code` is the protocol's error code or a client-side one. */
export class RoomcastError extends Error {
  constructor(code: ErrorCode, message: string, frame?: ErrorFrame);
  readonly name: 'RoomcastError';
  code: ErrorCode;
  /** The server's `error` frame, if any. */
  frame?: ErrorFrame;
}

// ---- server messages (protocol section 5)

export interface Welcome {
  type: 'welcome';
  protocol: number;
  session: string;
  user: string;
  ping_interval_ms: number;
  ping_timeout_ms: number;
  max_frame: number;
}

export interface StreamState {
  stream: StreamName;
  id: Position;
  recovered?: boolean;
  replayed?: number;
  unread?: number;
}

export interface Streams {
  type: 'streams';
  streams: StreamState[];
}

export interface RoomMessage {
  type: 'message';
  room: string;
  id: Position;
  /** The user who published it; absent when the server did. */
  from?: string;
  /** The application's name for its kind (server publishes). */
  event?: string;
  data: Json;
}

export type Presence =
  | { type: 'presence'; room: string; joins: string[]; leaves: string[] }
  | { type: 'presence'; room: string; members: string[] }
  | { type: 'presence'; room: string; count: number };

export interface Typing {
  type: 'typing';
  room: string;
  user: string;
  typing: boolean;
}

export interface Direct {
  type: 'direct';
  id: Position;
  from: string;
  data: Json;
}

export interface Notify {
  type: 'notify';
  id: Position;
  event?: string;
  data: Json;
}

export interface Broadcast {
  type: 'broadcast';
  id: Position;
  event?: string;
  data: Json;
}

/** `from` read the direct messages you sent them up to `upto`. */
export interface Receipt {
  type: 'receipt';
  id: Position;
  from: string;
  upto: Position;
}

/** Your outbox was marked read (on another device). */
export interface Read {
  type: 'read';
  upto: Position;
  unread: number;
}

export interface Shutdown {
  type: 'shutdown';
  reason: string;
  reconnect_ms: number;
}

export interface Expiring {
  type: 'expiring';
  in_ms: number;
}

export interface ErrorFrame {
  type: 'error';
  ref?: number | string;
  code: ErrorCode;
  message: string;
}

/** An answer to a request. */
export interface Reply {
  type: 'reply';
  ref: number | string;
  [field: string]: Json | undefined;
}

export interface JoinReply extends Reply {
  room: string;
  /** The stream's position the room's messages continue after. */
  id: Position;
  /** The users present (absent in a room above the server's size for names). */
  members?: string[];
  /** How many are present, in a room above the server's size for names. */
  count?: number;
  recovered?: boolean;
  replayed?: number;
}

// ---- client events

export type State = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateChange {
  state: State;
  previous: State;
  attempt?: number;
  delayMs?: number;
  code?: number;
  reason?: string;
  offline?: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
  byApp: boolean;
}

export interface Members {
  room: string;
  members: string[];
  count: number;
}

export interface Resync {
  stream: StreamName;
  room?: string;
}

/** Every event of a RoomcastClient, by name, with its payload. */
export interface ClientEvents {
  welcome: Welcome;
  streams: Streams;
  message: RoomMessage;
  presence: Presence;
  typing: Typing;
  direct: Direct;
  notify: Notify;
  receipt: Receipt;
  read: Read;
  broadcast: Broadcast;
  shutdown: Shutdown;
  expiring: Expiring;
  error: ErrorFrame;
  state: StateChange;
  open: Welcome;
  close: CloseInfo;
  members: Members;
  joined: JoinReply & { rejoin: boolean };
  resync: Resync;
  frame: { type: string; [field: string]: Json | undefined };
}

/** A WebSocket constructor: the browser's, or `ws`'s in Node (any class with the browser's
 * WebSocket API will do). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown;

export interface ClientOptions {
  /** WebSocket URL of `/ws` (default: the page's origin). */
  url?: string;
  /** User name, development mode (`?user=`). */
  user?: string;
  /** Credential (`?token=`): a string, or a function called before every attempt. */
  token?: string | (() => string | Promise<string>);
  /** How long a request waits for its answer (10 000 ms). */
  requestTimeoutMs?: number;
  /** Frames kept while offline (100). */
  queueLimit?: number;
  /** First reconnect delay bound (250 ms). */
  backoffInitialMs?: number;
  /** Largest reconnect delay bound (10 000 ms). */
  backoffMaxMs?: number;
  /** An attempt without `welcome` is dropped after this (15 000 ms). */
  connectTimeoutMs?: number;
  /** Idle time before a client `ping` (default: the welcome's). */
  heartbeatMs?: number;
  /** Wait for any frame after it (default: the welcome's). */
  heartbeatTimeoutMs?: number;
  /** Follow the browser's online/offline events (true). */
  watchOnline?: boolean;
  /** The WebSocket implementation (default: `globalThis.WebSocket`; in Node 20, `ws`'s). */
  WebSocket?: WebSocketConstructor;
}

/** Positions of streams, and the exactly-once filter for stored messages. */
export class StreamPositions {
  get(stream: string): Position | undefined;
  delete(stream: string): void;
  entries(): Array<[string, Position]>;
  /** A resume point: the stream continues after `id`; true when the epoch changed. */
  resumeAt(stream: string, id: Position): boolean;
  /** A stored message arrived: true to deliver it, false for a repeat or the client's own. */
  accept(stream: string, id: Position): boolean;
  /** Marks `id` in `stream` as published by this client. */
  markOwn(stream: string, id: Position): void;
}

/** A roomcast connection over WebSocket that survives drops, restarts and offline periods. */
export class RoomcastClient extends EventTarget {
  constructor(options?: ClientOptions);
  readonly options: Required<Pick<ClientOptions, 'url' | 'requestTimeoutMs' | 'queueLimit'>> &
    ClientOptions;
  state: State;
  /** The current session's `welcome`, or null. */
  welcome: Welcome | null;
  /** Failed attempts since the last `welcome`. */
  attempt: number;
  positions: StreamPositions;
  stats: { connects: number; reconnects: number; duplicatesDropped: number; resyncs: number };

  /** Listens for `type`; returns the function that stops listening. */
  on<K extends keyof ClientEvents>(type: K, fn: (payload: ClientEvents[K]) => void): () => void;
  on(type: string, fn: (payload: any) => void): () => void;
  off<K extends keyof ClientEvents>(type: K, fn: (payload: ClientEvents[K]) => void): void;
  off(type: string, fn: (payload: any) => void): void;
  once<K extends keyof ClientEvents>(type: K, fn: (payload: ClientEvents[K]) => void): () => void;
  once(type: string, fn: (payload: any) => void): () => void;

  /** The cursor of every stream followed (protocol section 7). */
  readonly cursor: string;
  /** The rooms this client is in (or joining). */
  readonly rooms: string[];
  /** Frames waiting to be sent. */
  readonly queued: number;
  /** Users present in `room`, as last known. */
  members(room: string): string[];
  /** How many users are present in `room`, as last known. */
  memberCount(room: string): number;

  /** Starts connecting (again, after `close()`). */
  connect(): this;
  /** Closes for good (until `connect()`): no reconnect; waiting requests are rejected. */
  close(code?: number, reason?: string): void;

  /** Sends `frame` with a new `ref`; resolves with the `reply`. */
  request(frame: { type: string; [field: string]: Json | undefined }, opts?: { queue?: boolean }): Promise<Reply>;
  /** Joins `room`, and again after every reconnect with `since`, until `leave`. */
  join(room: string): Promise<JoinReply>;
  leave(room: string): Promise<Reply | { type: 'reply'; room: string }>;
  /** Publishes `data` to `room`; resolves once stored. Queued while offline. */
  publish(room: string, data: Json): Promise<Reply & { room: string; id: Position }>;
  /** Says the user is (or stopped) typing; false when not connected. */
  typing(room: string, typing?: boolean): Promise<boolean>;
  /** Sends `data` to every session of `user`, or to their outbox. */
  direct(user: string, data: Json): Promise<{ id: Position; delivered: boolean }>;
  /** Marks the outbox read up to `upto` on every device; the senders get a `receipt`. */
  read(upto: Position): Promise<{ id: Position; unread: number }>;
  /** An application-level ping. */
  ping(): Promise<Reply>;
}

/** Handlers of `subscribe`, by message type. */
export interface SubscribeHandlers {
  open?: (welcome: Welcome, event: MessageEvent) => void;
  state?: (state: State, detail: Record<string, unknown>) => void;
  resync?: (detail: { stream: StreamName }, event: MessageEvent) => void;
  streams?: (frame: Streams, event: MessageEvent) => void;
  message?: (frame: RoomMessage, event: MessageEvent) => void;
  presence?: (frame: Presence, event: MessageEvent) => void;
  typing?: (frame: Typing, event: MessageEvent) => void;
  direct?: (frame: Direct, event: MessageEvent) => void;
  notify?: (frame: Notify, event: MessageEvent) => void;
  receipt?: (frame: Receipt, event: MessageEvent) => void;
  broadcast?: (frame: Broadcast, event: MessageEvent) => void;
  shutdown?: (frame: Shutdown, event: MessageEvent) => void;
  error?: (frame: ErrorFrame, event: MessageEvent) => void;
  [type: string]: ((...args: any[]) => void) | undefined;
}

export interface SubscribeOptions {
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  watchOnline?: boolean;
  withCredentials?: boolean;
  /** The EventSource implementation (default: `globalThis.EventSource`). */
  EventSource?: typeof EventSource;
}

/** Follows an SSE stream with EventSource, resuming and deduplicating; returns its closer. */
export function subscribe(url: string, handlers?: SubscribeHandlers, options?: SubscribeOptions): () => void;

/** Parses a position `epoch.offset`. */
export function parsePosition(id: string): { epoch: string; offset: bigint } | null;
/** The stream a stored server message belongs to, or null for ephemeral ones. */
export function streamOf(frame: { type: string; room?: string }): StreamName | null;
/** Writes a cursor in the server's stable order. */
export function formatCursor(entries: Iterable<[string, Position]>): string;
/** Reads a cursor into a Map of stream to position. */
export function parseCursor(text: string): Map<string, Position>;
