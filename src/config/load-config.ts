import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Settings } from 'typebox/system';
import Value from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { parseCidr } from '../core/ip-address.ts';
import { ATTACK_CLASSES } from '../protection/detection/types.ts';
import { CONFIG_FILE_VARIABLE, ENV_VARIABLES, type EnvVariable } from './env.ts';
import { ConfigError, type ConfigProblem } from './errors.ts';
import { proxyRangeProblem } from './proxy-ranges.ts';

import { type BastionConfig, ConfigSchema } from './schema.ts';

type Tree = Record<string, unknown>;

/** Inputs to `loadConfig`; each layer overrides the one before. */
export interface LoadConfigOptions {
  /** Environment variables (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Config file path; default: the `BASTION_CONFIG` variable. */
  file?: string | null;
  /** Flag overrides (highest precedence), as dotted paths, e.g. `{ 'server.port': 9000 }`. */
  overrides?: Record<string, unknown>;
}

/**
 * Builds the configuration from defaults, then the file, then environment variables, then
 * flags. Throws `ConfigError` listing every unknown key and bad value.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<BastionConfig> {
  const env = options.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const sources = new Map<string, string>();
  const tree: Tree = {};

  const file = options.file === undefined ? (env[CONFIG_FILE_VARIABLE] ?? null) : options.file;
  if (file) {
    const fromFile = await readConfigFile(file, problems);
    mergeInto(tree, fromFile, '', sources, `file ${file}`);
  }

  for (const variable of ENV_VARIABLES) {
    const raw = env[variable.name];
    if (raw === undefined || raw === '') continue;
    const value = parseEnv(variable, raw, problems);
    if (value !== undefined) {
      setPath(tree, variable.path, value);
      sources.set(variable.path, `env ${variable.name}`);
    }
  }

  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue;
    setPath(tree, key, value);
    sources.set(key, 'flag');
  }

  // The database lives in the data directory unless placed elsewhere explicitly.
  if (getPath(tree, 'database.url') === undefined && typeof tree.dataDir === 'string') {
    setPath(tree, 'database.url', `sqlite:${path.join(tree.dataDir, 'bastion.db')}`);
  }

  const withDefaults = Value.Default(ConfigSchema, tree);
  const byPath = new Map<string, SchemaError[]>();
  for (const error of allErrors(withDefaults)) {
    byPath.set(error.instancePath, [...(byPath.get(error.instancePath) ?? []), error]);
  }
  for (const errors of byPath.values()) problems.push(...describeSchemaErrors(errors, sources));
  const proxies = (withDefaults as { server?: { trustedProxies?: unknown } }).server?.trustedProxies;
  if (Array.isArray(proxies)) {
    for (const entry of proxies) {
      const problem = typeof entry === 'string' ? proxyRangeProblem(entry) : null;
      if (problem)
        problems.push({
          key: 'server.trustedProxies',
          source: sourceOf('server.trustedProxies', sources),
          message: problem,
        });
    }
  }
  const ipRules = (withDefaults as { protection?: { ipRules?: Record<string, unknown> } }).protection
    ?.ipRules;
  for (const action of ['allow', 'deny']) {
    const entries = ipRules?.[action];
    if (!Array.isArray(entries)) continue;
    for (const entry of entries) {
      const cidr = (entry as { cidr?: unknown } | null)?.cidr;
      if (typeof cidr !== 'string' || parseCidr(cidr) !== null) continue;
      const key = `protection.ipRules.${action}`;
      problems.push({
        key,
        source: sourceOf(key, sources),
        message: `"${cidr}" is not an IP address or CIDR`,
      });
    }
  }
  const detectionClasses = (withDefaults as { protection?: { detection?: { classes?: unknown } } }).protection
    ?.detection?.classes;
  if (detectionClasses && typeof detectionClasses === 'object') {
    for (const name of Object.keys(detectionClasses)) {
      if ((ATTACK_CLASSES as readonly string[]).includes(name)) continue;
      const key = 'protection.detection.classes';
      problems.push({
        key,
        source: sourceOf(key, sources),
        message: `"${name}" is not an attack class (${ATTACK_CLASSES.join(', ')})`,
      });
    }
  }
  if (problems.length > 0) throw new ConfigError(dedupe(problems));
  return withDefaults as BastionConfig;
}

async function readConfigFile(file: string, problems: ConfigProblem[]): Promise<Tree> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    problems.push({
      key: CONFIG_FILE_VARIABLE,
      source: `file ${file}`,
      message: `cannot read: ${errorText(error)}`,
    });
    return {};
  }
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    problems.push({
      key: CONFIG_FILE_VARIABLE,
      source: `file ${file}`,
      // First line only: the parser's excerpt of the file could show a secret written next to the error.
      message: `cannot parse: ${errorText(error).split('\n')[0]}`,
    });
    return {};
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    problems.push({
      key: CONFIG_FILE_VARIABLE,
      source: `file ${file}`,
      message: 'must contain an object at the top',
    });
    return {};
  }
  return withoutForbiddenKeys(parsed as Tree, '', `file ${file}`, problems);
}

// Keys that would reach an object's prototype when merged: a config file must never be able to
// change the behaviour of every object in the process (e.g. give every route `auth: 'public'`).
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function withoutForbiddenKeys(tree: Tree, prefix: string, source: string, problems: ConfigProblem[]): Tree {
  const clean: Tree = {};
  for (const [key, value] of Object.entries(tree)) {
    const keyPath = prefix ? `${prefix}.${key}` : key;
    if (FORBIDDEN_KEYS.has(key)) {
      problems.push({ key: keyPath, source, message: 'is not allowed in a config file' });
      continue;
    }
    clean[key] = cleanValue(value, keyPath, source, problems);
  }
  return clean;
}

function cleanValue(value: unknown, keyPath: string, source: string, problems: ConfigProblem[]): unknown {
  if (Array.isArray(value))
    return value.map((item, index) => cleanValue(item, `${keyPath}.${index}`, source, problems));
  return isPlainObject(value) ? withoutForbiddenKeys(value, keyPath, source, problems) : value;
}

function parseEnv(variable: EnvVariable, raw: string, problems: ConfigProblem[]): unknown {
  const fail = (message: string) => {
    problems.push({ key: variable.path, source: `env ${variable.name}`, message });
    return undefined;
  };
  switch (variable.kind) {
    case 'string':
      return raw;
    case 'integer':
      return /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : fail(`expected a whole number, got "${raw}"`);
    case 'boolean': {
      const value = raw.trim().toLowerCase();
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      return fail(`expected true or false, got "${raw}"`);
    }
    case 'list':
      return raw
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item.length > 0);
    case 'listen': {
      const match = /^(.+):(\d{1,5})$/.exec(raw.trim());
      if (!match) return fail(`expected HOST:PORT, got "${raw}"`);
      return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) };
    }
  }
}

function mergeInto(
  target: Tree,
  source: Tree,
  prefix: string,
  sources: Map<string, string>,
  label: string,
): void {
  for (const [key, value] of Object.entries(source)) {
    const keyPath = prefix ? `${prefix}.${key}` : key;
    if (isPlainObject(value) && isPlainObject(target[key])) {
      mergeInto(target[key] as Tree, value, keyPath, sources, label);
    } else {
      target[key] = isPlainObject(value) ? structuredClone(value) : value;
    }
    sources.set(keyPath, label);
  }
}

// TypeBox stops after 8 errors by default (a guard for untrusted input); a config file is the
// operator's own, and every problem should be listed at once.
const MAX_CONFIG_ERRORS = 1000;

function allErrors(value: unknown): SchemaError[] {
  const previous = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: MAX_CONFIG_ERRORS });
  try {
    return Value.Errors(ConfigSchema, value);
  } finally {
    Settings.Set({ maxErrors: previous });
  }
}

interface SchemaError {
  instancePath: string;
  message: string;
  keyword: string;
  params: unknown;
}

/** Turns the validator's errors at one path into problems a person can act on. */
function describeSchemaErrors(errors: SchemaError[], sources: Map<string, string>): ConfigProblem[] {
  const segments = errors[0]!.instancePath.split('/').filter(Boolean);
  const key = segments.join('.') || '(root)';
  const problem = (at: string, message: string): ConfigProblem => ({
    key: at,
    source: sourceOf(at, sources),
    message,
  });
  const unknown = errors.filter(
    (error) => error.keyword === 'additionalProperties' || error.keyword === 'boolean',
  );
  if (unknown.length > 0) {
    // A property rejected by `additionalProperties: false` shows up at the parent and at the key.
    return unknown
      .filter((error) => error.keyword === 'boolean')
      .map(() => problem(key, `unknown key; allowed: ${allowedKeys(segments.slice(0, -1)).join(', ')}`));
  }
  if (errors.some((error) => ['anyOf', 'const', 'enum'].includes(error.keyword))) {
    const literals = expectedFor(segments);
    if (literals) return [problem(key, `expected one of: ${literals}`)];
    const reasons = new Set(
      errors
        .filter(
          (error) => !['anyOf', 'const', 'enum'].includes(error.keyword) && error.message !== 'must be null',
        )
        .map((e) => e.message),
    );
    return [problem(key, [...reasons].join('; ') || 'has the wrong type')];
  }
  const meaningful = errors.length > 1 ? errors.filter((error) => error.message !== 'must be null') : errors;
  return meaningful.map((error) => {
    const params = (error.params ?? {}) as Record<string, unknown>;
    if (error.keyword === 'required' && Array.isArray(params.requiredProperties)) {
      return problem(key, `missing ${(params.requiredProperties as string[]).join(', ')}`);
    }
    return problem(key, error.message);
  });
}

function allowedKeys(segments: string[]): string[] {
  let schema: unknown = ConfigSchema;
  for (const segment of segments) {
    schema = objectBranch(schema)?.properties?.[segment];
  }
  return Object.keys(objectBranch(schema)?.properties ?? {});
}

type SchemaNode = {
  properties?: Record<string, unknown>;
  anyOf?: unknown[];
  allOf?: unknown[];
  enum?: unknown[];
};

function objectBranch(schema: unknown): SchemaNode | undefined {
  const node = schema as SchemaNode | undefined;
  if (!node) return undefined;
  if (node.properties) return node;
  for (const branch of [...(node.anyOf ?? []), ...(node.allOf ?? [])]) {
    const found = objectBranch(branch);
    if (found) return found;
  }
  return undefined;
}

function expectedFor(segments: string[]): string {
  let schema: unknown = ConfigSchema;
  for (const segment of segments) schema = objectBranch(schema)?.properties?.[segment];
  return collectLiterals(schema).join(', ');
}

function collectLiterals(schema: unknown): string[] {
  const node = schema as (SchemaNode & { const?: unknown }) | undefined;
  if (!node) return [];
  if (node.const !== undefined) return [String(node.const)];
  if (node.enum) return node.enum.map(String);
  return [...(node.anyOf ?? []), ...(node.allOf ?? [])].flatMap(collectLiterals);
}

function sourceOf(key: string, sources: Map<string, string>): string {
  for (let probe = key; probe; probe = probe.includes('.') ? probe.slice(0, probe.lastIndexOf('.')) : '') {
    const source = sources.get(probe);
    if (source) return source;
  }
  return 'defaults';
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const id = `${problem.key}|${problem.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function setPath(tree: Tree, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as Tree;
  }
  node[parts.at(-1)!] = value;
}

function getPath(tree: Tree, dotted: string): unknown {
  let node: unknown = tree;
  for (const part of dotted.split('.')) {
    if (!isPlainObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

function isPlainObject(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
