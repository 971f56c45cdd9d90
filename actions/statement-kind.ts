/**
 * Update Rows and Delete Rows run one kind of statement. This check reads PostgreSQL's own parse
 * tree and refuses, before anything runs, more than one statement, a statement of another kind
 * (EXPLAIN ANALYZE included: it would run the write), or a data-modifying statement hidden inside
 * the one given, such as `WITH gone AS (DELETE FROM …) UPDATE …`,
 * whose tag would still say UPDATE. The command tag is
 * still checked after the statement runs (anything else is rolled back), for what the parse tree
 * cannot show (a rule that rewrites the statement).
 */
import { PgActionsError } from '../connection/index.js';
import { parsePg, PgSyntaxError } from '../templating/index.js';

const KIND_NODE = { UPDATE: 'UpdateStmt', DELETE: 'DeleteStmt' } as const;
/** Parse-tree nodes named as their command tags say, for the refusal message. */
const NODE_KIND: Record<string, string> = {
  SelectStmt: 'SELECT', InsertStmt: 'INSERT', UpdateStmt: 'UPDATE', DeleteStmt: 'DELETE', MergeStmt: 'MERGE',
  CreateStmt: 'CREATE TABLE', CreateTableAsStmt: 'CREATE TABLE AS', DropStmt: 'DROP', TruncateStmt: 'TRUNCATE',
  AlterTableStmt: 'ALTER TABLE', ExplainStmt: 'EXPLAIN', CopyStmt: 'COPY', CallStmt: 'CALL', DoStmt: 'DO',
  IndexStmt: 'CREATE INDEX', VariableSetStmt: 'SET', TransactionStmt: 'transaction command',
};
/** "a DELETE", "an UPDATE", "an EXPLAIN": a statement's name with its article. */
const named = (name: string) => `${/^[AEIOU]/i.test(name) ? 'an' : 'a'} ${name}`;
const WRITES: Record<string, string> = { InsertStmt: 'an INSERT', UpdateStmt: 'an UPDATE', DeleteStmt: 'a DELETE', MergeStmt: 'a MERGE' };

export function refuseOtherWrites(sql: string, kind: 'UPDATE' | 'DELETE', actionName: string): void {
  const tree = parsePg(sql);
  // Not readable: the server reports the syntax error itself (SYNTAX_ERROR), and nothing runs.
  if (tree instanceof PgSyntaxError) return;
  const statements = tree.stmts ?? [];
  if (statements.length > 1) {
    throw new PgActionsError('INVALID_INPUT', {
      message: `${actionName} runs one ${kind} statement; this text holds ${statements.length} statements. Nothing was run.`,
      problems: [`input.query holds ${statements.length} statements: ${actionName} runs one ${kind}`],
      fixes: ['Run one statement per step, or use Execute Query.'],
    });
  }
  const root = statements[0]?.stmt as Record<string, unknown> | undefined;
  if (!root) return;
  const node = Object.keys(root)[0] ?? '';
  if (node !== KIND_NODE[kind]) {
    const found = NODE_KIND[node] ?? node.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
    throw new PgActionsError('INVALID_INPUT', {
      message: `${actionName} only runs ${kind} statements; this one is ${named(found)}. Nothing was run.`,
      problems: [`input.query must be ${named(kind)} statement`],
      fixes: [`Write ${named(kind)} statement, or use the action made for this one (Execute Query runs any statement).`],
    });
  }
  const found = hiddenWrite(root, true);
  if (found) refuse(actionName, kind, found, 'Use Execute Query for a statement that changes data in more than one way.');
}

/** The first write below the top statement, named with where it is ("a DELETE inside a WITH clause"). */
function hiddenWrite(node: unknown, top: boolean, where = ''): string | undefined {
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = hiddenWrite(item, false, where);
      if (found) return found;
    }
    return undefined;
  }
  if (node === null || typeof node !== 'object') return undefined;
  for (const [key, child] of Object.entries(node)) {
    if (!top && WRITES[key]) return `${WRITES[key]}${where || ' inside a subquery'}`;
    const found = hiddenWrite(child, false, key === 'withClause' || key === 'CommonTableExpr' ? ' inside a WITH clause' : where);
    if (found) return found;
  }
  return undefined;
}

function refuse(actionName: string, kind: string, found: string, fix: string): never {
  throw new PgActionsError('INVALID_INPUT', {
    message: `${actionName} only runs ${kind} statements; this one also contains ${found}. Nothing was run.`,
    problems: [`input.query contains ${found}: ${actionName} runs only ${kind}`],
    fixes: [fix],
  });
}
