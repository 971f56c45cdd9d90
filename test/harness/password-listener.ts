/**
 * An impostor PostgreSQL server on loopback that records what clients send it: the startup
 * parameters and any password. It speaks just enough of the protocol: it refuses TLS ('N' to an
 * SSLRequest, like a server without ssl), asks for a cleartext or MD5 password, records the
 * PasswordMessage and answers 28P01. The security tests prove a secret never reaches it.
 */
import { createHash } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Visit {
  /** The StartupMessage's parameters (user, database, application_name, options…). */
  startup: Record<string, string>;
  /** Whether the client asked for TLS first (and was refused). */
  askedForTls: boolean;
  /** What came back in the PasswordMessage (cleartext, or "md5…" for MD5), when anything did. */
  password?: string;
}

export interface PasswordListener {
  port: number;
  visits: Visit[];
  /** Every password received so far. */
  passwords(): string[];
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const PROTOCOL_3 = 196608;

export async function startPasswordListener(auth: 'cleartext' | 'md5' = 'cleartext'): Promise<PasswordListener> {
  const visits: Visit[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const visit: Visit = { startup: {}, askedForTls: false };
    let buffer = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (!started) {
          if (buffer.length < 8) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const code = buffer.readInt32BE(4);
          const body = buffer.subarray(8, length);
          buffer = buffer.subarray(length);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            if (code === SSL_REQUEST) visit.askedForTls = true;
            socket.write('N');
            continue;
          }
          if (code !== PROTOCOL_3) return void socket.destroy();
          const parts = body.toString('utf8').split('\0');
          for (let i = 0; i + 1 < parts.length && parts[i] !== ''; i += 2) visit.startup[parts[i]!] = parts[i + 1]!;
          started = true;
          visits.push(visit);
          socket.write(auth === 'cleartext' ? message('R', int32(3)) : message('R', Buffer.concat([int32(5), Buffer.from([1, 2, 3, 4])])));
          continue;
        }
        if (buffer.length < 5) return;
        const type = String.fromCharCode(buffer[0]!);
        const length = buffer.readInt32BE(1);
        if (buffer.length < 1 + length) return;
        const body = buffer.subarray(5, 1 + length);
        buffer = buffer.subarray(1 + length);
        if (type === 'p') {
          visit.password = body.toString('utf8').replace(/\0$/, '');
          socket.end(errorResponse('28P01', `password authentication failed for user "${visit.startup.user ?? ''}"`));
          return;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    visits,
    passwords: () => visits.flatMap((visit) => (visit.password === undefined ? [] : [visit.password])),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** What the listener receives when `password` is sent for `user` by MD5 (salt 1,2,3,4). */
export function md5Answer(password: string, user: string): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), Buffer.from([1, 2, 3, 4])])).digest('hex');
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function message(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
}

function errorResponse(sqlstate: string, text: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${sqlstate}\0M${text}\0\0`);
  return message('E', fields);
}

/**
 * Resolves once this process holds no TCP handle any more (or after 5 s): a closed server or
 * socket leaves the active-resources list only on a later turn of the event loop, and the next
 * test file in the same worker may count them.
 */
export async function tcpHandlesClosed(): Promise<void> {
  const deadline = Date.now() + 5000;
  while (process.getActiveResourcesInfo().some((resource) => /^TCP/.test(resource)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
