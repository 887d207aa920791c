import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, type Registry } from 'prom-client';

/** Options for `registerSystemMetrics`. */
export interface SystemMetricsOptions {
  /** Directory whose filesystem is measured (default: the working directory). */
  diskPath: string;
  /** Linux network counters file (default `/proc/net/dev`; absent on other systems). */
  netDevPath?: string;
}

function cpuTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/**
 * Share of host CPU time spent busy since this reader's previous call (0–1). Each reader keeps
 * its own baseline, so a Prometheus scrape and the metric history do not shorten each other's
 * interval.
 */
export function cpuUtilizationReader(): () => number {
  let last = cpuTimes();
  return () => {
    const now = cpuTimes();
    const total = now.total - last.total;
    const busy = total - (now.idle - last.idle);
    last = now;
    return total > 0 ? busy / total : 0;
  };
}

/** Share of time the event loop was busy since this reader's previous call (0–1), own baseline. */
export function eventLoopUtilizationReader(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const ratio = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return ratio;
  };
}

/** Parses `/proc/net/dev` into per-interface received and transmitted byte counts. */
export function parseNetDev(text: string): Array<{ iface: string; rx: number; tx: number }> {
  const rows: Array<{ iface: string; rx: number; tx: number }> = [];
  for (const line of text.split('\n').slice(2)) {
    const match = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!match) continue;
    const fields = match[2]!.trim().split(/\s+/).map(Number);
    if (fields.length < 9) continue;
    rows.push({ iface: match[1]!, rx: fields[0]!, tx: fields[8]! });
  }
  return rows;
}

/**
 * Host and runtime metrics read at scrape time: CPU, memory, disk (statfs), network bytes and
 * event-loop utilisation. Nothing runs between scrapes.
 */
export function registerSystemMetrics(registry: Registry, options: SystemMetricsOptions): void {
  const cpu = cpuUtilizationReader();
  new Gauge({
    name: 'host_cpu_utilization_ratio',
    help: 'Share of host CPU time spent busy since the previous scrape (0-1).',
    registers: [registry],
    collect() {
      this.set(cpu());
    },
  });
  new Gauge({
    // Not `_count`: promtool reserves that suffix for histograms and summaries.
    name: 'host_cpu_logical_cpus',
    help: 'Number of logical CPUs.',
    registers: [registry],
    collect() {
      this.set(os.availableParallelism());
    },
  });
  new Gauge({
    name: 'host_load_average',
    help: 'Host load average over the period.',
    labelNames: ['period'],
    registers: [registry],
    collect() {
      const [one, five, fifteen] = os.loadavg();
      this.set({ period: '1m' }, one ?? 0);
      this.set({ period: '5m' }, five ?? 0);
      this.set({ period: '15m' }, fifteen ?? 0);
    },
  });
  new Gauge({
    name: 'host_memory_bytes',
    help: 'Host physical memory by state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const total = os.totalmem();
      const free = os.freemem();
      this.set({ state: 'total' }, total);
      this.set({ state: 'free' }, free);
      this.set({ state: 'used' }, total - free);
    },
  });
  new Gauge({
    name: 'host_disk_bytes',
    help: 'Filesystem space of the data directory by state.',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      try {
        const stats = await statfs(options.diskPath);
        const total = stats.blocks * stats.bsize;
        const available = stats.bavail * stats.bsize;
        this.set({ state: 'total' }, total);
        this.set({ state: 'available' }, available);
        this.set({ state: 'used' }, total - stats.bfree * stats.bsize);
      } catch {
        // The directory may not exist yet; report nothing rather than a wrong value.
      }
    },
  });
  const netDevPath = options.netDevPath ?? '/proc/net/dev';
  new Counter({
    name: 'host_network_io_bytes_total',
    help: 'Bytes received and transmitted by network interface since boot.',
    labelNames: ['interface', 'direction'],
    registers: [registry],
    async collect() {
      let text: string;
      try {
        text = await readFile(netDevPath, 'utf8');
      } catch {
        return;
      }
      // The kernel keeps the running totals; mirror them rather than accumulate.
      this.reset();
      for (const row of parseNetDev(text)) {
        this.inc({ interface: row.iface, direction: 'receive' }, row.rx);
        this.inc({ interface: row.iface, direction: 'transmit' }, row.tx);
      }
    },
  });
  const eventLoop = eventLoopUtilizationReader();
  new Gauge({
    name: 'nodejs_eventloop_utilization_ratio',
    help: 'Share of time the event loop was busy since the previous scrape (0-1).',
    registers: [registry],
    collect() {
      this.set(eventLoop());
    },
  });
}
