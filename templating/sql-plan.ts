import { BoundedCache } from './bounded-cache.js';
import { PgSyntaxError, scanPg, type PgToken } from './pg-parser.js';
import { NamePositionTracker, VALUE_TOKEN } from './sql-name-position.js';
import { NAME_POSITION_FIX, slotForQuoted, type Slot } from './sql-quoted-slot.js';
import { COMMENT_STAND_IN, commentText, standInText } from './sql-stand-ins.js';
import { findTemplateSpans, type TemplateSpan } from './sql-template-spans.js';
import { isCast, isCommentToken, isNPrefix, nextSignificant, quotedKind } from './sql-token-kinds.js';
import { TemplateProblemSignal, type TemplateProblem } from './template-error.js';

/** Where a template's value goes in the SQL sent. */
export interface Hole {
  /** Index into slots: the same expression in the same kind of place reuses its slot ($n). */
  readonly slot: number;
  /** A bare {{ }} in SQL code, not already cast: it may carry its value's type ($n::pg_catalog.int8). */
  readonly typed: boolean;
  /** Followed by `[`: a cast is put in parentheses so the subscript still applies to the value. */
  readonly parenthesise: boolean;
}

/** SQL text with holes, worked out once per distinct SQL text; numbering happens at bind time. */
export interface SqlPlan {
  /** The SQL around the holes: chunks.length === holes.length + 1. */
  readonly chunks: readonly string[];
  readonly holes: readonly Hole[];
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
  const spans = findTemplateSpans(sql);
  const { text, original, standIns } = standInText(sql, spans);
  let tokens: PgToken[];
  try {
    tokens = scanPg(text);
  } catch (error) {
    if (!(error instanceof PgSyntaxError)) throw error;
    // "at or near …" would quote the scanned text (stand-ins included); the location says where.
    throw new TemplateProblemSignal(`PostgreSQL cannot read this SQL: ${error.message.replace(/ at or near .*$/s, '')}`, error.offset === undefined ? undefined : original[error.offset]);
  }
  // The template each stand-in came from, by its offset in the scanned text.
  const spanAt = new Map<number, TemplateSpan>();
  standIns.forEach((at, i) => spanAt.set(at, spans[i] as TemplateSpan));
  const spansIn = (token: PgToken): TemplateSpan[] => {
    const found: TemplateSpan[] = [];
    for (const [at, span] of spanAt) if (at >= token.start && at < token.end) found.push(span);
    return found;
  };

  const tracker = new NamePositionTracker();
  const chunks: string[] = [];
  const holes: Hole[] = [];
  const slots: Slot[] = [];
  const slotByKey = new Map<string, number>();
  let current = '';
  let cursor = 0; // in the SQL written
  let highestPlaceholder = 0;

  // Copies the SQL written up to `until`; between tokens that is space and Handlebars comments.
  const spanStartingAt = new Map(spans.map((span) => [span.start, span]));
  const copyTo = (until: number): void => {
    for (let i = cursor; i < until; ) {
      const span = spanStartingAt.get(i);
      if (span) {
        current += COMMENT_STAND_IN;
        i = span.end;
      } else current += sql[i++];
    }
    cursor = until;
  };
  const hole = (start: number, end: number, key: string, slot: Slot, typed: boolean, parenthesise: boolean): void => {
    copyTo(start);
    let index = slotByKey.get(key);
    if (index === undefined) {
      index = slots.push(slot) - 1;
      slotByKey.set(key, index);
    }
    // $n must not run into a word, a $ or the hole before it ($1::int8$2 would read as one name).
    const previous = current !== '' ? current.at(-1) : chunks.length > 0 ? '0' : undefined;
    chunks.push(isWordChar(previous) ? current + ' ' : current);
    holes.push({ slot: index, typed, parenthesise });
    current = isWordChar(sql[end]) ? ' ' : '';
    cursor = end;
    tracker.saw(VALUE_TOKEN);
  };

  for (let position = 0; position < tokens.length; position++) {
    const token = tokens[position] as PgToken;
    const raw = text.slice(token.start, token.end);
    const start = original[token.start] as number;
    const end = original[token.end] as number;
    const standIn = spanAt.get(token.start - 1);
    if (token.name === 'PARAM' && standIn) {
      const compiled = standIn.compiled;
      if (compiled instanceof TemplateProblemSignal) throw compiled;
      if (compiled.kind !== 'expression') continue;
      const source = sql.slice(standIn.start, standIn.end);
      const after = nextSignificant(text, tokens, position);
      const reason = tracker.namePositionReason(after === '.' ? after : undefined);
      if (reason) throw new TemplateProblemSignal(`${source} is where a name goes (${reason}): ${NAME_POSITION_FIX}`, standIn.start);
      const typed = !isCast(text, tokens, position, after);
      hole(standIn.start, standIn.end, `code:${JSON.stringify(compiled.expr)}`, { kind: 'typed', expr: compiled.expr }, typed, after === '[');
      continue;
    }
    const inside = spansIn(token);
    if (isCommentToken(token)) {
      copyTo(start);
      current += commentText(sql, start, end, inside, token.name === 'SQL_COMMENT');
      cursor = end;
      continue;
    }
    const quoted = quotedKind(token, raw);
    if (isNPrefix(text, token, tokens[position + 1], spansIn)) continue; // N'…' with templates: the hole takes the N too
    if (quoted && inside.length > 0) {
      const previous = tokens[position - 1];
      const withN = previous !== undefined && isNPrefix(text, previous, token, spansIn);
      const slot = slotForQuoted(sql, { start, end, kind: quoted }, inside, tracker.typeBeforeLiteral());
      const key = slot.kind === 'typed' ? `quoted:${JSON.stringify(slot.expr)}` : `text:${JSON.stringify(slot.parts)}`;
      hole(withN ? (original[previous.start] as number) : start, end, key, slot, false, false);
      continue;
    }
    // A stand-in is a parameter, or content of a string, identifier or comment; never part of another token.
    if (inside.length > 0) throw new TemplateProblemSignal(`${sql.slice(inside[0]!.start, inside[0]!.end)} cannot be placed in this SQL`, inside[0]!.start);
    copyTo(end);
    if (token.name === 'PARAM') {
      highestPlaceholder = Math.max(highestPlaceholder, Number(raw.slice(1)));
      tracker.saw(VALUE_TOKEN);
    } else if (token.name === 'TYPECAST') {
      tracker.saw(':');
      tracker.saw(':');
    } else if (quoted || token.name === 'ICONST' || token.name === 'FCONST') {
      tracker.saw(VALUE_TOKEN);
    } else {
      tracker.saw(/^[A-Za-z_\u0080-\uffff]/.test(raw) ? raw.toUpperCase() : raw);
    }
  }
  copyTo(sql.length);
  chunks.push(current);
  return { chunks, holes, slots, highestPlaceholder };
}

function isWordChar(char: string | undefined): boolean {
  return char !== undefined && /[\w$\u0080-\uFFFF]/.test(char);
}
