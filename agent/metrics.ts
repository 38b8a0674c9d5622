import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
  type Metric,
} from 'prom-client';

/**
 * The process-wide Prometheus registry served on /metrics. Metrics are named
 * `petrel_<component>_<what>_<unit>`. Create them through the helpers below: they return the
 * already-registered metric of that name, so several instances of a component (tests, one
 * session per peer) share one series family instead of throwing "already registered".
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry });

function reuse<M extends Metric<string>>(name: string, make: () => M): M {
  return (metricsRegistry.getSingleMetric(name) as M | undefined) ?? make();
}

export function counter<T extends string>(cfg: Omit<CounterConfiguration<T>, 'registers'>): Counter<T> {
  return reuse(cfg.name, () => new Counter<T>({ ...cfg, registers: [metricsRegistry] }));
}

export function gauge<T extends string>(cfg: Omit<GaugeConfiguration<T>, 'registers'>): Gauge<T> {
  return reuse(cfg.name, () => new Gauge<T>({ ...cfg, registers: [metricsRegistry] }));
}

export function histogram<T extends string>(cfg: Omit<HistogramConfiguration<T>, 'registers'>): Histogram<T> {
  return reuse(cfg.name, () => new Histogram<T>({ ...cfg, registers: [metricsRegistry] }));
}
