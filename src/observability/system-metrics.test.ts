import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerRuntimeMetrics } from './runtime-metrics.ts';
import { parseNetDev, registerSystemMetrics } from './system-metrics.ts';

const SAMPLE = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1201526660 3661324    0    0    0     0          0         0 1201526660 3661324    0    0    0     0       0          0
  eth0: 287228636    9377    0    0    0     0          0         0   873577    6953    0    0    0     0       0          0
wlp2s0:98765432109876 5 0 0 0 0 0 0 12345678901234 6 0 0 0 0 0 0
 br-1a2b.10:       7       1    0    0    0     0          0         0        9       1    0    0    0     0       0          0
 broken: 1 2 3
`;

type Sample = { labels: Record<string, string | number>; value: number };

async function samples(registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  return (await metric.get()).values as Sample[];
}

describe('parseNetDev', () => {
  it('reads received and transmitted bytes per interface, skipping the two header lines', () => {
    expect(parseNetDev(SAMPLE)).toEqual([
      { iface: 'lo', rx: 1201526660, tx: 1201526660 },
      { iface: 'eth0', rx: 287228636, tx: 873577 },
      { iface: 'wlp2s0', rx: 98765432109876, tx: 12345678901234 },
      { iface: 'br-1a2b.10', rx: 7, tx: 9 },
    ]);
  });

  it('returns nothing for empty or header-only text', () => {
    expect(parseNetDev('')).toEqual([]);
    expect(parseNetDev(SAMPLE.split('\n').slice(0, 2).join('\n'))).toEqual([]);
  });
});

describe('registerSystemMetrics', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bastion-sysmetrics-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('mirrors the kernel network counters on every scrape instead of adding them up', async () => {
    const netDevPath = path.join(dir, 'net-dev');
    await writeFile(netDevPath, SAMPLE);
    const registry = new Registry();
    registerSystemMetrics(registry, { diskPath: dir, netDevPath });

    const value = (list: Sample[], iface: string, direction: string) =>
      list.find((s) => s.labels.interface === iface && s.labels.direction === direction)?.value;
    let list = await samples(registry, 'host_network_io_bytes_total');
    expect(value(list, 'eth0', 'receive')).toBe(287228636);
    expect(value(list, 'eth0', 'transmit')).toBe(873577);
    expect(list).toHaveLength(8);

    list = await samples(registry, 'host_network_io_bytes_total');
    expect(value(list, 'eth0', 'receive')).toBe(287228636);

    await writeFile(netDevPath, SAMPLE.replace('287228636', '287229000'));
    list = await samples(registry, 'host_network_io_bytes_total');
    expect(value(list, 'eth0', 'receive')).toBe(287229000);
    expect(value(list, 'lo', 'transmit')).toBe(1201526660);
  });

  it('reports no network series when the counters file is missing', async () => {
    const registry = new Registry();
    registerSystemMetrics(registry, { diskPath: dir, netDevPath: path.join(dir, 'absent') });
    expect(await samples(registry, 'host_network_io_bytes_total')).toEqual([]);
  });

  it('reports consistent disk, memory, CPU and event-loop values', async () => {
    const registry = new Registry();
    registerSystemMetrics(registry, { diskPath: dir });
    const byState = (list: Sample[]) => Object.fromEntries(list.map((s) => [s.labels.state, s.value]));

    const disk = byState(await samples(registry, 'host_disk_bytes'));
    expect(disk.total).toBeGreaterThan(0);
    expect(disk.available).toBeGreaterThanOrEqual(0);
    expect(disk.available).toBeLessThanOrEqual(disk.total!);
    expect(disk.used).toBeLessThanOrEqual(disk.total!);

    const memory = byState(await samples(registry, 'host_memory_bytes'));
    expect(memory.total).toBe(os.totalmem());
    expect(memory.used! + memory.free!).toBe(memory.total);

    for (const name of ['host_cpu_utilization_ratio', 'nodejs_eventloop_utilization_ratio']) {
      const [sample] = await samples(registry, name);
      expect(sample!.value).toBeGreaterThanOrEqual(0);
      expect(sample!.value).toBeLessThanOrEqual(1);
    }
    expect((await samples(registry, 'host_cpu_logical_cpus'))[0]!.value).toBe(os.availableParallelism());
    const load = await samples(registry, 'host_load_average');
    expect(load.map((s) => s.labels.period).sort()).toEqual(['15m', '1m', '5m']);
  });

  it('reports no disk values (rather than wrong ones) when the directory does not exist', async () => {
    const registry = new Registry();
    registerSystemMetrics(registry, { diskPath: path.join(dir, 'not', 'there') });
    expect(await samples(registry, 'host_disk_bytes')).toEqual([]);
  });

  it('leaves no gauge with a counter or histogram suffix among the default and system metrics', async () => {
    const registry = new Registry();
    registerRuntimeMetrics(registry);
    registerSystemMetrics(registry, { diskPath: dir });
    const metrics = await registry.getMetricsAsJSON();
    const names = metrics.map((m) => m.name);
    expect(names).toContain('nodejs_active_handles');
    expect(names).not.toContain('nodejs_active_handles_total');
    const misnamed = metrics
      .filter((m) => String(m.type) !== 'counter' && /_total$/.test(m.name))
      .concat(
        metrics.filter((m) => !['histogram', 'summary'].includes(String(m.type)) && /_count$/.test(m.name)),
      )
      .map((m) => m.name);
    expect(misnamed).toEqual([]);
  });
});
