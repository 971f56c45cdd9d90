/**
 * What the triggers that read rows promise about timestamptz (REVIEW9 R160), for their generated
 * docs: `where` names the parts of the event and state that carry such values; `ids` whether the
 * event id is made of them (new-row, new-or-updated-row, table-sync).
 */
export function fixedFormatsGuarantee(where: string, ids: boolean): string {
  return [
    `Timestamps in UTC: every timestamptz the trigger reads (in ${where}) is written in UTC (\`2026-01-01T12:00:00Z\`; inside an array, range or composite \`2026-01-01 12:00:00+00\`), whatever TimeZone the database, the role or a pooler client sets${ids ? ', so the same row keeps its id after a TimeZone change' : ''}.`,
    `Likewise bytea is read in hex (\`\\x6162\`), whatever bytea_output the database, the role or a session sets (REVIEW10 R167)${ids ? ', so a bytea key keeps its id' : ''}; before 2026-11-30 an \`escape\` default wrote it as \`ab\`.`,
    'The actions (Query Rows, Execute Query…) keep the session\'s TimeZone, which the user\'s SQL depends on (`now()::date`, a literal without an offset).',
    `Before 2026-11-30 the session's TimeZone was used: where it was not UTC, values${ids ? ' and ids' : ''} change once across that upgrade${ids ? ' (a batch repeated across it comes again with new ids)' : ''}.`,
  ].join(' ');
}
