import { BoundedCache } from './bounded-cache.js';
import { compileSpan } from './expression.js';
import { NamePositionTracker, VALUE_TOKEN } from './sql-name-position.js';
import { NAME_POSITION_FIX, slotForQuoted, type Slot } from './sql-quoted-slot.js';
import { scanSql } from './sql-scanner.js';
import type { Span, SqlToken } from './sql-tokens.js';
import { TemplateProblemSignal, type TemplateProblem } from './template-error.js';

/** SQL text with holes, worked out once per distinct SQL text; numbering happens at bind time. */
export interface SqlPlan {
  /** The SQL around the holes: chunks.length === holes.length + 1. */
  readonly chunks: readonly string[];
  /** For each hole, the index of the slot it binds (the same expression reuses its slot). */
  readonly holes: readonly number[];
  readonly slots: readonly Slot[];
  /** The highest $n the author wrote, to check it against the parameters given. */
  readonly highestPlaceholder: number;
  readonly problem?: TemplateProblem;
}

const plans = new BoundedCache<SqlPlan>(500);

export function sqlPlanFor(sql: string): SqlPlan {
  return plans.getOrCompute(sql, planOrProblem);
}

function planOrProblem(sql: string): SqlPlan {
  try {
    return buildPlan(sql);
  } catch (error) {
    if (error instanceof TemplateProblemSignal) return { chunks: [sql], holes: [], slots: [], highestPlaceholder: 0, problem: error };
    throw error;
  }
}

function buildPlan(sql: string): SqlPlan {
  const tokens = scanSql(sql);
  const tracker = new NamePositionTracker();
  const chunks: string[] = [];
  const holes: number[] = [];
  const slots: Slot[] = [];
  const slotByKey = new Map<string, number>();
  let current = '';
  let highestPlaceholder = 0;

  // Replaces [token.start, token.end) with a hole, keeping $n apart from neighbouring words.
  const hole = (token: SqlToken, key: string, slot: Slot): void => {
    let index = slotByKey.get(key);
    if (index === undefined) {
      index = slots.push(slot) - 1;
      slotByKey.set(key, index);
    }
    chunks.push(isWordChar(sql[token.start - 1]) ? current + ' ' : current);
    holes.push(index);
    current = isWordChar(sql[token.end]) ? ' ' : '';
    tracker.saw(VALUE_TOKEN);
  };

  tokens.forEach((token, position) => {
    const raw = sql.slice(token.start, token.end);
    switch (token.kind) {
      case 'template': {
        const span = compileSpan(raw, token.start);
        if (span.kind === 'comment') return; // renders nothing, as in Handlebars
        const reason = tracker.namePositionReason(nextSignificant(sql, tokens, position));
        if (reason) throw new TemplateProblemSignal(`${raw} is where a name goes (${reason}): ${NAME_POSITION_FIX}`, token.start);
        return hole(token, `expr:${raw}`, { kind: 'typed', expr: span.expr });
      }
      case 'string':
      case 'identifier':
      case 'dollar':
        if (token.templates.length > 0) {
          const slot = slotForQuoted(sql, token, tracker.typeBeforeLiteral());
          // '{{x}}' and a bare {{x}} are the same value: share one $n.
          const only = token.templates[0] as Span;
          const key = slot.kind === 'typed' ? `expr:${sql.slice(only.start, only.end)}` : `literal:${raw}`;
          return hole(token, key, slot);
        }
        current += raw;
        return tracker.saw(VALUE_TOKEN);
      case 'placeholder':
        highestPlaceholder = Math.max(highestPlaceholder, token.index);
        current += raw;
        return tracker.saw(VALUE_TOKEN);
      case 'word':
        current += raw;
        return tracker.saw(token.upper);
      case 'punct':
        current += raw;
        return tracker.saw(raw);
      case 'number':
        current += raw;
        return tracker.saw(VALUE_TOKEN);
      default:
        current += raw; // spaces and comments: copied untouched, templates in comments included
    }
  });
  chunks.push(current);
  return { chunks, holes, slots, highestPlaceholder };
}

/** The next token that is not space or a comment, as the tracker sees it (punctuation only). */
function nextSignificant(sql: string, tokens: readonly SqlToken[], position: number): string | undefined {
  for (let i = position + 1; i < tokens.length; i++) {
    const token = tokens[i] as SqlToken;
    if (token.kind === 'space' || token.kind === 'comment') continue;
    return token.kind === 'punct' ? sql[token.start] : undefined;
  }
  return undefined;
}

function isWordChar(char: string | undefined): boolean {
  return char !== undefined && /[\w$\u0080-\uFFFF]/.test(char);
}
