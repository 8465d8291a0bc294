/**
 * Prometheus metrics of one server (prom-client): a Registry of its own, since several servers share a process
 * in tests, the hooks the layers report through (they never import prom-client), gauges read from the live
 * state at scrape time, and the /metrics listener. No metric carries a per-node label: a series per node
 * would grow with the tailnet.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ConfigError, parseHostPort } from '../config/config.ts';
import type { ControlObserver } from '../control/observer.ts';
import type { DerpStats } from '../derp/server.ts';
import type { Node } from '../domain/types.ts';
import type { Store } from '../store/store.ts';

/** What the gauges read at scrape time; thunks, because the server builds these parts after the registry. */
export interface MetricsSources {
  nodes(): readonly Node[];
  isOnline(id: number): boolean;
  mapStreams(): number;
  /** Undefined when the embedded relay is off. */
  derp(): DerpStats | undefined;
}

/** Sub-millisecond to seconds: SQLite commits and policy compiles on small and large tailnets. */
const durationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Fan-out includes the mapper's batch window (15–250 ms); the target is under a second. */
const fanoutBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A registry of its own with the process's metrics (CPU, memory, event loop): what every tailplane daemon serves. */
export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges that prom-client names like counters (promtool flags them); their per-type twins without _total stay.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  return registry;
}

export function createMetrics(sources: MetricsSources) {
  const registry = processRegistry();
  const registers = [registry];

  new Gauge({
    name: 'tailplane_nodes',
    help: 'Registered nodes.',
    registers,
    collect() {
      this.set(sources.nodes().length);
    },
  });
  new Gauge({
    name: 'tailplane_nodes_online',
    help: 'Nodes with an open map stream (or within the offline grace after it closed).',
    registers,
    collect() {
      this.set(sources.nodes().filter((n) => sources.isOnline(n.id)).length);
    },
  });
  new Gauge({
    name: 'tailplane_nodes_by_client',
    help: 'Registered nodes by operating system and tailscale client version.',
    labelNames: ['os', 'version'],
    registers,
    collect() {
      this.reset();
      for (const n of sources.nodes()) this.inc(clientLabels(n));
    },
  });
  new Gauge({
    name: 'tailplane_map_streams_open',
    help: 'Streaming map polls open now.',
    registers,
    collect() {
      this.set(sources.mapStreams());
    },
  });

  const mapResponses = new Counter({
    name: 'tailplane_map_responses_total',
    help: 'Map responses written to clients, by kind.',
    labelNames: ['kind'],
    registers,
  });
  const fanout = new Histogram({
    name: 'tailplane_fanout_latency_seconds',
    help: 'From the first change of a batch to the last map stream written with it.',
    buckets: fanoutBuckets,
    registers,
  });
  const registrations = new Counter({
    name: 'tailplane_registrations_total',
    help: 'Nodes registered, by method.',
    labelNames: ['method'],
    registers,
  });
  const registrationFailures = new Counter({
    name: 'tailplane_registration_failures_total',
    help: 'Registrations refused, by reason.',
    labelNames: ['reason'],
    registers,
  });
  for (const kind of ['full', 'delta', 'keepalive']) mapResponses.inc({ kind }, 0);
  for (const method of ['authkey', 'interactive', 'key_rotation']) registrations.inc({ method }, 0);

  const policyCompile = new Histogram({
    name: 'tailplane_policy_compile_duration_seconds',
    help: 'Time to compile the policy against the tailnet.',
    buckets: durationBuckets,
    registers,
  });
  const storeWrite = new Histogram({
    name: 'tailplane_store_write_duration_seconds',
    help: 'Time of one SQLite write transaction, commit included.',
    buckets: durationBuckets,
    registers,
  });
  const adminRequests = new Counter({
    name: 'tailplane_admin_requests_total',
    help: 'Admin API and console requests, by method, route pattern and status.',
    labelNames: ['method', 'route', 'status'],
    registers,
  });
  const adminDuration = new Histogram({
    name: 'tailplane_admin_request_duration_seconds',
    help: 'Admin API and console request duration, by method and route pattern.',
    labelNames: ['method', 'route'],
    buckets: durationBuckets,
    registers,
  });
  derpMetrics(registers, sources);

  const control: ControlObserver = {
    mapResponse: (kind) => mapResponses.inc({ kind }),
    fanout: (seconds) => fanout.observe(seconds),
    registered: (method) => registrations.inc({ method }),
    registrationFailed: (reason) => registrationFailures.inc({ reason }),
  };

  return {
    registry,
    control,
    policyCompiled: (seconds: number) => policyCompile.observe(seconds),
    adminResponse(r: { method: string; route: string; status: number; seconds: number }): void {
      adminRequests.inc({ method: r.method, route: r.route, status: String(r.status) });
      adminDuration.observe({ method: r.method, route: r.route }, r.seconds);
    },
    /** The store with every write timed. */
    observeStore(store: Store): Store {
      return {
        ...store,
        write(fn, opts) {
          const end = storeWrite.startTimer();
          try {
            return store.write(fn, opts);
          } finally {
            end();
          }
        },
      };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The short client version ("1.80.3" of "1.80.3-tabc-gdef"): builds of one release share a series. */
function clientLabels(n: Node): { os: string; version: string } {
  const os = typeof n.hostinfo.OS === 'string' && n.hostinfo.OS ? n.hostinfo.OS : 'unknown';
  const full = typeof n.hostinfo.IPNVersion === 'string' ? n.hostinfo.IPNVersion : '';
  return { os, version: full.split('-')[0] || 'unknown' };
}

/** The relay's own counters, copied into the registry at scrape time. */
function derpMetrics(registers: Registry[], sources: MetricsSources): void {
  const gauge = (name: string, help: string, read: (s: DerpStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(sources.derp() ?? emptyDerp));
      },
    });
  const counter = (name: string, help: string, read: (s: DerpStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read(sources.derp() ?? emptyDerp));
      },
    });
  gauge('tailplane_derp_clients', 'Distinct node keys connected to the embedded DERP relay.', (s) => s.clients);
  gauge('tailplane_derp_connections', 'Open DERP connections past admission, duplicates included.', (s) => s.connections);
  counter('tailplane_derp_packets_relayed_total', 'Packets the DERP relay forwarded.', (s) => s.packetsRelayed);
  counter('tailplane_derp_bytes_relayed_total', 'Payload bytes the DERP relay forwarded.', (s) => s.bytesRelayed);
  counter('tailplane_derp_packets_dropped_total', 'Packets the DERP relay dropped (receiver backed up or unknown).', (s) => s.packetsDropped + s.packetsUnknownDest);
}

const emptyDerp: DerpStats = {
  packetsRelayed: 0, bytesRelayed: 0, packetsDropped: 0, packetsUnknownDest: 0, rejected: 0, protocolErrors: 0,
  connections: 0, clients: 0, pending: 0, home: 0,
};

export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics on its own listener, so the scrape port can stay on a private interface while the
 * control port faces clients. A bind failure names the setting to change (`setting`, serve's by default).
 */
export async function listenMetrics(
  registry: Registry,
  listenAddr: string,
  setting = 'Set metrics.listen_addr (or TAILPLANE_METRICS_LISTEN_ADDR) to a free host:port, or "" to turn metrics off.',
): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${err.message}\n`),
    );
  });
  const { host, port } = parseHostPort(listenAddr)!;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.message;
    throw new ConfigError(`cannot listen on TCP ${listenAddr} for metrics: ${why}. ${setting}`);
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
