import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats ships CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** The one ajv instance of the package: strict, reporting every problem, with formats. */
const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
addFormats(ajv);
// Annotation keywords our schemas carry for form rendering; ajv strict mode must know them.
ajv.addVocabulary(['x-order', 'x-widget', 'x-example']);

const compiled = new WeakMap<object, ValidateFunction>();

/** Compiles a schema once (cached by object identity) and returns a checker listing problems. */
export function validatorFor(schema: object): (value: unknown, root: string) => string[] {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  const check = validate;
  return (value, root) => (check(value) ? [] : describeProblems(check.errors ?? [], root));
}

/** Turns ajv's errors into plain sentences that name the field, e.g. "input.table is required". */
export function describeProblems(errors: readonly ErrorObject[], root: string): string[] {
  const problems: string[] = [];
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  for (const error of errors) {
    // anyOf branches report their own failures; the anyOf error itself says it better.
    if (error.keyword !== 'anyOf' && anyOfPaths.has(error.instancePath) && error.schemaPath.includes('/anyOf/')) continue;
    const field = fieldPath(root, error.instancePath);
    problems.push(sentence(field, error));
  }
  return [...new Set(problems)];
}

function sentence(field: string, error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${fieldPath(field, '/' + escapePointer(String(params.missingProperty)))} is required`;
    case 'additionalProperties':
      return `${fieldPath(field, '/' + escapePointer(String(params.additionalProperty)))} is not a known field`;
    case 'type':
      return `${field} must be ${article(String(params.type))}`;
    case 'enum':
      return `${field} must be one of: ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'anyOf':
      return `${field} must ${anyOfHint(error)}`;
    case 'pattern':
      return `${field} is not in the expected format`;
    default:
      return `${field} ${error.message ?? 'is invalid'}`;
  }
}

function anyOfHint(error: ErrorObject): string {
  const branches = (error.parentSchema as { anyOf?: { required?: string[] }[] } | undefined)?.anyOf;
  const requiredSets = branches?.map((b) => b.required).filter((r): r is string[] => Array.isArray(r));
  if (requiredSets && requiredSets.length === branches?.length) {
    return 'have ' + requiredSets.map((set) => set.join(' + ')).join(', or ');
  }
  return 'match one of the allowed shapes';
}

function article(type: string): string {
  const words: Record<string, string> = {
    string: 'a string (text)', integer: 'a whole number', number: 'a number', boolean: 'true or false',
    object: 'an object', array: 'an array', null: 'null',
  };
  return type.split(',').map((t) => words[t] ?? t).join(' or ');
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** "/parameters/2/name" under root "input" → "input.parameters[2].name". */
function fieldPath(root: string, pointer: string): string {
  if (!pointer) return root;
  return pointer
    .split('/')
    .slice(1)
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, segment) => (/^\d+$/.test(segment) ? `${path}[${segment}]` : /^[A-Za-z_$][\w$]*$/.test(segment) ? `${path}.${segment}` : `${path}[${JSON.stringify(segment)}]`), root);
}
