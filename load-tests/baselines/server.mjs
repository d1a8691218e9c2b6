// The seed thesis's stack as a reference server: Node.js + Socket.IO 4, with `pg` for the
// durable path and `@socket.io/redis-adapter` for several processes. Written to do what
// Switchboard does on the same event paths and nothing more, so loadgen's `peer` scenario can
// drive both with the same client and compare:
//
//   /agent   auth {pair}  joins room `pair:<pair>` (an agent serving one conversation).
//   /widget  auth {pair}  a customer in conversation <pair>.
//     typing               → `typing {conversation_id, sender: "contact"}` to the agent's room
//                            (Switchboard: the widget's typing notice relayed to the assignee).
//     message {client_message_id, text}, with an ack
//                          → INSERT … ON CONFLICT (client_message_id) DO NOTHING (deduplicated on
//                            its id), then `message {conversation_id, client_message_id, text}` to
//                            the agent's room, then ack {ok: true} (Switchboard: the widget's
//                            message committed, acknowledged, pushed to the assignee).
//
// Environment: PORT (0 = any free port), PG_URL (postgres://… ; required for `message`),
// REDIS_URL (use the Redis adapter, for running several processes). Prints
// `listening on http://127.0.0.1:<port>` once ready.
import http from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.env.PORT ?? 0);
const io = new Server({ serveClient: false, transports: ['websocket'] });

let pool = null;
if (process.env.PG_URL) {
  const pg = (await import('pg')).default;
  pool = new pg.Pool({ connectionString: process.env.PG_URL, max: Number(process.env.PG_POOL ?? 32) });
  await pool.query(`CREATE TABLE IF NOT EXISTS peer_messages (
    id bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL,
    client_message_id text NOT NULL UNIQUE,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`);
}

if (process.env.REDIS_URL) {
  const { createClient } = await import('redis');
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub, { key: process.env.REDIS_KEY ?? 'peer-baseline' }));
}

const agents = io.of('/agent');
agents.on('connection', (socket) => {
  socket.join(`pair:${Number(socket.handshake.auth?.pair)}`);
});

const widgets = io.of('/widget');
widgets.on('connection', (socket) => {
  const pair = Number(socket.handshake.auth?.pair);
  const room = `pair:${pair}`;
  socket.on('typing', (ack) => {
    agents.to(room).emit('typing', { conversation_id: pair, sender: 'contact' });
    if (typeof ack === 'function') ack({ ok: true, relayed: true });
  });
  socket.on('message', async (body, ack) => {
    const reply = typeof ack === 'function' ? ack : () => {};
    if (!pool) return reply({ ok: false, error: { code: 'no_database' } });
    try {
      const id = String(body?.client_message_id ?? '');
      const text = String(body?.text ?? '');
      const r = await pool.query(
        'INSERT INTO peer_messages (conversation_id, client_message_id, body) VALUES ($1, $2, $3) ON CONFLICT (client_message_id) DO NOTHING RETURNING id',
        [pair, id, text]);
      if (r.rowCount === 1) {
        agents.to(room).emit('message', { conversation_id: pair, client_message_id: id, text });
      }
      reply({ ok: true, duplicate: r.rowCount === 0 });
    } catch (e) {
      reply({ ok: false, error: { code: 'unavailable', message: String(e) } });
    }
  });
});

const server = http.createServer();
io.attach(server);
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
const stop = () => { io.close(); pool?.end(); setTimeout(() => process.exit(0), 200).unref(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
