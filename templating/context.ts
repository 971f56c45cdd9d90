/** What a template can see: the trigger's data, earlier steps' outputs by name, and the step's start time. */
export interface TemplateContext {
  trigger?: unknown;
  steps?: Record<string, unknown>;
  now?: Date;
}

/** The outcome of looking a path up: `found: false` is a missing path, never a silent undefined. */
export type Lookup = { found: true; value: unknown } | { found: false };

const MISSING: Lookup = { found: false };

/**
 * Walks `segments` through own properties only, so prototype members (`constructor`,
 * `__proto__`, `toString`) never resolve: trigger data is untrusted and a template must not
 * reach functions or shared prototypes. An own property holding `undefined` counts as missing.
 */
export function lookupPath(context: TemplateContext, segments: readonly string[]): Lookup {
  const root = segments[0];
  let current: unknown;
  if (root === 'trigger') current = context.trigger;
  else if (root === 'steps') current = context.steps;
  else if (root === 'now') current = context.now;
  else return MISSING;
  if (current === undefined) return MISSING;

  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (current === null || typeof current !== 'object' || segment === '__proto__') return MISSING;
    if (!Object.hasOwn(current, segment)) return MISSING;
    current = (current as Record<string, unknown>)[segment];
    if (current === undefined) return MISSING;
  }
  return { found: true, value: current };
}

/** `trigger.items.[0].id` style, for messages: plain identifiers dotted, anything else in brackets. */
export function displayPath(segments: readonly string[]): string {
  return segments.map((s) => (/^[A-Za-z_$][\w$]*$/.test(s) ? s : `[${s}]`)).join('.');
}
