import { readFileSync } from 'node:fs';
import Value from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { CONFIG_FILE_VARIABLE, ENV_VARIABLES } from './env.ts';
import { loadConfig } from './load-config.ts';
import { ConfigSchema } from './schema.ts';

const exampleFile = new URL('../../.env.example', import.meta.url);

function parseExample(): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of readFileSync(exampleFile, 'utf8').split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match) entries.set(match[1]!, match[2]!);
  }
  return entries;
}

function schemaDefault(dotted: string): unknown {
  let value: unknown = Value.Default(ConfigSchema, {});
  for (const part of dotted.split('.')) value = (value as Record<string, unknown> | null)?.[part];
  return value;
}

describe('.env.example', () => {
  const example = parseExample();

  it('lists exactly the variables Bastion reads', () => {
    expect([...example.keys()].sort()).toEqual(
      [CONFIG_FILE_VARIABLE, ...ENV_VARIABLES.map((v) => v.name)].sort(),
    );
  });

  it('shows each variable with the default the schema really has', () => {
    for (const variable of ENV_VARIABLES) {
      const shown = example.get(variable.name);
      expect(shown, variable.name).toBe(variable.example);
      const actual = schemaDefault(variable.path);
      if (variable.example === '') {
        // Unset means null, an empty list, or the computed default.
        expect(
          [null, undefined].includes(actual as null) || (Array.isArray(actual) && actual.length === 0),
        ).toBe(true);
      } else {
        expect(String(actual), variable.name).toBe(variable.example);
      }
    }
  });

  it('describes every variable', () => {
    const text = readFileSync(exampleFile, 'utf8');
    for (const variable of ENV_VARIABLES) {
      expect(text).toContain(`# ${variable.description}`);
    }
  });

  it('maps every variable to a real config key that accepts its example', async () => {
    const env: Record<string, string> = {};
    for (const [name, value] of example) if (value !== '' && name !== CONFIG_FILE_VARIABLE) env[name] = value;
    await expect(loadConfig({ env, file: null })).resolves.toBeDefined();
    for (const variable of ENV_VARIABLES) {
      const parent = variable.path.split('.').slice(0, -1);
      let node: unknown = ConfigSchema;
      for (const part of parent) node = (node as { properties: Record<string, unknown> }).properties[part];
      const leaf = variable.path.split('.').at(-1)!;
      expect(
        Object.keys((node as { properties: Record<string, unknown> }).properties),
        variable.name,
      ).toContain(leaf);
    }
  });
});
