/**
 * The enum labels a table-sync cursor depends on (REVIEW11 R175). The cursor is the key as PostgreSQL
 * wrote it: an enum value is its label's text, read again by the enum's input function at the next
 * batch. `ALTER TYPE e RENAME VALUE` keeps the label's place in the enum's order but gives the text to
 * another place (rename 'b' away, then 'd' to 'b'): the cursor 'b' then stands after the rows of 'c'
 * and 'd', and the sync skipped them. The key's type oids (keyShape) do not change with it.
 *
 * So the state keeps a fingerprint of the labels of every enum the key's types reach (a domain over
 * one, an array of one, a composite with a field of one, a range over one): the highest label oid
 * then and a hash of the (oid, label) pairs up to it. A label renamed since changes the hash; a label
 * added since (ALTER TYPE … ADD VALUE, which never reorders the labels there were) has a newer oid and
 * is left out, so adding a value does not stop a sync: rows holding it did not exist when the run began,
 * and a cursor's label keeps its place. (Were the oid counter to wrap around, a new label could have a
 * lower oid: it would be counted, and the state refused; never a rename passed.)
 *
 * A handover's batch bounds are label texts too, read again by table-changes-cdc: the fingerprint of the
 * table's last batch is recorded with them, and a rename before the handover ends is refused there.
 */
import { createHash } from 'node:crypto';
import { REACH_STEP } from './domain-reach.js';

/**
 * A scalar subquery: the labels (oid, label) of every enum reached from the types of the columns `columns`
 * (a name[] expression) of the relation `relation` (an oid expression), as JSON ordered by oid, or NULL when
 * the key reaches no enum. The same walk as domain-reach.ts (REACH_STEP).
 */
export const enumLabelsSql = (relation: string, columns: string): string => `(WITH RECURSIVE reach(type) AS (
       SELECT a.atttypid FROM pg_catalog.unnest(${columns}) AS u(c)
         JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) ${relation}
          AND a.attname OPERATOR(pg_catalog.=) u.c AND NOT a.attisdropped
       UNION
       ${REACH_STEP}
     SELECT pg_catalog.json_agg(pg_catalog.json_build_array(e.oid, e.enumlabel) ORDER BY e.oid)::pg_catalog.text
       FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) ANY (SELECT type FROM reach))`;

/** enumLabelsSql for table-sync's batch statement: the table $2 (regclass text), the key columns $3 (name[]). */
export const keyEnumLabelsSql = enumLabelsSql('$2::pg_catalog.regclass::pg_catalog.oid', '$3::pg_catalog.name[]');

type Labels = [number, string][];

const FINGERPRINT = /^(\d{1,10}):([0-9a-f]{32})$/;

function hashOf(labels: Labels): string {
  return createHash('sha256').update(JSON.stringify(labels)).digest('hex').slice(0, 32);
}

/** The fingerprint to keep with a cursor (keyEnumLabelsSql's answer): "<highest label oid>:<hash>", or undefined when the key reaches no enum. */
export function labelsFingerprint(json: string | null): string | undefined {
  if (json === null) return undefined;
  const labels = JSON.parse(json) as Labels;
  return `${labels[labels.length - 1]![0]}:${hashOf(labels)}`;
}

/** Whether `fingerprint` is one labelsFingerprint writes (else the state was edited). */
export function isLabelsFingerprint(fingerprint: unknown): fingerprint is string {
  return typeof fingerprint === 'string' && FINGERPRINT.test(fingerprint);
}

/** Whether a label the fingerprint covers was renamed since: the labels now (keyEnumLabelsSql's answer) up to its oid hash otherwise. */
export function labelsRenamed(fingerprint: string, json: string | null): boolean {
  const [, upTo, hash] = FINGERPRINT.exec(fingerprint)!;
  const labels = (json === null ? [] : (JSON.parse(json) as Labels)).filter(([oid]) => oid <= Number(upTo));
  return hashOf(labels) !== hash;
}
