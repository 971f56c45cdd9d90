import { PgActionsError } from '../connection/errors/index.js';

/**
 * Every templating failure is a TEMPLATE_ERROR whose message starts with the field it came
 * from ("input.parameters[0]: …"), so a UI can point at the right box.
 */
export function templateError(fieldPath: string, problem: string, location?: { line: number; column: number }): PgActionsError {
  const message = `${fieldPath}: ${problem}`;
  return new PgActionsError('TEMPLATE_ERROR', location ? { message, problems: [message], location } : { message, problems: [message] });
}

/**
 * A problem found while parsing, before the field is known. Parsed results are cached by text
 * and shared between fields, so the problem is stored and turned into an error at use.
 */
export interface TemplateProblem {
  readonly problem: string;
  /** 0-based offset in the template text, turned into line/column for the error. */
  readonly offset?: number;
}

export function problemToError(fieldPath: string, text: string, found: TemplateProblem): PgActionsError {
  if (found.offset === undefined) return templateError(fieldPath, found.problem);
  const location = lineAndColumn(text, found.offset);
  return templateError(fieldPath, `${found.problem} (line ${location.line}, column ${location.column})`, location);
}

/** Thrown inside parsers and caught where the text is cached. */
export class TemplateProblemSignal extends Error implements TemplateProblem {
  constructor(readonly problem: string, readonly offset?: number) {
    super(problem);
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
