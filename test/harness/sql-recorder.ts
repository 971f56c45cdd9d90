/**
 * A TCP proxy on 127.0.0.1 in front of a real server that records every SQL text a client sends:
 * simple queries (Q) and the extended protocol's Parse (P), however the client writes them (one
 * message per write, pipelines, constant pre-built buffers). Plaintext only (sslMode disable).
 * Replication connections' commands are recorded too (`replication: true` in their startup).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface RecordedSql {
  text: string;
  /** Sent on a replication connection (walsender commands, not SQL for libpg-query). */
  replication: boolean;
}

export interface SqlRecorder {
  readonly port: number;
  /** Every text recorded so far, in the order received (per connection). */
  readonly texts: RecordedSql[];
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

export async function startSqlRecorder(target: { host: string; port: number }): Promise<SqlRecorder> {
  const texts: RecordedSql[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let buffered = Buffer.alloc(0);
    let started = false;
    let replication = false;
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (!started) {
          if (buffered.length < 8) return;
          const length = buffered.readInt32BE(0);
          if (buffered.length < length) return;
          const code = buffered.readInt32BE(4);
          if (code !== SSL_REQUEST && code !== GSS_REQUEST && code !== CANCEL_REQUEST) {
            started = true;
            const params = buffered.subarray(8, length).toString('utf8').split('\0');
            for (let i = 0; i + 1 < params.length; i += 2) if (params[i] === 'replication' && params[i + 1] !== 'false') replication = true;
          }
          buffered = buffered.subarray(length);
          continue;
        }
        if (buffered.length < 5) return;
        const length = buffered.readInt32BE(1);
        if (buffered.length < 1 + length) return;
        const type = String.fromCharCode(buffered[0]!);
        const body = buffered.subarray(5, 1 + length);
        if (type === 'Q') texts.push({ text: body.subarray(0, body.indexOf(0)).toString('utf8'), replication });
        if (type === 'P') {
          const nameEnd = body.indexOf(0);
          texts.push({ text: body.subarray(nameEnd + 1, body.indexOf(0, nameEnd + 1)).toString('utf8'), replication });
        }
        buffered = buffered.subarray(1 + length);
      }
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    texts,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
