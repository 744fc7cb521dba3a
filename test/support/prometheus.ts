import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { expect } from "vitest";

/** The parser's families, and the text they were parsed from (for histograms: see `histograms`). */
export interface Exposition {
  families: ReturnType<typeof parsePrometheusTextFormat>;
  text: string;
}

// A sample line of the 0.0.4 text format: name, optional labels (quoted, escaped values), a float value.
const SAMPLE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?)$/;

/**
 * Parses an exposition with a real Prometheus text parser, after checking the grammar it is lenient about: every
 * line is a HELP, a TYPE or a sample; each family is declared once, HELP and TYPE before its samples.
 */
export function parseExposition(text: string): Exposition {
  expect(text.endsWith("\n")).toBe(true);
  const declared = new Set<string>();
  let current = "";
  for (const line of text.trimEnd().split("\n")) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      const [, kind, name] = meta;
      if (kind === "HELP") {
        expect(declared.has(name as string), `${name} declared twice`).toBe(false);
        declared.add(name as string);
        current = name as string;
      } else expect(name).toBe(current);
      continue;
    }
    expect(line, "a sample line").toMatch(SAMPLE);
    expect(line.startsWith(current), `${line} outside its family ${current}`).toBe(true);
  }
  return { families: parsePrometheusTextFormat(text), text };
}

export const family = (parsed: Exposition, name: string) => parsed.families.find((f) => f.name === name);

const matches = (labels: Record<string, string> | undefined, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => labels?.[k] === v);

/** The value of the one sample of `name` with `labels` (a subset), 0 when there is none. */
export function sampleValue(parsed: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = (family(parsed, name)?.metrics ?? []).filter((m) => matches(m.labels, labels));
  expect(found.length, `${name} ${JSON.stringify(labels)}: at most one sample`).toBeLessThanOrEqual(1);
  return Number(found[0]?.value ?? 0);
}

export interface Histogram {
  labels: Record<string, string>;
  /** Cumulative counts by upper bound, in the order exposed. */
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"/g;

/**
 * The histograms of family `name`, one per label set. Read from the sample lines (whose grammar parseExposition
 * checked): parse-prometheus-text-format merges the buckets of every label set of a histogram into one and drops
 * `_sum`/`_count` when they carry labels, so it cannot check a labelled histogram.
 */
export function histograms(parsed: Exposition, name: string): Histogram[] {
  const byLabels = new Map<string, Histogram>();
  for (const line of parsed.text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || line.startsWith("#")) continue;
    const [, sample, labelText = "", value] = match;
    const suffix = sample?.slice(name.length);
    if (!sample?.startsWith(name) || !["_bucket", "_sum", "_count"].includes(suffix ?? "")) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of labelText.matchAll(LABEL))
      labels[k as string] = (v as string).replace(/\\(.)/g, "$1");
    const { le, ...rest } = labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const h = byLabels.get(key) ?? { labels: rest, buckets: [], sum: Number.NaN, count: Number.NaN };
    byLabels.set(key, h);
    const n = Number(value);
    if (suffix === "_bucket")
      h.buckets.push({ le: le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), count: n });
    else if (suffix === "_sum") h.sum = n;
    else h.count = n;
  }
  return [...byLabels.values()];
}
