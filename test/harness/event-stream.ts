/**
 * A Server-Sent Events reader for the playground's trigger stream, as a page's EventSource reads
 * it: messages are collected as they arrive; close() drops the connection like a closed tab.
 */
export interface StreamMessage {
  event: string;
  data: any;
}

export interface EventStreamReader {
  status: number;
  contentType: string | null;
  messages: StreamMessage[];
  /** Everything received, raw (to look for secrets). */
  text(): string;
  /** The server ended the stream. */
  ended(): boolean;
  /** Waits for the nth (0-based) message named `event`. */
  next(event: string, index?: number, timeoutMs?: number): Promise<any>;
  close(): void;
}

export async function openEventStream(url: URL, headers: Record<string, string>): Promise<EventStreamReader> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const messages: StreamMessage[] = [];
  let raw = '';
  let buffer = '';
  let done = false;
  const pump = async () => {
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) break;
        const chunk = decoder.decode(value, { stream: true });
        raw += chunk;
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          const event = lines.find((line) => line.startsWith('event: '))?.slice(7);
          const data = lines.filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n');
          if (event) messages.push({ event, data: JSON.parse(data) });
        }
      }
    } catch {
      // aborted by close()
    } finally {
      done = true;
    }
  };
  void pump();
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    messages,
    text: () => raw,
    ended: () => done,
    async next(event, index = 0, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.filter((m) => m.event === event)[index];
        if (found) return found.data;
        if (Date.now() > deadline) {
          throw new Error(`no "${event}" message #${index} within ${timeoutMs} ms; received: ${JSON.stringify(messages).slice(0, 2000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    close: () => controller.abort(),
  };
}
