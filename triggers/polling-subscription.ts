/**
 * subscribeTrigger for a trigger that only polls: poll, hand the batch over, move on only when
 * the handler resolved; a full batch is followed at once by the next poll, an empty one waits
 * the trigger's interval. A failure keeps the position, so the same events come again.
 */
import { settleWithin } from './close-wait.js';
import type { Batch, Deliver, RunningSubscription, TriggerArguments, TriggerDefinition, TriggerEvent } from './definition.js';

const DEFAULT_INTERVAL_MS = 5000;
const RETRY_MAX_MS = 30_000;

export function subscribeByPolling(
  trigger: TriggerDefinition,
  args: TriggerArguments<unknown>,
  start: unknown,
  deliver: Deliver<TriggerEvent, unknown>,
  onError: (error: unknown) => void,
): RunningSubscription {
  const intervalMs = intervalOf(args.config);
  let position = start;
  let closed = false;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) => new Promise<void>((resolve) => ((wake = resolve), (timer = setTimeout(resolve, ms))));

  const loop = async () => {
    while (!closed) {
      let batch: Batch<TriggerEvent, unknown> | undefined;
      try {
        batch = await trigger.poll!(args, position);
        if (closed) return;
        await deliver(batch);
        position = batch.position;
        failures = 0;
      } catch (error) {
        if (closed) return;
        onError(error);
        await sleep(Math.min(RETRY_MAX_MS, 250 * 2 ** failures++));
        continue;
      }
      if (batch.events.length === 0) await sleep(intervalMs);
    }
  };
  const running = loop();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      wake?.();
      await settleWithin(running); // a handler that never settles: its batch comes again next time
    },
  };
}

function intervalOf(config: unknown): number {
  const seconds = (config as { intervalSeconds?: unknown }).intervalSeconds;
  return typeof seconds === 'number' ? seconds * 1000 : DEFAULT_INTERVAL_MS;
}
