/**
 * The "external system" of the Sync Data workflow: a local HTTP endpoint on 127.0.0.1 (a free
 * port) that accepts POSTed orders and acknowledges the ids it stored, as a real API would.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Receiver {
  /** POST target, e.g. http://127.0.0.1:49152/orders */
  url: string;
  /** Every order received so far. */
  readonly received: unknown[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: unknown[] = [];
  const server = createServer((request, response) => {
    void readBody(request).then(
      (body) => {
        const orders = (JSON.parse(body) as { orders?: { id: number }[] }).orders ?? [];
        received.push(...orders);
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ accepted: orders.length, ids: orders.map((order) => order.id) }));
      },
      (error: unknown) => {
        response.writeHead(400, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/orders`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
