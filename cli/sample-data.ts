/**
 * The tables of the reference's example workflows (users, orders, sessions, logs, audit_logs),
 * with a few hundred rows generated in SQL so every run produces the same data. Idempotent:
 * tables are created only when missing and seeded only when empty, so it runs on every start.
 */
import { runAction, type ConnectionConfig } from '../index.js';

/** Fixed base time: generated rows are identical on every machine and every run. */
const BASE = `'2026-01-01T00:00:00Z'::timestamptz`;

export const SAMPLE_TABLES = ['users', 'orders', 'sessions', 'logs', 'audit_logs'] as const;

const FIRST_NAMES = `ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Margaret','Ken','Frances','Dennis','Radia','Tim','Hedy','Linus','Shafi','John']`;
const LAST_NAMES = `ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Hamilton','Thompson','Allen','Ritchie','Perlman','Berners-Lee','Lamarr','Torvalds','Goldwasser','Doe']`;

/** One statement per entry: a step runs exactly one statement. */
export const SAMPLE_SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS users (
     id serial PRIMARY KEY,
     name text NOT NULL,
     email text NOT NULL UNIQUE,
     status text NOT NULL DEFAULT 'active',
     last_login timestamptz,
     created_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz
   )`,
  `CREATE TABLE IF NOT EXISTS orders (
     id serial PRIMARY KEY,
     user_id integer REFERENCES users (id) ON DELETE SET NULL,
     amount numeric(10, 2) NOT NULL CHECK (amount >= 0),
     status text NOT NULL DEFAULT 'pending',
     synced boolean NOT NULL DEFAULT false,
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS sessions (
     id serial PRIMARY KEY,
     user_id integer REFERENCES users (id) ON DELETE CASCADE,
     token text NOT NULL UNIQUE,
     expires_at timestamptz NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS logs (
     id bigserial PRIMARY KEY,
     level text NOT NULL,
     message text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS audit_logs (
     id serial PRIMARY KEY,
     user_id integer,
     action text NOT NULL,
     details jsonb,
     ip_address inet,
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  // 200 users: 80 % active, 10 % inactive, 10 % dormant.
  `INSERT INTO users (name, email, status, last_login, created_at)
   SELECT (${FIRST_NAMES})[1 + g % 16] || ' ' || (${LAST_NAMES})[1 + (g / 16) % 16],
          'user' || g || '@example.com',
          CASE g % 10 WHEN 0 THEN 'inactive' WHEN 1 THEN 'dormant' ELSE 'active' END,
          ${BASE} + g * interval '7 hours',
          ${BASE} - (200 - g) * interval '1 day'
     FROM generate_series(1, 200) AS g
    WHERE NOT EXISTS (SELECT 1 FROM users)`,
  // 400 orders; every fifth (80) is not yet synced, so one "Sync Data" run (LIMIT 100) syncs them all.
  `INSERT INTO orders (user_id, amount, status, synced, created_at)
   SELECT u.id,
          ((g * 37) % 500 + 5) + (g % 100) / 100.0,
          (ARRAY['pending','paid','shipped','delivered','refunded'])[1 + g % 5],
          g % 5 <> 0,
          ${BASE} + g * interval '3 hours'
     FROM generate_series(1, 400) AS g
     JOIN users AS u ON u.id = 1 + (g * 7) % 200
    WHERE NOT EXISTS (SELECT 1 FROM orders)`,
  // Expiry relative to the moment of seeding, so "DELETE FROM sessions WHERE expires_at < {{now}}" has work to do.
  `INSERT INTO sessions (user_id, token, expires_at, created_at)
   SELECT u.id, md5('session-' || g), now() + (g - 100) * interval '1 hour', ${BASE} + g * interval '1 hour'
     FROM generate_series(1, 150) AS g
     JOIN users AS u ON u.id = 1 + (g * 13) % 200
    WHERE NOT EXISTS (SELECT 1 FROM sessions)`,
  `INSERT INTO logs (level, message, created_at)
   SELECT (ARRAY['debug','info','info','info','warn','error'])[1 + g % 6],
          (ARRAY['request handled','cache miss','user signed in','payment captured','slow query','upstream timeout'])[1 + g % 6] || ' #' || g,
          ${BASE} + g * interval '10 minutes'
     FROM generate_series(1, 300) AS g
    WHERE NOT EXISTS (SELECT 1 FROM logs)`,
  `INSERT INTO audit_logs (user_id, action, details, ip_address, created_at)
   SELECT 1 + (g * 11) % 200,
          (ARRAY['user.login','user.logout','order.create','settings.update'])[1 + g % 4],
          jsonb_build_object('source', 'seed', 'sequence', g),
          ('198.51.100.' || (g % 254 + 1))::inet,
          ${BASE} + g * interval '5 hours'
     FROM generate_series(1, 20) AS g
    WHERE NOT EXISTS (SELECT 1 FROM audit_logs)`,
];

/** Creates and seeds the sample tables through the public Execute Query action. */
export async function ensureSampleSchema(connection: ConnectionConfig): Promise<void> {
  for (const query of SAMPLE_SCHEMA) await runAction('execute-query', { connection, input: { query } });
}
