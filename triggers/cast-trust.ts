/**
 * Casts whose function is someone else's code (REVIEW7 R138, R141): the owner of a type may CREATE CAST
 * to or from it with a function of their own, and a cast pg-actions' SQL makes (to_jsonb's cast to
 * json, a key's `(text)::type`) then runs it with the role running the statement. Trusted: functions
 * owned by a superuser (the built-ins, an extension's, such as hstore's cast to json) or by that role.
 * Each takes a pg_cast row's alias; qualified, so they read the same in a function with a pinned path.
 */
export function untrustedCastFunction(cast: string): string {
  return `EXISTS (SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) p.proowner
     WHERE p.oid OPERATOR(pg_catalog.=) ${cast}.castfunc AND NOT o.rolsuper
       AND p.proowner OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER))`;
}

