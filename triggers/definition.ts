/**
 * The contract every trigger file fulfils: a declarative definition (key, name, description, JSON
 * Schemas, an example event, the guarantees and least-privilege SQL its docs show) plus the ways
 * it serves hosts. `position` is the trigger's own cursor; run-trigger.ts wraps it in the state
 * envelope hosts store, so no trigger repeats validation, fingerprints or state checks.
 */

/** What every event says, whatever the trigger. */
export interface TriggerEvent {
  /** Deterministic: the same change has the same id on redelivery. */
  id: string;
  [field: string]: unknown;
}

export interface TriggerArguments<Config> {
  /** Connection configuration (validated by run-trigger). */
  connection: unknown;
  /** Configuration validated against the trigger's config schema, defaults applied. */
  config: Config;
  /** Fingerprint of the configuration's identity (names objects the trigger installs). */
  fingerprint: string;
}

export interface Batch<Event, Position> {
  events: Event[];
  /** The position after these events: stored (acknowledged) only once they are handled. */
  position: Position;
}

/** Hands a batch to the host and resolves once the host has handled it (the ack). */
export type Deliver<Event, Position> = (batch: Batch<Event, Position>) => Promise<void>;

export interface RunningSubscription {
  /**
   * Settles (never rejects) once what happens from now on will be delivered, e.g. listen's LISTEN
   * is in place, or once the first attempt failed (reported to onError). subscribeTrigger waits for it.
   */
  ready?: Promise<void>;
  close(): Promise<void>;
}

export interface SampleResult<Event> {
  events: Event[];
  /** Things the flow author should know (e.g. the ordering column has no index). */
  warnings: string[];
  /** How the trigger will work on this database (e.g. event trigger or catalog snapshots). */
  notes: string[];
}

export interface ActivationOutcome {
  /** False when nothing was installed (the trigger runs without objects of its own). */
  installed: boolean;
  /** How the trigger runs, e.g. 'event trigger' or 'catalog snapshots'. */
  mode: string;
  /** Why, in a sentence for the flow author. */
  note: string;
}

export interface TriggerExample<Config, Event> {
  /** SQL that creates the tables the example needs (for docs and the examples test). */
  setup: readonly string[];
  config: Config;
  event: Event;
}

export interface TriggerDefinition<Config = unknown, Event extends { id: string } = TriggerEvent, Position = unknown> {
  key: string;
  name: string;
  description: string;
  /** JSON Schema of the configuration (schemas/triggers/<key>.config.schema.json). */
  config: object;
  /** JSON Schema of one event (schemas/triggers/<key>.event.schema.json). */
  event: object;
  example: TriggerExample<Config, Event>;
  /** What the trigger promises (delivery, ordering, what it cannot see), for its docs. */
  guarantees: readonly string[];
  /** The least-privilege set-up SQL, with <role> and <table> placeholders, for its docs. */
  privileges: readonly string[];
  /** The configuration fields that decide what a position means (a state from other values is refused). */
  identity: readonly (keyof Config & string)[];
  /** activateTrigger installs objects in the database; deactivateTrigger removes them. */
  installs: boolean;
  /** The position to start from when the host has no state yet. */
  start(args: TriggerArguments<Config>): Promise<Position>;
  /** Events after `position` (at most one batch) and the position after them. */
  poll?(args: TriggerArguments<Config>, position: Position): Promise<Batch<Event, Position>>;
  /** Push delivery; when absent, subscribeTrigger polls. */
  subscribe?(args: TriggerArguments<Config>, position: Position, deliver: Deliver<Event, Position>, onError: (error: unknown) => void): RunningSubscription;
  /** May say how it will run, e.g. schema-changes' event trigger or its catalog-snapshot fallback. */
  activate?(args: TriggerArguments<Config>): Promise<void | ActivationOutcome>;
  deactivate?(args: TriggerArguments<Config>): Promise<void>;
  sample(args: TriggerArguments<Config>): Promise<SampleResult<Event>>;
}

export function defineTrigger<Config, Event extends { id: string }, Position>(
  definition: TriggerDefinition<Config, Event, Position>,
): TriggerDefinition<Config, Event, Position> {
  return definition;
}
