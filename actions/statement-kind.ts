/**
 * Update Rows and Delete Rows run one kind of statement. The command tag is checked after the
 * statement runs (and anything else rolled back); this check also refuses, before anything
 * runs, a data-modifying statement of another kind hidden in a WITH clause, such as
 * `WITH gone AS (DELETE FROM …) UPDATE …`, whose tag would still say UPDATE.
 */
import { PgActionsError } from '../connection/index.js';
import { sqlKeywords } from '../templating/index.js';

const WRITES = ['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'TRUNCATE'];

export function refuseOtherWrites(sql: string, kind: 'UPDATE' | 'DELETE', actionName: string): void {
  const words = sqlKeywords(sql);
  if (words[0] !== 'WITH') return; // a plain statement of another kind is caught by its command tag
  const other = words.find((word, i) => {
    if (!WRITES.includes(word) || word === kind) return false;
    // Row locks in a subquery (FOR UPDATE, FOR NO KEY UPDATE) are not writes.
    return !(word === 'UPDATE' && (words[i - 1] === 'FOR' || words[i - 1] === 'KEY'));
  });
  if (other) {
    throw new PgActionsError('INVALID_INPUT', {
      message: `${actionName} only runs ${kind} statements; this one also contains ${other}. Nothing was run.`,
      problems: [`input.query contains ${other}: ${actionName} runs only ${kind}`],
      fixes: ['Use Execute Query for a statement that changes data in more than one way.'],
    });
  }
}
