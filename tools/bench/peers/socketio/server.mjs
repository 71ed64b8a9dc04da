// Socket.IO 4.8 as a peer of roomcast-bench (tools/bench/src/socketio.rs starts it):
// every socket joins the room `bench`; `POST /publish` emits its JSON body to the room as a
// `message` and answers 204 once emitted. WebSocket transport only, no compression, and
// heartbeats too far apart to end a run's idle connections (the tool answers no pings).
//
// Usage: node server.mjs 127.0.0.1:PORT
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const [host, port] = process.argv[2].split(':');
const http = createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/publish') return res.writeHead(404).end();
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    io.to('bench').emit('message', JSON.parse(Buffer.concat(chunks).toString()));
    res.writeHead(204).end();
  });
});
const io = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  pingInterval: 3_600_000,
  pingTimeout: 3_600_000,
});
io.on('connection', (socket) => socket.join('bench'));
http.listen(Number(port), host);
