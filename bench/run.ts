/**
 * Throughput/latency benchmark: the same GET /hello route on a bare Fastify server, behind Bastion,
 * and behind the popular Fastify and Express plugin stacks that cover similar ground.
 *
 * Each server runs alone in its own child process while autocannon drives it from this process.
 * Stages are interleaved within every round (a, b, c, d, a, b, ...) so slow drift in machine load
 * is spread over all stages instead of penalising whichever ran last; the report uses medians.
 *
 * Usage: node --import tsx bench/run.ts [--duration 5] [--connections 50] [--rounds 3]
 *        [--warmup 1] [--only a,c,d] [--origin https://app.example.com]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import {
  ALLOWED_ORIGIN,
  EXPECTED_BODY,
  JWT_AUDIENCE,
  JWT_ISSUER,
  JWT_SECRET_ENV,
  ROUTE_PATH,
} from './servers/shared.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT_DIR = path.resolve(BENCH_DIR, '..');
const RESULTS_FILE = path.join(BENCH_DIR, 'results', 'latest.json');
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

interface Stage {
  letter: string;
  name: string;
  file: string;
  summary: string;
}

const STAGES: readonly Stage[] = [
  { letter: 'a', name: 'bare', file: 'servers/bare.ts', summary: 'bare Fastify route, no logger' },
  { letter: 'b', name: 'bastion', file: 'servers/bastion.ts', summary: "Bastion's full pipeline" },
  {
    letter: 'e',
    name: 'bastion-auth',
    file: 'servers/bastion-auth.ts',
    summary: "Bastion's full pipeline + EdDSA access token + revocation check + permission",
  },
  {
    letter: 'c',
    name: 'fastify-peers',
    file: 'servers/fastify-peers.ts',
    summary: 'Fastify + helmet + cors + rate-limit + pino + prom-client + jose',
  },
  {
    letter: 'd',
    name: 'express-peers',
    file: 'servers/express-peers.ts',
    summary: 'Express 5 + helmet + cors + express-rate-limit + pino-http + prom-client + jsonwebtoken',
  },
];

interface Options {
  duration: number;
  connections: number;
  rounds: number;
  warmup: number;
  stages: Stage[];
  origin: string;
}

/** One measurement of one stage in one round. */
interface Measurement {
  ok: true;
  round: number;
  reqPerSec: number;
  totalRequests: number;
  /** Percentiles computed here from every 2xx response time (sub-millisecond resolution). */
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** autocannon's own percentiles, kept for reference (its histogram stores whole milliseconds). */
  autocannonP50Ms: number;
  autocannonP99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  statusCodes: Record<string, number>;
  /** Server process CPU time (user + system) per request, microseconds; null off Linux. */
  cpuUsPerRequest: number | null;
}

interface Failure {
  ok: false;
  round: number;
  phase: 'start' | 'verify' | 'measure' | 'skipped';
  error: string;
}

type RoundResult = Measurement | Failure;

interface StageReport {
  stage: Stage;
  rounds: RoundResult[];
  median: { reqPerSec: number; p50Ms: number; p99Ms: number; cpuUsPerRequest: number | null } | null;
  totals: { non2xx: number; errors: number; timeouts: number; mismatches: number };
  ratioToBare: number | null;
  /** Server CPU per request relative to (a): how many bare requests one request costs. */
  costToBare: number | null;
  problems: string[];
}

function parseCommandLine() {
  return parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      only: { type: 'string' },
      origin: { type: 'string', default: ALLOWED_ORIGIN },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
}

function parseOptions(): Options {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine();
  } catch (error) {
    // parseArgs throws TypeErrors for unknown flags; they are usage mistakes, not crashes.
    throw new UsageError(errorText(error));
  }
  const { values } = parsed;
  if (values.help) {
    console.log(
      [
        'Usage: node --import tsx bench/run.ts [options]',
        '  --duration <s>     seconds measured per stage and round (default 5)',
        '  --connections <n>  concurrent connections (default 50)',
        '  --rounds <n>       rounds; each runs every stage once (default 3)',
        '  --warmup <s>       unmeasured seconds before each measurement (default 1, 0 = none)',
        '  --only <list>      stages to run, by letter or name, e.g. a,c,d or bare,bastion',
        `  --origin <url>     Origin header sent with every request (default ${ALLOWED_ORIGIN}; '' = none)`,
        '',
        'Stages:',
        ...STAGES.map((stage) => `  (${stage.letter}) ${stage.name.padEnd(14)} ${stage.summary}`),
      ].join('\n'),
    );
    process.exit(0);
  }
  return {
    duration: positiveNumber('duration', values.duration, false),
    connections: positiveNumber('connections', values.connections, false),
    rounds: positiveNumber('rounds', values.rounds, false),
    warmup: positiveNumber('warmup', values.warmup, true),
    stages: selectStages(values.only),
    origin: values.origin,
  };
}

function positiveNumber(name: string, raw: string, zeroAllowed: boolean): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || (value === 0 && !zeroAllowed)) {
    throw new UsageError(
      `--${name} must be a ${zeroAllowed ? 'non-negative' : 'positive'} integer, got '${raw}'`,
    );
  }
  return value;
}

function selectStages(only: string | undefined): Stage[] {
  if (only === undefined) return [...STAGES];
  const wanted = new Set<Stage>();
  for (const token of only.split(',').map((part) => part.trim().toLowerCase())) {
    if (token === '') continue;
    const stage = STAGES.find((candidate) => candidate.letter === token || candidate.name === token);
    if (!stage) {
      const known = STAGES.map((candidate) => `${candidate.letter}/${candidate.name}`).join(', ');
      throw new UsageError(`--only: unknown stage '${token}' (known: ${known})`);
    }
    wanted.add(stage);
  }
  if (wanted.size === 0) throw new UsageError('--only selected no stage');
  // Always run in canonical order so every round interleaves stages the same way.
  return STAGES.filter((stage) => wanted.has(stage));
}

class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------
// Server processes

interface RunningServer {
  child: ChildProcess;
  port: number;
  output: OutputTail;
  /** Headers the server asked for with `HEADER <name> <value>` lines (e.g. its own access token). */
  headers: Record<string, string>;
}

/** Keeps the last few KB a server printed, to explain a failure without flooding the terminal. */
class OutputTail {
  private text = '';
  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-4000);
  }
  toString(): string {
    return this.text.trim();
  }
}

let currentChild: ChildProcess | undefined;

function startServer(stage: Stage, env: NodeJS.ProcessEnv): Promise<RunningServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, stage.file)], {
    cwd: ROOT_DIR,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  currentChild = child;
  const output = new OutputTail();
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));

  return new Promise<RunningServer>((resolve, reject) => {
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const tail = output.toString();
      reject(new Error(tail ? `${message}\n${indent(tail, '| ')}` : message));
    };
    const timer = setTimeout(
      () => fail(`no 'READY <port>' line within ${READY_TIMEOUT_MS / 1000} s`),
      READY_TIMEOUT_MS,
    );
    // The reader keeps draining stdout after READY so a chatty server can never block on a full pipe.
    const lines = createInterface({ input: child.stdout! });
    const headers: Record<string, string> = {};
    lines.on('line', (line) => {
      const header = /^HEADER ([a-z-]+) (.+)$/.exec(line.trim());
      if (header && !settled) {
        headers[header[1]!] = header[2]!;
        return;
      }
      const match = /^READY (\d+)$/.exec(line.trim());
      if (!match || settled) {
        output.push(`${line}\n`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve({ child, port: Number(match[1]), output, headers });
    });
    child.once('error', (error) => fail(`could not spawn: ${error.message}`));
    // 'close' rather than 'exit': it fires after stderr is drained, so the tail holds the crash reason.
    child.once('close', (code, signal) => fail(`exited before READY (${signal ?? `code ${code}`})`));
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
  if (currentChild === child) currentChild = undefined;
}

// ---------------------------------------------------------------------------------------------
// Load generation

/** One plain request with the benchmark's headers; the stage fails unless the answer is exact. */
async function verify(url: string, headers: Record<string, string>): Promise<void> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  const body = await response.text();
  if (response.status !== 200) {
    throw new Error(`GET ${ROUTE_PATH} answered ${response.status}: ${body.slice(0, 300)}`);
  }
  if (body !== EXPECTED_BODY) {
    throw new Error(`GET ${ROUTE_PATH} body differs: expected ${EXPECTED_BODY}, got ${body.slice(0, 300)}`);
  }
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('application/json')) {
    throw new Error(`GET ${ROUTE_PATH} content-type is '${type}', expected application/json`);
  }
}

/** Growable buffer of response times; avoids boxing hundreds of thousands of numbers in an array. */
class Samples {
  private data = new Float64Array(1 << 16);
  private size = 0;
  add(value: number): void {
    if (this.size === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.size++] = value;
  }
  sorted(): Float64Array {
    return this.data.slice(0, this.size).sort();
  }
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

function runCannon(
  url: string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
  samples?: Samples,
): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url, connections, pipelining: 1, duration: seconds, headers, expectBody: EXPECTED_BODY },
      (error: unknown, result: autocannon.Result) => (error ? reject(error) : resolve(result)),
    );
    if (samples) {
      // autocannon's histogram truncates to whole milliseconds, too coarse for loopback latencies.
      instance.on('response', (_client, statusCode, _bytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) samples.add(responseTime);
      });
    }
  });
}

// Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ is 100 on Linux).
const CLOCK_TICKS = 100;

/** CPU time (user + system) a process has used, in seconds, or null where /proc is missing. */
async function cpuSeconds(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

async function measure(
  round: number,
  port: number,
  pid: number | undefined,
  headers: Record<string, string>,
  options: Options,
): Promise<Measurement> {
  const url = `http://127.0.0.1:${port}${ROUTE_PATH}`;
  if (options.warmup > 0) await runCannon(url, headers, options.connections, options.warmup);
  const samples = new Samples();
  const cpuBefore = await cpuSeconds(pid);
  const result = await runCannon(url, headers, options.connections, options.duration, samples);
  const cpuAfter = await cpuSeconds(pid);
  const sorted = samples.sorted();
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) {
    statusCodes[code] = stat.count ?? 0;
  }
  return {
    ok: true,
    round,
    reqPerSec: result.requests.average,
    totalRequests: result.requests.total,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    meanMs: sorted.length === 0 ? Number.NaN : sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
    autocannonP50Ms: result.latency.p50,
    autocannonP99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches,
    statusCodes,
    cpuUsPerRequest:
      cpuBefore === null || cpuAfter === null || result.requests.total === 0
        ? null
        : ((cpuAfter - cpuBefore) * 1e6) / result.requests.total,
  };
}

// ---------------------------------------------------------------------------------------------
// Reporting

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[middle] ?? Number.NaN;
  return ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

function summarise(stage: Stage, rounds: RoundResult[]): StageReport {
  const measured = rounds.filter((round): round is Measurement => round.ok);
  const problems: string[] = [];
  for (const round of rounds) {
    if (!round.ok) {
      problems.push(
        round.phase === 'skipped'
          ? `round ${round.round}: skipped (${round.error})`
          : `round ${round.round}: ${round.phase} failed: ${round.error}`,
      );
      continue;
    }
    const bad: string[] = [];
    if (round.non2xx > 0) {
      const codes = Object.entries(round.statusCodes)
        .filter(([code]) => !code.startsWith('2'))
        .map(([code, count]) => `${code}×${count}`)
        .join(', ');
      bad.push(`${round.non2xx} non-2xx (${codes})`);
    }
    if (round.errors > 0) bad.push(`${round.errors} errors (${round.timeouts} timeouts)`);
    if (round.mismatches > 0) bad.push(`${round.mismatches} bodies differing from ${EXPECTED_BODY}`);
    if (bad.length > 0) problems.push(`round ${round.round}: ${bad.join('; ')}`);
  }
  const sum = (pick: (round: Measurement) => number): number =>
    measured.reduce((total, round) => total + pick(round), 0);
  return {
    stage,
    rounds,
    median:
      measured.length === 0
        ? null
        : {
            reqPerSec: median(measured.map((round) => round.reqPerSec)),
            p50Ms: median(measured.map((round) => round.p50Ms)),
            p99Ms: median(measured.map((round) => round.p99Ms)),
            cpuUsPerRequest: measured.every((round) => round.cpuUsPerRequest !== null)
              ? median(measured.map((round) => round.cpuUsPerRequest as number))
              : null,
          },
    totals: {
      non2xx: sum((round) => round.non2xx),
      errors: sum((round) => round.errors),
      timeouts: sum((round) => round.timeouts),
      mismatches: sum((round) => round.mismatches),
    },
    ratioToBare: null,
    costToBare: null,
    problems,
  };
}

function renderTable(header: string[], rows: string[][], rightAligned: Set<number>): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return rightAligned.has(column) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(2) : '-');

function renderReport(reports: StageReport[], options: Options): string {
  const rows = reports.map((report) => {
    const measured = report.rounds.filter((round): round is Measurement => round.ok);
    const flag = report.problems.length > 0 ? ' !' : '';
    return [
      `(${report.stage.letter}) ${report.stage.name}${flag}`,
      report.median ? integer.format(report.median.reqPerSec) : 'FAILED',
      report.ratioToBare === null ? '-' : report.ratioToBare.toFixed(2),
      report.median ? ms(report.median.p50Ms) : '-',
      report.median ? ms(report.median.p99Ms) : '-',
      report.median?.cpuUsPerRequest == null ? '-' : report.median.cpuUsPerRequest.toFixed(1),
      report.costToBare === null ? '-' : report.costToBare.toFixed(2),
      String(report.totals.non2xx),
      String(report.totals.errors),
      `${measured.length}/${report.rounds.length}`,
      measured.map((round) => integer.format(round.reqPerSec)).join(' / ') || '-',
    ];
  });
  const table = renderTable(
    [
      'stage',
      'req/s',
      'vs (a)',
      'p50 ms',
      'p99 ms',
      'CPU µs/req',
      'CPU vs (a)',
      'non-2xx',
      'errors',
      'ok',
      'req/s per round',
    ],
    rows,
    new Set([1, 2, 3, 4, 5, 6, 7, 8, 9]),
  );
  const lines = [
    '',
    `Medians over ${options.rounds} round(s) of ${options.duration} s, ${options.connections} connections, ` +
      `pipelining 1; non-2xx and errors are totals over all rounds.`,
    '',
    table,
    '',
  ];
  if (!reports.some((report) => report.stage.letter === 'a')) {
    lines.push('(ratios need stage (a) in the same run; it was not selected)', '');
  }
  const troubled = reports.filter((report) => report.problems.length > 0);
  if (troubled.length > 0) {
    lines.push(
      '!!! PROBLEMS: the stages below returned errors or failed; their numbers do not measure the route.',
    );
    for (const report of troubled) {
      lines.push(`  (${report.stage.letter}) ${report.stage.name}:`);
      for (const problem of report.problems) lines.push(indent(problem, '      '));
    }
    lines.push('');
  }
  return lines.join('\n');
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((line) => `${prefix}${line}`)
    .join('\n');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function packageVersions(names: string[]): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  for (const name of names) {
    try {
      const manifest: unknown = JSON.parse(
        await readFile(path.join(ROOT_DIR, 'node_modules', name, 'package.json'), 'utf8'),
      );
      if (typeof manifest === 'object' && manifest !== null && 'version' in manifest) {
        versions[name] = String(manifest.version);
      }
    } catch {
      versions[name] = 'unknown';
    }
  }
  return versions;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseOptions();

  // A fresh secret per run; servers get it through the environment, the client a token signed once.
  const secret = randomBytes(32);
  const token = await new SignJWT({ scope: 'bench' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setSubject('bench-user')
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(secret);
  // Every stage receives byte-identical requests, including the ones that ignore these headers;
  // only (e) replaces Authorization with an access token of its own (see its HEADER line).
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (options.origin !== '') headers.origin = options.origin;
  const env: NodeJS.ProcessEnv = { ...process.env, [JWT_SECRET_ENV]: secret.toString('base64url') };

  const cpus = os.cpus();
  const cpuModel = cpus[0]?.model ?? 'unknown';
  const loadAverageAtStart = os.loadavg();
  if ((loadAverageAtStart[0] ?? 0) > cpus.length) {
    // Not fatal (ratios within one run still mean something) but worth knowing before trusting them.
    console.error(
      `bench: WARNING load average ${loadAverageAtStart[0]?.toFixed(1)} exceeds ${cpus.length} CPUs; ` +
        'other processes compete with the benchmark and numbers will be noisy',
    );
  }
  console.error(
    `bench: node ${process.version}, ${cpus.length} x ${cpuModel}; stages ${options.stages
      .map((stage) => stage.letter)
      .join(',')}; ${options.rounds} round(s) x ${options.duration} s (+${options.warmup} s warm-up), ` +
      `${options.connections} connections`,
  );

  const results = new Map<Stage, RoundResult[]>(options.stages.map((stage) => [stage, []]));
  // A stage that cannot start or answers wrongly will not do better next round; skip it then.
  const broken = new Set<Stage>();

  for (let round = 1; round <= options.rounds; round++) {
    for (const stage of options.stages) {
      const record = results.get(stage)!;
      const label = `[round ${round}/${options.rounds}] (${stage.letter}) ${stage.name}`;
      if (broken.has(stage)) {
        record.push({ ok: false, round, phase: 'skipped', error: 'failed in an earlier round' });
        continue;
      }
      let server: RunningServer;
      try {
        server = await startServer(stage, env);
      } catch (error) {
        console.error(`${label}: FAILED to start`);
        record.push({ ok: false, round, phase: 'start', error: errorText(error) });
        broken.add(stage);
        continue;
      }
      try {
        try {
          await verify(`http://127.0.0.1:${server.port}${ROUTE_PATH}`, { ...headers, ...server.headers });
        } catch (error) {
          console.error(`${label}: FAILED response check`);
          record.push({ ok: false, round, phase: 'verify', error: errorText(error) });
          broken.add(stage);
          continue;
        }
        try {
          const stageHeaders = { ...headers, ...server.headers };
          const measurement = await measure(round, server.port, server.child.pid, stageHeaders, options);
          record.push(measurement);
          const warning = measurement.non2xx + measurement.errors + measurement.mismatches > 0 ? '  !!!' : '';
          console.error(
            `${label}: ${integer.format(measurement.reqPerSec)} req/s, p50 ${ms(measurement.p50Ms)} ms, ` +
              `p99 ${ms(measurement.p99Ms)} ms, non-2xx ${measurement.non2xx}, errors ${measurement.errors}${warning}`,
          );
        } catch (error) {
          console.error(`${label}: FAILED during measurement`);
          const tail = server.output.toString();
          const message = errorText(error);
          record.push({
            ok: false,
            round,
            phase: 'measure',
            error: tail ? `${message}\n${indent(tail, '| ')}` : message,
          });
        }
      } finally {
        await stopServer(server.child);
      }
    }
  }

  const reports = options.stages.map((stage) => summarise(stage, results.get(stage)!));
  const bare = reports.find((report) => report.stage.letter === 'a')?.median?.reqPerSec;
  for (const report of reports) {
    if (bare !== undefined && bare > 0 && report.median) report.ratioToBare = report.median.reqPerSec / bare;
  }
  const bareCpu = reports.find((report) => report.stage.letter === 'a')?.median?.cpuUsPerRequest;
  for (const report of reports) {
    const cpu = report.median?.cpuUsPerRequest;
    if (bareCpu && cpu != null) report.costToBare = cpu / bareCpu;
  }

  console.log(renderReport(reports, options));

  await mkdir(path.dirname(RESULTS_FILE), { recursive: true });
  const document = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: { model: cpuModel, count: cpus.length },
    loadAverage: { atStart: loadAverageAtStart, atEnd: os.loadavg() },
    packages: await packageVersions([
      'autocannon',
      'fastify',
      '@fastify/helmet',
      '@fastify/cors',
      '@fastify/rate-limit',
      'express',
      'helmet',
      'cors',
      'express-rate-limit',
      'pino',
      'pino-http',
      'prom-client',
      'jose',
      'jsonwebtoken',
    ]),
    parameters: {
      durationSeconds: options.duration,
      warmupSeconds: options.warmup,
      connections: options.connections,
      pipelining: 1,
      rounds: options.rounds,
      stages: options.stages.map((stage) => stage.letter),
      route: `GET ${ROUTE_PATH}`,
      expectedBody: EXPECTED_BODY,
      requestHeaders: Object.keys(headers),
      latencyNote: 'p50Ms/p99Ms: from every 2xx response time; autocannonP50Ms/P99Ms: whole-ms histogram',
      medianNote: 'reqPerSec, p50Ms and p99Ms are medians over successful rounds; ratioToBare uses reqPerSec',
    },
    stages: reports.map((report) => ({
      letter: report.stage.letter,
      name: report.stage.name,
      summary: report.stage.summary,
      rounds: report.rounds,
      median: report.median,
      totals: report.totals,
      ratioToBare: report.ratioToBare,
      costToBare: report.costToBare,
      problems: report.problems,
    })),
  };
  await writeFile(RESULTS_FILE, `${JSON.stringify(document, null, 2)}\n`);
  console.error(`results written to ${path.relative(ROOT_DIR, RESULTS_FILE)}`);

  return reports.some((report) => report.problems.length > 0) ? 1 : 0;
}

// Never leave a server running behind an interrupted benchmark.
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    currentChild?.kill('SIGKILL');
    process.exit(code);
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    currentChild?.kill('SIGKILL');
    if (error instanceof UsageError) {
      console.error(`bench: ${error.message} (see --help)`);
      process.exitCode = 2;
    } else {
      console.error('bench failed:', error);
      process.exitCode = 1;
    }
  },
);
