/** The field tables of generated docs (actions and triggers), from a JSON Schema's properties. */
interface PropertySchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  const?: unknown;
}

function typeOf(property: PropertySchema & { items?: PropertySchema; additionalProperties?: unknown }): string {
  if (property.const !== undefined) return `\`${JSON.stringify(property.const)}\``;
  const type = property.type ?? 'any value';
  const types = Array.isArray(type) ? type : [type];
  return types.map((t) => (t === 'array' && property.items?.type ? `array of ${property.items.type}` : t)).join(' \\| ');
}

export function fieldTable(schema: object, required: readonly string[]): string[] {
  const properties = (schema as { properties: Record<string, PropertySchema> }).properties;
  return [
    '| field | type | required | description |',
    '|---|---|---|---|',
    ...Object.entries(properties).map(([name, property]) => {
      const limits = [property.minimum !== undefined ? `min ${property.minimum}` : '', property.maximum !== undefined ? `max ${property.maximum}` : ''].filter(Boolean);
      const extra = limits.length ? ` (${limits.join(', ')})` : '';
      return `| \`${name}\` | ${typeOf(property)}${extra} | ${required.includes(name) ? 'yes' : 'no'} | ${(property.description ?? '').replace(/\|/g, '\\|')} |`;
    }),
  ];
}
