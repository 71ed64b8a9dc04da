// A typed use of roomcast.js through its declarations (roomcast.d.ts), checked by
// `tsc -p test/tsconfig.json` with --strict: what an application writes compiles, and the
// `@ts-expect-error` lines, each a mistake the types must catch, fail the check if they do not.

import {
  type JoinReply,
  type RoomMessage,
  RoomcastClient,
  RoomcastError,
  formatCursor,
  parseCursor,
  subscribe,
} from 'roomcast';

export async function chat(): Promise<string> {
  const client = new RoomcastClient({ url: 'ws://127.0.0.1:8080/ws', token: async () => 'jwt' });
  const stop = client.on('message', (m: RoomMessage) => console.log(m.room, m.from, m.data));
  client.on('presence', (p) => ('joins' in p ? p.joins : 'count' in p ? [String(p.count)] : p.members));
  client.on('state', ({ state, previous }) => console.log(previous, '->', state));
  client.on('resync', ({ stream }) => console.log('refetch', stream));
  client.connect();
  const joined: JoinReply = await client.join('lobby');
  const members: string[] = joined.members ?? [];
  const { id } = await client.publish('lobby', { text: 'hi', at: [1, 2] });
  const receipt = await client.direct('bob', 'hey');
  const delivered: boolean = receipt.delivered;
  const { unread } = await client.read(receipt.id);
  try {
    await client.request({ type: 'reaction', room: 'lobby', emoji: '+1' });
  } catch (e) {
    if (e instanceof RoomcastError && e.code === 'timeout') console.log('no answer');
  }
  stop();
  client.close(1000, 'bye');
  const cursor = formatCursor(parseCursor('room:lobby=1f.42,user=2.0'));
  const unsubscribe = subscribe('/events?user=alice', { notify: (n) => console.log(n.event, n.data) });
  unsubscribe();
  return `${id} ${members.length} ${delivered} ${unread} ${cursor} ${client.memberCount('lobby')}`;
}

export function mistakes(client: RoomcastClient): void {
  // @ts-expect-error a room is a string
  void client.join(42);
  // @ts-expect-error data is JSON: a function is not
  void client.publish('lobby', () => 1);
  // @ts-expect-error a message event has no `members`
  client.on('message', (m) => m.members);
  // @ts-expect-error the state is one of five
  const state: 'online' = client.state;
  void state;
  // @ts-expect-error unknown option
  void new RoomcastClient({ retries: 3 });
}
