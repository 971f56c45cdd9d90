/**
 * Where in SQL a bare {{ }} would stand for a name (table, column, alias, type) rather than a
 * value. A bound $n can never be a name, so these are refused with a clear message instead
 * of a confusing syntax error from the server. This is about the message, not safety: a
 * template is always bound, never pasted, so a position missed here still cannot inject.
 */
const NAME_AFTER = new Set([
  'FROM', 'JOIN', 'INTO', 'UPDATE', 'TABLE', 'INDEX', 'VIEW', 'SEQUENCE', 'SCHEMA', 'TRUNCATE', 'ONLY',
  'EXISTS', 'AS', 'BY', 'COLUMN', 'CONSTRAINT', 'TRIGGER', 'FUNCTION', 'PROCEDURE', 'TYPE', 'DOMAIN',
]);

/** `ON` names a table only in statements like CREATE INDEX … ON t or GRANT … ON t. */
const ON_NAMES_TABLE_IN = new Set(['INDEX', 'GRANT', 'REVOKE', 'TRIGGER', 'POLICY']);

/** Inside EXTRACT(x FROM {{v}}), SUBSTRING(s FROM {{n}}) and friends, FROM takes a value. */
const FROM_TAKES_VALUE_IN = new Set(['EXTRACT', 'SUBSTRING', 'TRIM', 'OVERLAY', 'POSITION']);

/**
 * `INTERVAL '…'`, `DATE '…'`: PostgreSQL accepts only a string constant after a type name, so
 * such a literal cannot become $n. The author is told to write a cast ('…'::interval) instead.
 */
const TYPE_BEFORE_LITERAL = new Set([
  'INTERVAL', 'DATE', 'TIME', 'TIMESTAMP', 'TIMESTAMPTZ', 'TIMETZ', 'JSON', 'JSONB', 'UUID', 'INET', 'CIDR', 'NUMERIC',
  'DECIMAL', 'INT', 'INTEGER', 'BIGINT', 'SMALLINT', 'REAL', 'TEXT', 'VARCHAR', 'BOOLEAN', 'BOOL', 'BYTEA', 'XML',
]);

/** Marks a token that is neither a keyword nor punctuation: a literal, number, $n, name. */
export const VALUE_TOKEN = '#value';

/** Follows the significant tokens (not spaces or comments) before each template. */
export class NamePositionTracker {
  private last = '';
  private beforeLast = '';
  private statementWords = new Set<string>();
  private parenOpeners: string[] = [];

  /** `token`: an upper-cased word, a punctuation character, or VALUE_TOKEN. */
  saw(token: string): void {
    if (token === '(') this.parenOpeners.push(this.last);
    else if (token === ')') this.parenOpeners.pop();
    else if (token === ';') {
      this.statementWords.clear();
      this.parenOpeners = [];
    } else if (ON_NAMES_TABLE_IN.has(token)) this.statementWords.add(token);
    this.beforeLast = this.last;
    this.last = token;
  }

  /** The type name right before a literal (`INTERVAL '…'`), if there is one. */
  typeBeforeLiteral(): string | undefined {
    return TYPE_BEFORE_LITERAL.has(this.last) ? this.last : undefined;
  }

  /** Why a template here stands for a name, or undefined when it takes a value. */
  namePositionReason(nextSignificant: string | undefined): string | undefined {
    const { last } = this;
    if (last === '.' || nextSignificant === '.') return 'next to "."';
    if (last === ':' && this.beforeLast === ':') return 'after "::", where a type name goes';
    if (last === 'ON') {
      for (const word of this.statementWords) return `after ${word} … ON`;
      return undefined;
    }
    if (!NAME_AFTER.has(last)) return undefined;
    if (last === 'FROM' && (this.beforeLast === 'DISTINCT' || FROM_TAKES_VALUE_IN.has(this.parenOpeners.at(-1) ?? ''))) {
      return undefined;
    }
    return `after ${last}`;
  }
}
