import type { TemplateContext } from './context.js';
import { evaluateText, evaluateTyped } from './evaluate.js';
import { problemToError, templateError } from './template-error.js';
import { valueTemplateFor } from './value-template.js';

// Parameters come from JSON, but a host could pass a cyclic object; stop instead of overflowing.
const MAX_DEPTH = 64;

/**
 * Renders one value. A string that is exactly one expression keeps the value's type; text
 * mixing literals and expressions becomes a string. Arrays and plain objects are rendered
 * leaf by leaf (keys are left alone) and copied only when something changed. Values coming
 * out of the context are never rendered again, so trigger data cannot inject templates.
 */
export function renderValue(value: unknown, context: TemplateContext, fieldPath: string): unknown {
  return renderAt(value, context, fieldPath, 0);
}

function renderAt(value: unknown, context: TemplateContext, fieldPath: string, depth: number): unknown {
  if (typeof value === 'string') return value.includes('{{') ? renderString(value, context, fieldPath) : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) throw templateError(fieldPath, `nested more than ${MAX_DEPTH} levels deep (is it circular?)`);
  if (Array.isArray(value)) return renderArray(value, context, fieldPath, depth);
  if (isPlainObject(value)) return renderObject(value, context, fieldPath, depth);
  return value; // Dates, Buffers and other class instances pass through untouched.
}

function renderString(text: string, context: TemplateContext, fieldPath: string): unknown {
  const template = valueTemplateFor(text);
  if (template.problem) throw problemToError(fieldPath, text, template.problem);
  return template.single ? evaluateTyped(template.single, context, fieldPath) : evaluateText(template.parts, context, fieldPath);
}

function renderArray(items: readonly unknown[], context: TemplateContext, fieldPath: string, depth: number): unknown[] {
  let copy: unknown[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (!needsRendering(item)) continue; // skip building a field path for plain leaves
    const rendered = renderAt(item, context, `${fieldPath}[${i}]`, depth + 1);
    if (rendered !== item) (copy ??= items.slice())[i] = rendered;
  }
  return copy ?? (items as unknown[]);
}

function renderObject(object: object, context: TemplateContext, fieldPath: string, depth: number): object {
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(object)) {
    if (!needsRendering(item)) continue;
    const childPath = /^[A-Za-z_$][\w$]*$/.test(key) ? `${fieldPath}.${key}` : `${fieldPath}[${JSON.stringify(key)}]`;
    const rendered = renderAt(item, context, childPath, depth + 1);
    if (rendered !== item) {
      copy ??= { ...object };
      // defineProperty, not assignment: a "__proto__" key must stay a plain own key.
      Object.defineProperty(copy, key, { value: rendered, enumerable: true, writable: true, configurable: true });
    }
  }
  return copy ?? object;
}

function needsRendering(item: unknown): boolean {
  return typeof item === 'string' ? item.includes('{{') : item !== null && typeof item === 'object';
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
