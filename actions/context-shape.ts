/**
 * Trigger data and earlier steps' outputs come from elsewhere (a webhook body, a host's objects).
 * Before any template reads them they must be data a JSON encoder can walk: no deeper than
 * MAX_CONTEXT_DEPTH levels and no cycles, else INVALID_INPUT naming the field, instead of a
 * stack overflow or "circular structure" later (mislabelled as the database's error). Walked
 * with an explicit stack, so the check itself cannot overflow.
 */
export const MAX_CONTEXT_DEPTH = 64;

interface Frame {
  value: object;
  key: string;
  parent: Frame | undefined;
  depth: number;
}

/** The first problem with `value`'s shape, naming where it is (`field` is e.g. "context.trigger"). */
export function contextShapeProblem(value: unknown, field: string, maxDepth = MAX_CONTEXT_DEPTH): string | undefined {
  if (!isContainer(value)) return undefined;
  // Most trigger data is a few levels of plain values: no cycle can fit in it (a cycle is endlessly deep).
  if (maxDepth >= SHALLOW_LEVELS && isShallow(value, SHALLOW_LEVELS)) return undefined;
  const onPath = new Set<object>();
  // A value shared by several parents (possible from a host, not from JSON) is walked again only when met deeper.
  const walkedAt = new Map<object, number>();
  const stack: Array<Frame | { leave: object }> = [{ value, key: '', parent: undefined, depth: 0 }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if ('leave' in item) {
      onPath.delete(item.leave);
      continue;
    }
    if (onPath.has(item.value)) return `${pathOf(field, item)} refers back to an enclosing value (a cycle); give plain JSON data`;
    if (item.depth > maxDepth) return `${pathOf(field, item)} nests more than ${maxDepth} levels deep; flatten the data (at most ${maxDepth} levels)`;
    if ((walkedAt.get(item.value) ?? Infinity) <= item.depth) continue;
    walkedAt.set(item.value, item.depth);
    onPath.add(item.value);
    stack.push({ leave: item.value });
    for (const [key, child] of Object.entries(item.value)) {
      if (isContainer(child)) stack.push({ value: child, key: Array.isArray(item.value) ? `[${key}]` : `.${key}`, parent: item, depth: item.depth + 1 });
    }
  }
  return undefined;
}

const SHALLOW_LEVELS = 3;

/** Whether no container sits more than `levels` levels below `value` (checked without the bookkeeping of the full walk). */
function isShallow(value: object, levels: number): boolean {
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    const child = (value as Record<string, unknown>)[key];
    if (isContainer(child) && (levels === 0 || !isShallow(child, levels - 1))) return false;
  }
  return true;
}

/** Arrays and plain objects; Dates, Buffers and other class instances are passed through as they are. */
function isContainer(value: unknown): value is object {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return true;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/** field.a.b[0]…, shortened in the middle: a path 65 levels long is no help in a message. */
function pathOf(field: string, frame: Frame): string {
  const keys: string[] = [];
  for (let at: Frame | undefined = frame; at?.parent; at = at.parent) keys.push(at.key);
  keys.reverse();
  const shown = keys.length > 8 ? [...keys.slice(0, 4), '…', ...keys.slice(-2)] : keys;
  return field + shown.join('');
}
