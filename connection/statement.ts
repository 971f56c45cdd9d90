/**
 * One statement as a node-postgres Submittable, so a step costs one network round trip:
 *   [Parse of named statements not yet on the connection] [BEGIN READ ONLY | BEGIN]
 *   [set_config(…, true)] <statement> [probe] [reset…] [ROLLBACK] [check] [tail] Sync
 * all written at once. The statement always goes through the extended protocol (Parse/Bind),
 * so values are bound server-side and only one statement can run. The connection's ResultGate
 * charges rows against the cap before they are parsed; past it the owner is told to abort.
 */
import type { Connection, Submittable } from 'pg';
import { PgActionsError } from './errors/index.js';
import { gateOf, type ResultBudget, type ResultGate } from './result-gate.js';
import { ownCountOf, readingOf, readProbeRow, type Probe, type SessionReading, type Sql } from './session-guard.js';
import { expandsWhenParsed, structureCost } from './types.js';
import { bindExecuteBytes, writeFixed, writePipeline, writeUnnamed, type PgConnection } from './wire.js';

export interface StatementPlan {
  text: string;
  values: readonly unknown[];
  /**
   * Statements written before the main one, in the same round trip (fixed SQL, no values). A
   * named one is parsed once per connection (its Parse written first in the round trip, before
   * anything runs), then only bound.
   */
  before: readonly Sql[];
  /**
   * Written right after the main one: they commit its transaction (deferred triggers run there), so
   * the probe after them reads what those did. A failure after them comes after the commit.
   */
  commit?: readonly Sql[];
  /** Statements written after the main one (skipped by the server if anything failed). */
  after: readonly Sql[];
  /** The round trip commits the statement (no transaction is left for the owner to roll back). */
  commitsItself?: boolean;
  /**
   * Written after `after`: a statement that fails only when the session needs a reset that costs
   * too much to send every time (behind a transaction pooler). Its failure is not the step's: the
   * step completes with `needsReset` set, its transaction still open (aborted) on the same server
   * connection, for the owner to reset (the server skips `tail`).
   */
  check?: Sql;
  /** Written after `after` and `check`, last (rows ignored). */
  tail?: readonly Sql[];
  /**
   * Written right after the statement, in its transaction; its one row becomes `sessionReading`.
   * With a name it is parsed once per connection and only bound afterwards (no parse or plan per step),
   * and its unnamed `check` follows it: the reading counts only when the check says nothing was forged.
   */
  probe?: Probe;
  /**
   * Index (before, statement, commit… counted from 0) of the statement whose completion makes the
   * step's outcome final: a read-only step's statement, or a committed step's COMMIT (deferred
   * triggers fail it). A Flush follows it, so the server sends the result then, and `early` resolves
   * there when `settlesEarly` agrees; what follows decides only the session's fate.
   */
  outcomeAt?: number;
  settlesEarly?: (outcome: StatementOutcome) => boolean;
  maxResultBytes: number;
  /** Count rows without keeping them (the caller only needs the count): no cap applies. */
  discardRows: boolean;
  typeParser: (oid: number) => (text: string) => unknown;
  /** Told how much has arrived, about every PROGRESS_EVERY_BYTES (for a progress display). */
  onProgress?: (received: ResultProgress) => void;
}

export interface ResultProgress {
  rows: number;
  bytes: number;
}

const PROGRESS_EVERY_BYTES = 1 << 20;

export interface StatementOutcome {
  command: string;
  rowCount: number;
  rows: Record<string, unknown>[];
  fields: { name: string; dataTypeID: number }[];
}

interface FieldDescription {
  name: string;
  dataTypeID: number;
}

/**
 * Bind (unnamed portal, no parameters, text results) and Execute of a named statement, as the
 * protocol spells them: written as one constant buffer per name rather than serialised per step.
 */
const boundStatements = new Map<string, Buffer>();

function bindAndExecute(name: string): Buffer {
  let bytes = boundStatements.get(name);
  if (!bytes) boundStatements.set(name, (bytes = bindExecuteBytes(name)));
  return bytes;
}

function duplicateName(fields: readonly FieldDescription[]): string | undefined {
  const seen = new Set<string>();
  for (const { name } of fields) {
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

function duplicateColumnError(name: string, query: string, committed: boolean): PgActionsError {
  return new PgActionsError('INVALID_INPUT', {
    message: `The result has two columns named "${name}"; a row keeps one value per name, so one would be lost.${committed ? ' The statement was committed all the same (it ran as its own transaction).' : ''}`,
    problems: [`input.query must give each result column a distinct name (two are named "${name}")`],
    fixes: [
      `Name the columns apart with AS, e.g. SELECT a.id AS a_id, b.id AS b_id …`,
      ...(committed ? ['Check what the statement changed before running it again: it was committed, and would be a second time.'] : []),
    ],
    query,
  });
}

/** A value of the result the reader could not turn into JavaScript (a bug of ours, not of the data). */
function unreadableValue(field: FieldDescription, error: unknown, query: string): PgActionsError {
  return new PgActionsError('RESULT_UNREADABLE', {
    message: `The value of column "${field.name}" (type oid ${field.dataTypeID}) could not be read (${error instanceof Error ? error.message : String(error)}); the step was stopped.`,
    cause: error,
    query,
  });
}

interface RowShape {
  fields: readonly FieldDescription[];
  parsers: ((text: string) => unknown)[];
  expanding: boolean[];
  emptyRow: Record<string, null>;
  duplicate: string | undefined;
}

/**
 * Result shapes by SQL text: a step that runs the same SQL again reuses its parsers (checked column by
 * column). Bounded by the characters of the texts it keeps, not only their number: generated SQL with
 * inline values can be a megabyte per text, and a long text's own parse costs far more than its shape.
 */
const shapes = new Map<string, RowShape>();
const MAX_SHAPES = 500;
const MAX_CACHED_TEXT = 16 * 1024;
const MAX_CACHED_CHARS = 1024 * 1024;
let cachedChars = 0;

function shapeOf(plan: StatementPlan, fields: readonly FieldDescription[]): RowShape {
  const cached = shapes.get(plan.text);
  if (cached && sameColumns(cached.fields, fields)) return cached;
  const shape: RowShape = {
    fields: fields.map(({ name, dataTypeID }) => ({ name, dataTypeID })),
    parsers: fields.map((field) => plan.typeParser(field.dataTypeID)),
    expanding: fields.map((field) => expandsWhenParsed(field.dataTypeID)),
    // Own properties first, so a column named "__proto__" is a plain value, not a prototype.
    emptyRow: Object.fromEntries(fields.map((field) => [field.name, null])),
    duplicate: undefined,
  };
  if (Object.keys(shape.emptyRow).length < fields.length) shape.duplicate = duplicateName(fields);
  if (plan.text.length > MAX_CACHED_TEXT) return shape;
  if (cached) {
    shapes.delete(plan.text);
    cachedChars -= plan.text.length;
  }
  if (shapes.size >= MAX_SHAPES || cachedChars + plan.text.length > MAX_CACHED_CHARS) {
    shapes.clear();
    cachedChars = 0;
  }
  shapes.set(plan.text, shape);
  cachedChars += plan.text.length;
  return shape;
}

/** What the shape cache holds now: its bounds keep memory bounded, and a test checks them. */
export function shapeCacheSize(): { texts: number; chars: number } {
  return { texts: shapes.size, chars: cachedChars };
}

function sameColumns(a: readonly FieldDescription[], b: readonly FieldDescription[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.name !== b[i]!.name || a[i]!.dataTypeID !== b[i]!.dataTypeID) return false;
  return true;
}

const MAX_PARAMETERS = 65535;

/** Per connection, the named statements it has parsed (each Parse once per connection). */
const prepared = new WeakMap<object, Set<string>>();

/** How many named statements pg-actions has parsed on this client's connection (what the probe should count). */
export function preparedCount(client: object): number {
  return prepared.get((client as { connection?: object }).connection ?? client)?.size ?? 0;
}

export class StatementRun implements Submittable {
  /** Settles when the whole round trip is over (ReadyForQuery), or at the first error. */
  readonly done: Promise<StatementOutcome>;
  /** Resolves (never rejects) once the step's outcome is final, before the rest of the round trip (plan.outcomeAt). */
  readonly early: Promise<StatementOutcome>;
  /** `early` resolved: the step succeeded; what is left of the round trip only decides the session's fate. */
  settledEarly = false;
  /** Set when the byte cap was passed: the owner must discard the connection. */
  overflowed = false;
  /** Set when the session's message stream is out of step (COPY FROM STDIN): the owner must close it. */
  broken = false;
  /**
   * Where the error came: before the statement (its index is before.length: our BEGIN, limits), at
   * the statement itself, or after it (the probe, the reset, ROLLBACK) — 'committed' when after the
   * plan's `commit`: the statement's work stands.
   */
  failedAt: 'before' | 'statement' | 'after' | 'committed' | undefined;
  /** What the probe read, when the plan had one and everything before it succeeded. */
  sessionReading: SessionReading | undefined;
  /** The plan's check failed: the session needs its reset, in the transaction the check left open. */
  needsReset = false;
  /** The whole round trip went through (the transaction of a step without BEGIN committed at its end). */
  finished = false;
  /** The named probe's row, until the unnamed check after it confirms it. */
  private probeReading: SessionReading | undefined;
  /** The unnamed check's count of pg-actions' own statements; undefined when it found a forged one (or no row came). */
  private checkedOwn: number | undefined;
  /** A column name the result has twice: rows as objects would silently lose one. */
  private duplicateColumn: string | undefined;
  private readonly budget: ResultBudget;
  private gate: ResultGate | undefined;
  /** Columns whose parsed value can take far more memory than its text (json, arrays). */
  private expanding: boolean[] = [];
  private reportedAt = 0;
  private resolve!: (outcome: StatementOutcome) => void;
  private resolveEarly!: (outcome: StatementOutcome) => void;
  private reject!: (error: unknown) => void;
  private settled = false;
  private completions = 0;
  /** Named statements parsed in this round trip. */
  private readonly parsedNow: string[] = [];
  private readonly outcome: StatementOutcome = { command: '', rowCount: 0, rows: [], fields: [] };
  /** Where the probe's answer comes: after the statement and its `commit`. */
  private readonly probeAt: number;
  private parsers: ((text: string) => unknown)[] = [];
  private emptyRow: Record<string, null> = {};

  constructor(
    private readonly plan: StatementPlan,
    private readonly onOverflow: () => void,
    private readonly onBroken: () => void = onOverflow,
  ) {
    this.probeAt = plan.before.length + 1 + (plan.commit?.length ?? 0);
    this.budget = {
      limit: plan.maxResultBytes,
      used: 0,
      rows: 0,
      completed: 0,
      discardRowsOf: plan.discardRows ? plan.before.length : undefined,
      firstCounted: plan.before.length,
      lastCounted: plan.before.length,
      onOverflow: () => this.overflow(),
    };
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.early = new Promise((resolve) => (this.resolveEarly = resolve));
  }

  submit(connection: Connection): void {
    const con = connection as unknown as PgConnection;
    if (this.plan.values.length > MAX_PARAMETERS) {
      // Bind counts values in 16 bits: 65,537 would arrive as 1. Refused before anything is sent.
      this.fail(new PgActionsError('INVALID_INPUT', {
        message: `PostgreSQL takes at most 65,535 values in one statement; ${this.plan.values.length.toLocaleString('en')} were given.`,
        problems: ['input.parameters must have at most 65,535 values (placeholders plus any {{ }})'],
        fixes: ['Pass many values as one array: INSERT … SELECT * FROM pg_catalog.unnest($1::int[], $2::pg_catalog.text[]), or WHERE id OPERATOR(pg_catalog.=) ANY ($1::int[]).'],
        query: this.plan.text,
      }));
      con.sync();
      return;
    }
    this.gate = gateOf(connection);
    if (!this.gate) {
      // Every pooled client (pools.ts' ReportingClient) has one; without it nothing would cap the rows.
      this.fail(new Error('pg-actions: this connection has no result gate (not a pooled ReportingClient); nothing was sent.'));
      con.sync();
      return;
    }
    this.gate.arm(this.budget);
    writePipeline(con, () => {
      this.parseNamed(con);
      for (const sql of this.plan.before) this.writeSimple(con, sql);
      const { outcomeAt, before } = this.plan;
      writeUnnamed(con, this.plan.text, this.plan.values);
      if (outcomeAt === before.length) con.flush();
      (this.plan.commit ?? []).forEach((sql, k) => {
        this.writeSimple(con, sql);
        if (outcomeAt === before.length + 1 + k) con.flush();
      });
      if (this.plan.probe) this.writeSimple(con, this.plan.probe);
      if (this.plan.probe?.check) writeFixed(con, this.plan.probe.check);
      for (const sql of this.plan.after) this.writeSimple(con, sql);
      if (this.plan.check) this.writeSimple(con, this.plan.check);
      if (this.plan.tail) for (const sql of this.plan.tail) this.writeSimple(con, sql);
    }, (error) => this.fail(error));
  }

  /**
   * Parses, up front, the named statements this connection does not have yet. Noted at once: if
   * a Parse fails (or never runs) the step fails before its statement, the Bind of the missing
   * name says so (26000), and execute() falls back to unnamed statements.
   */
  private parseNamed(con: PgConnection): void {
    const { before, after, probe, commit = [] } = this.plan;
    for (const sql of [...before, ...commit]) this.parseOnce(con, sql);
    for (const sql of after) this.parseOnce(con, sql);
    if (probe) this.parseOnce(con, probe);
  }

  private parseOnce(con: PgConnection, sql: Sql): void {
    if (typeof sql === 'string' || !sql.name) return;
    let names = prepared.get(con);
    if (names?.has(sql.name)) return;
    con.parse({ text: sql.text, name: sql.name, types: [] });
    this.parsedNow.push(sql.name);
    if (!names) prepared.set(con, (names = new Set()));
    names.add(sql.name);
  }

  private writeSimple(con: PgConnection, sql: Sql): void {
    if (typeof sql === 'string') writeFixed(con, sql);
    else if (!sql.name) writeFixed(con, sql.text);
    else if (con.stream.writable !== false) con.stream.write(bindAndExecute(sql.name));
  }

  /** What the statement returned (complete once it completed; kept when a later statement fails). */
  get result(): StatementOutcome {
    return this.outcome;
  }

  /** The statement's command tag, once it completed ('' before). */
  get command(): string {
    return this.outcome.command;
  }

  handleRowDescription(message: { fields: FieldDescription[] }): void {
    if (this.completions !== this.plan.before.length) return; // set_config(), the probe: rows not kept
    const shape = shapeOf(this.plan, message.fields);
    this.outcome.fields = shape.fields.map(({ name, dataTypeID }) => ({ name, dataTypeID }));
    this.parsers = shape.parsers;
    this.expanding = shape.expanding;
    this.emptyRow = shape.emptyRow;
    if (!this.plan.discardRows && shape.duplicate !== undefined) this.duplicateColumn ??= shape.duplicate;
  }

  handleDataRow(message: { length: number; fields: (string | null)[] }): void {
    if (this.settled) return; // failed: overflow(), abandon() and every error settle it
    // Rows of statements before and after the main one are ignored, but the probe's (right after it).
    if (this.completions !== this.plan.before.length) {
      const { probe } = this.plan;
      if (probe && this.completions === this.probeAt) {
        if (probe.rows) this.sessionReading = readProbeRow(this.sessionReading, message.fields);
        else if (probe.check) this.probeReading = readingOf(message.fields);
        else this.sessionReading = readingOf(message.fields);
      } else if (probe?.check && this.completions === this.probeAt + 1) this.checkedOwn = ownCountOf(message.fields);
      return;
    }
    if (this.plan.discardRows) return;
    const { fields } = this.outcome;
    const row: Record<string, unknown> = { ...this.emptyRow };
    for (let i = 0; i < message.fields.length; i++) {
      const raw = message.fields[i];
      if (raw === null || raw === undefined) continue;
      if (this.expanding[i] && !this.chargeStructure(raw)) return;
      try {
        row[fields[i]!.name] = this.parsers[i]!(raw);
      } catch (error) {
        // Thrown inside the socket's data handler it would end the host process (REVIEW4 R27).
        return this.abandon(unreadableValue(fields[i]!, error, this.plan.text));
      }
    }
    this.outcome.rows.push(row);
    if (this.plan.onProgress && this.budget.used - this.reportedAt >= PROGRESS_EVERY_BYTES) {
      this.reportedAt = this.budget.used;
      try {
        this.plan.onProgress({ rows: this.outcome.rows.length, bytes: this.budget.used });
      } catch (error) {
        // Thrown inside the socket's data handler it would end the process: it ends the step instead.
        this.abandon(new PgActionsError('INVALID_INPUT', {
          message: `The onProgress callback threw (${error instanceof Error ? error.message : String(error)}); the step was stopped.`,
          problems: ['onProgress must not throw'],
          fixes: ['Catch errors inside the onProgress callback.'],
          cause: error,
          query: this.plan.text,
        }));
      }
    }
  }

  /** JSON and arrays become objects: charge what they will allocate before parsing them (the gate trips past the cap). */
  private chargeStructure(raw: string): boolean {
    return this.gate!.charge(this.budget, structureCost(raw));
  }

  /** The gate's onOverflow: called once, when the cap is passed (the gate stays tripped). */
  private overflow(): void {
    this.overflowed = true;
    this.outcome.rows = [];
    this.onOverflow();
    this.fail(new Error('result too large'));
  }

  handleCommandComplete(message: { text: string }): void {
    const { probe, before } = this.plan;
    if (probe?.check && this.completions === this.probeAt + 1 && this.probeReading) {
      // The check's count, not the probe's (which a forgery may have made up): the owner compares it with preparedCount().
      const own = this.checkedOwn;
      this.sessionReading = own === undefined ? { ...this.probeReading, objects: true } : { ...this.probeReading, own };
    }
    const index = this.completions++;
    if (index === before.length) {
      // "SELECT 5", "INSERT 0 1" (oid, rows), "CREATE INDEX" (no count)
      const match = /^(.*?)(?: (\d+))?(?: (\d+))?$/.exec(message.text);
      const count = match?.[3] ?? match?.[2];
      this.outcome.command = match?.[1] ?? message.text;
      this.outcome.rowCount = count !== undefined ? Number(count) : this.outcome.rows.length;
    }
    if (index === this.plan.outcomeAt) this.outcomeKnown();
  }

  handleEmptyQuery(): void {
    if (this.completions++ === this.plan.outcomeAt) this.outcomeKnown();
  }

  /** The statement (and its COMMIT) succeeded: the owner may answer now, unless the outcome still hangs on a later reply. */
  private outcomeKnown(): void {
    if (this.settled || this.duplicateColumn !== undefined) return;
    if (this.plan.settlesEarly && !this.plan.settlesEarly(this.outcome)) return;
    this.settledEarly = true;
    this.resolveEarly(this.outcome);
  }

  handleError(error: unknown): void {
    const index = this.completions, at = this.plan.before.length;
    // Our Parses are written first: one refused (42P05, already there) ends the round trip before anything ran.
    const { code, message } = (error ?? {}) as { code?: string; message?: string };
    const ownParse = code === '42P05' && this.parsedNow.some((name) => message?.includes(`"${name}"`));
    const { probe, after } = this.plan;
    if (this.plan.check && index === this.probeAt + (probe ? (probe.check ? 2 : 1) : 0) + after.length) {
      // Everything before the check succeeded: the step did. pg hands the ReadyForQuery after an
      // error to no one, so the step ends here (the owner's next query waits for it).
      this.needsReset = true;
      return this.handleReadyForQuery();
    }
    const committed = this.plan.commit?.length && index >= this.probeAt;
    this.failedAt ??= index < at || ownParse ? 'before' : index === at ? 'statement' : committed ? 'committed' : 'after';
    this.fail(error);
  }

  handleReadyForQuery(): void {
    this.gate?.disarm(this.budget);
    // Refused once the statement is over (and a transactional step rolled back by the owner).
    if (this.duplicateColumn !== undefined) return this.fail(duplicateColumnError(this.duplicateColumn, this.plan.text, this.plan.commitsItself === true));
    if (this.settled) return;
    this.settled = true;
    this.finished = true;
    this.resolve(this.outcome);
  }

  handlePortalSuspended(): void {}

  /**
   * COPY … FROM STDIN waits for data a step cannot send. In copy-in mode the server ignores the
   * Sync already written and refuses the messages after the statement, so the session's message
   * stream cannot be trusted any more: the step fails and the owner closes the connection.
   */
  handleCopyInResponse(): void {
    this.abandon(
      new PgActionsError('INVALID_INPUT', {
        message: 'COPY … FROM STDIN reads data from the client, which a step cannot send; nothing was copied.',
        problems: ['input.query must not be COPY … FROM STDIN'],
        fixes: ['Insert many rows with one statement: INSERT INTO t (a, b) SELECT * FROM pg_catalog.unnest($1::pg_catalog.text[], $2::int[]).', 'COPY … FROM a server-side file or program needs pg_read_server_files and runs on the database host.'],
        query: this.plan.text,
      }),
    );
  }

  /** Fails the step while the server may still be sending: the owner must close the connection. */
  private abandon(error: unknown): void {
    this.broken = true;
    this.outcome.rows = [];
    this.fail(error);
    this.onBroken();
  }

  handleCopyData(): void {}

  /** Settles `done` with the first failure (a promise rejects once: later calls change nothing). */
  private fail(error: unknown): void {
    this.settled = true;
    this.reject(error);
  }
}
