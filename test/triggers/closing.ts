/** For close() tests: whether a subscription stops within a bound (a hung handler must not keep it). */
export async function closeOutcome(subscription: { close(): Promise<void> }, ms = 40_000): Promise<string> {
  let bound: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    subscription.close().then(() => 'closed'),
    new Promise<string>((resolve) => (bound = setTimeout(() => resolve(`still waiting after ${ms / 1000} s`), ms))),
  ]);
  clearTimeout(bound);
  return outcome;
}
