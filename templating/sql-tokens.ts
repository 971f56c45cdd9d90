/** A `{{ … }}` found in SQL: [start, end) offsets in the SQL text. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/**
 * The pieces of SQL text that matter for templating. Offsets are [start, end) into the text;
 * concatenating every token's slice gives the SQL back unchanged.
 */
export type SqlToken =
  | { readonly kind: 'space' | 'comment' | 'number' | 'punct'; readonly start: number; readonly end: number }
  | { readonly kind: 'word'; readonly start: number; readonly end: number; readonly upper: string }
  | { readonly kind: 'placeholder'; readonly start: number; readonly end: number; readonly index: number }
  | { readonly kind: 'template'; readonly start: number; readonly end: number }
  | QuotedToken;

export interface QuotedToken {
  readonly kind: 'string' | 'identifier' | 'dollar';
  readonly start: number;
  readonly end: number;
  /** Where the content starts and ends (after the prefix and opening quote, before the closing one). */
  readonly contentStart: number;
  readonly contentEnd: number;
  /** E'…' strings: backslash escapes apply. */
  readonly backslashEscapes: boolean;
  /** Upper-cased prefix: '' | 'E' | 'N' | 'B' | 'X' | 'U&'. */
  readonly prefix: string;
  readonly terminated: boolean;
  readonly templates: readonly Span[];
}
