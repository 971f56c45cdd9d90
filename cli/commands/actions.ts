/** `pg-actions actions`: what a step picker shows: every action and the fields of its form. */
import { actions, type ActionDefinition } from '../../index.js';
import { parseCommandLine, printUsage, type Command } from '../command.js';
import { EXIT_OK } from '../failures.js';
import { printJson, printLine } from '../output.js';

interface FieldSchema {
  type?: string | string[];
  description?: string;
}
interface ObjectSchema {
  properties?: Record<string, FieldSchema>;
  required?: string[];
}

export const actionsCommand: Command = {
  name: 'actions',
  summary: 'List the actions and their input fields (--json: their JSON Schemas)',
  usage: `pg-actions actions [--json]

  --json  print [{ key, name, description, input, output }] with the input and output JSON Schemas

Example:
  pg-actions actions --json | jq '.[].key'`,

  async run(args, session) {
    const parsed = parseCommandLine('actions', args, {});
    if (parsed.help) return printUsage(this.usage);
    if (session.json) {
      printJson(actions.map(({ key, name, description, input, output }) => ({ key, name, description, input, output })));
    } else {
      actions.forEach((action, index) => {
        if (index > 0) printLine('');
        printAction(action);
      });
    }
    return EXIT_OK;
  },
};

function printAction(action: ActionDefinition): void {
  printLine(`${action.key}  ${action.name}`);
  printLine(`  ${action.description}`);
  const schema = action.input as ObjectSchema;
  const required = new Set(schema.required ?? []);
  printLine('  input:');
  for (const [field, property] of Object.entries(schema.properties ?? {})) {
    const type = Array.isArray(property.type) ? property.type.join(' | ') : (property.type ?? 'any');
    printLine(`    ${field} (${type}${required.has(field) ? ', required' : ''})  ${property.description ?? ''}`.trimEnd());
  }
}
