/**
 * Just enough of the Prometheus text format for the operator benchmark: samples
 * with labels, sums of counters over a label subset, and histogram deltas with
 * their mean and an interpolated quantile computed as PromQL's
 * histogram_quantile() does (linear within the bucket; the highest finite
 * bound when the rank falls in the +Inf bucket).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A histogram's cumulative buckets (ascending `le`, +Inf last), sum and count. */
export interface Histogram {
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parse an exposition (comments and blank lines skipped). */
export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const matches = (s: Sample, name: string, labels: Record<string, string>) =>
  s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);

/** Sum of the samples of `name` whose labels include `labels`; undefined when there is none. */
export function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => matches(s, name, labels));
  return hits.length ? hits.reduce((a, s) => a + s.value, 0) : undefined;
}

/** The histogram `name` (its _bucket/_sum/_count series) restricted to `labels`; undefined when absent. */
export function histogram(samples: Sample[], name: string, labels: Record<string, string>): Histogram | undefined {
  const byLe = new Map<number, number>();
  for (const s of samples)
    if (matches(s, `${name}_bucket`, labels)) {
      const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
    }
  const count = total(samples, `${name}_count`, labels);
  if (!byLe.size || count === undefined) return undefined;
  const buckets = [...byLe].map(([le, c]) => ({ le, count: c })).sort((a, b) => a.le - b.le);
  return { buckets, sum: total(samples, `${name}_sum`, labels) ?? 0, count };
}

/** `after - before`, bucket by bucket (the observations made in between). */
export function delta(before: Histogram | undefined, after: Histogram): Histogram {
  const was = new Map(before?.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (was.get(b.le) ?? 0) })),
    sum: after.sum - (before?.sum ?? 0),
    count: after.count - (before?.count ?? 0),
  };
}

/** The q-quantile (0..1) as histogram_quantile() computes it; undefined without observations. */
export function quantile(q: number, h: Histogram): number | undefined {
  const n = h.buckets.at(-1)?.count ?? 0;
  if (n <= 0) return undefined;
  const rank = q * n;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe; // the highest finite bound, as Prometheus does
      if (b.count === prevCount) return b.le;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / (b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** Mean and P99 of a histogram delta, or undefined when the metric is absent or saw nothing. */
export function meanP99(h: Histogram | undefined): { mean: number; p99: number; count: number } | undefined {
  if (!h || h.count <= 0) return undefined;
  return { mean: h.sum / h.count, p99: quantile(0.99, h)!, count: h.count };
}
