/**
 * A host worker in its own process: subscribes to a trigger and prints one JSON line per batch
 * it handles ({"ids": [...]}) and {"ready": true} once subscribed. With mode "hang" the first batch
 * after `hangAfter` acknowledged ones (default 0) is received and printed but never acknowledged
 * (the parent then kills the process). Input: env SUBSCRIBER_JOB = JSON { key, connection, config, mode, hangAfter }.
 */
import { subscribeTrigger, type TriggerEvent } from '../../../triggers/index.js';

const job = JSON.parse(process.env.SUBSCRIBER_JOB!) as { key: string; connection: object; config: object; mode?: 'ack' | 'hang'; hangAfter?: number };
let acknowledged = 0;
const print = (value: object) => process.stdout.write(JSON.stringify(value) + '\n');

await subscribeTrigger(job.key, { connection: job.connection, config: job.config, onError: () => undefined }, async (events: TriggerEvent[]) => {
  print({ ids: events.map((e) => e.id), keys: events.map((e) => (e.key as { id: number } | null)?.id) });
  if (job.mode === 'hang' && acknowledged++ >= (job.hangAfter ?? 0)) await new Promise(() => undefined);
});
print({ ready: true });
