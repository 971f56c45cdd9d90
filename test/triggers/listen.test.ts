/** listen: payloads parsed when JSON, any channel name (quoted), a throwing handler gets the batch again, no polling. */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { pollTrigger, sampleEvents, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { listenLimits } from '../../triggers/listen.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, waitFor } from './helpers.js';

const db = useTestDatabase('listen');

async function listening(channel: string): Promise<void> {
  await waitFor(async () => (await db.sql('SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query = $1', [`LISTEN "${channel.replace(/"/g, '""')}"`])).length > 0, 'LISTEN');
}

test('payloads arrive parsed when JSON, as text otherwise; a channel name with quotes and spaces works', async () => {
  const channel = 'Order "events" ü';
  const events: TriggerEvent[] = [];
  const subscription = await subscribeTrigger('listen', { connection: db.config, config: { channel } }, (batch) => void events.push(...batch));
  try {
    await listening(channel);
    await db.sql('SELECT pg_notify($1, $2), pg_notify($1, $3)', [channel, '{"id": 42}', 'plain words']);
    await waitFor(() => events.length >= 2, 'two notifications');
    expect(events.map((e) => e.payload)).toEqual([{ id: 42 }, 'plain words']);
    expect(events[0]).toMatchObject({ channel, text: '{"id": 42}', senderPid: expect.any(Number) });
    expect(events[0]!.id).not.toBe(events[1]!.id);
  } finally {
    await subscription.close();
  }
});

test('parse: text keeps JSON as text; a throwing handler gets the same batch again', async () => {
  const events: TriggerEvent[][] = [];
  const subscription = await subscribeTrigger('listen', { connection: db.config, config: { channel: 'raw', parse: 'text' }, onError: () => undefined }, (batch) => {
    events.push(batch);
    if (events.length === 1) throw new Error('flow failed');
  });
  try {
    await listening('raw');
    await db.sql("SELECT pg_notify('raw', '[1,2]')");
    await waitFor(() => events.length >= 2, 'redelivery');
    expect(events[1]).toEqual(events[0]);
    expect(events[0]![0]!.payload).toBe('[1,2]');
  } finally {
    await subscription.close();
  }
});

test('listen cannot be polled, a too long channel name is refused naming the field, and sampleEvents explains', async () => {
  expect((await failureOf(pollTrigger('listen', { connection: db.config, config: { channel: 'x' } }))).problems).toEqual(['trigger does not support polling']);
  const long = await failureOf(sampleEvents('listen', { connection: db.config, config: { channel: 'é'.repeat(40) } }));
  expect(long.problems).toEqual(['config.channel is longer than 63 bytes']);
  expect((await sampleEvents('listen', { connection: db.config, config: { channel: 'x' } })).notes.join(' ')).toMatch(/pg_notify\('x'/);
});

test('subscribeTrigger resolves once LISTEN is in place: a NOTIFY sent right after it arrives', async () => {
  for (const channel of ['ready_one', 'ready_two', 'ready_three']) {
    const events: TriggerEvent[] = [];
    const subscription = await subscribeTrigger('listen', { connection: db.config, config: { channel } }, (batch) => void events.push(...batch));
    try {
      await db.sql('SELECT pg_notify($1, $2)', [channel, 'right after']);
      await waitFor(() => events.length === 1, `the NOTIFY on ${channel}`, 5000);
      expect(events[0]!.payload).toBe('right after');
    } finally {
      await subscription.close();
    }
  }
});

test('a first connection that fails: subscribeTrigger still resolves, the failure goes to onError, and retries go on', async () => {
  const errors: unknown[] = [];
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  server.close(); // nothing listens there now: connection refused
  const subscription = await subscribeTrigger('listen', { connection: { ...db.config, port, connectTimeoutMs: 2000 }, config: { channel: 'nowhere' }, onError: (e) => void errors.push(e) }, () => {});
  try {
    expect((errors[0] as { code?: string }).code).toBe('CONNECTION_REFUSED');
    await waitFor(() => errors.length >= 2, 'a retry');
  } finally {
    await subscription.close();
  }
});

test('a flood while the handler fails: batches of at most 1,000, the back-off holds, the server keeps the backlog, and every notification arrives once it recovers (review R32)', async () => {
  const channel = 'flood';
  const total = 50_000;
  const batches: TriggerEvent[][] = [];
  let failing = true;
  const subscription = await subscribeTrigger('listen', { connection: db.config, config: { channel, parse: 'text' }, onError: () => undefined }, (batch) => {
    batches.push(batch);
    if (failing) throw new Error('downstream unavailable');
  });
  try {
    await listening(channel);
    // 50,000 distinct 1 kB payloads (~50 MB): more than the host queue (10,000 events) and the socket buffers hold.
    await db.sql(`SELECT pg_notify($1, lpad(i::text, 1000, '0')) FROM generate_series(1, ${total}) i`, [channel]);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Failing for 3 s: with the back-off (0.25, 0.5, 1, 2 s) a handful of hand-overs, not one per arrival.
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(batches.length).toBeLessThanOrEqual(6);
    // Reading paused: the rest waits in the server's notification queue, not in host memory.
    const [usage] = await db.sql('SELECT pg_notification_queue_usage() AS used');
    expect(Number(usage!.used)).toBeGreaterThan(0);
    failing = false;
    await waitFor(() => new Set(batches.flat().map((event) => event.text)).size === total, 'every notification', 60_000);
    expect(Math.max(...batches.map((batch) => batch.length))).toBeLessThanOrEqual(1000);
    // First deliveries in arrival order; a failed batch comes again first.
    const firstSeen: number[] = [];
    const seen = new Set<string>();
    for (const event of batches.flat()) {
      const text = String(event.text);
      if (!seen.has(text)) (seen.add(text), firstSeen.push(Number(text)));
    }
    expect(firstSeen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  } finally {
    await subscription.close();
  }
}, 120_000);

test('a paused subscriber never holds more than its share of the server\'s notification queue: it reads again, drops the oldest, says how many, and delivers the rest (review R45)', async () => {
  const channel = 'flood_shed';
  const total = 50_000;
  const saved = { ...listenLimits };
  // The server's queue is 8 GB by default: any share of it is more than a test can fill, so the share is made tiny.
  Object.assign(listenLimits, { maxServerQueueUsage: 1e-9, checkEveryMs: 200 });
  const handled: TriggerEvent[][] = [];
  const errors: unknown[] = [];
  let failing = true;
  const subscription = await subscribeTrigger('listen', { connection: db.config, config: { channel, parse: 'text' }, onError: (error) => void errors.push(error) }, (batch) => {
    if (failing) throw new Error('webhook target down');
    handled.push(batch);
  });
  const droppedCount = () =>
    errors
      .filter((error) => (error as { code?: string }).code === 'LISTEN_BACKLOG_DROPPED')
      .reduce<number>((sum, error) => sum + Number(/^(\d+) notification/.exec((error as Error).message)?.[1]), 0);
  const delivered = () => handled.flat().map((event) => String(event.text));
  try {
    await listening(channel);
    await db.sql(`SELECT pg_notify($1, lpad(i::text, 1000, '0')) FROM generate_series(1, ${total}) i`, [channel]);
    // Still failing: the backlog is read from the server and the oldest dropped, with their number reported.
    await waitFor(() => droppedCount() + listenLimits.pauseAt.events >= total, 'the backlog read and the oldest dropped', 60_000);
    expect(delivered()).toEqual([]);
    expect(errors.find((error) => (error as { code?: string }).code === 'LISTEN_BACKLOG_DROPPED')).toMatchObject({ code: 'LISTEN_BACKLOG_DROPPED', message: expect.stringMatching(/dropped, the oldest first/) });
    failing = false;
    await waitFor(() => delivered().includes(String(total).padStart(1000, '0')), 'the newest delivered', 60_000);
    // Every notification is handled once or counted as dropped: none is lost without a word, the newest are kept.
    await waitFor(() => droppedCount() + delivered().length >= total, 'every notification accounted for', 10_000);
    const order = delivered().map(Number);
    expect(droppedCount() + order.length).toBe(total);
    expect(order).toEqual(Array.from({ length: order.length }, (_, i) => total - order.length + 1 + i));
  } finally {
    Object.assign(listenLimits, saved);
    await subscription.close();
  }
}, 120_000);
