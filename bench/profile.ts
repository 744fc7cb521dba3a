/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as `node --cpu-prof` writes them): self time by function and by file,
 * the largest first. `npx tsx bench/profile.ts <file.cpuprofile>... [--top N]`.
 *
 * Self time is where the samples landed: a function's own code, not what it called. Files under node_modules are
 * shown by package, the app's by path, so "where does a request's CPU go" reads at a glance.
 */
import { readFile } from "node:fs/promises";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A file's place: `pkg:<name>` for a dependency, the path from `src/` or `bench/` for ours, V8's own labels as is. */
function fileOf(url: string): string {
  if (!url) return "(native / V8)";
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dependency) return `pkg:${dependency[1]}`;
  const ours = /\/((?:src|bench|test)\/.*)$/.exec(url);
  if (ours?.[1]) return ours[1];
  return url.replace(/^file:\/\//, "");
}

type Row = { name: string; ms: number; share: number };

export interface ProfileSummary {
  totalMs: number;
  byFunction: Row[];
  byFile: Row[];
  /** Time with the function on the stack (itself and what it called), counted once per sample. */
  inclusive: Row[];
  /** For each function, where its self time was called from (the nearest caller frame), largest first. */
  callers: Map<string, Row[]>;
}

const frameName = (node: ProfileNode) => {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || "(anonymous)"} ${fileOf(url)}${url ? `:${lineNumber + 1}` : ""}`;
};

export async function summarise(files: readonly string[]): Promise<ProfileSummary> {
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const callers = new Map<string, Map<string, number>>();
  const add = (m: Map<string, number>, key: string, us: number) => m.set(key, (m.get(key) ?? 0) + us);
  let total = 0;
  for (const path of files) {
    const profile = JSON.parse(await readFile(path, "utf8")) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    profile.samples.forEach((id, i) => {
      const node = byId.get(id);
      const us = profile.timeDeltas[i] ?? 0;
      if (!node) return;
      total += us;
      const name = frameName(node);
      add(fn, name, us);
      add(file, fileOf(node.callFrame.url), us);
      const up = byId.get(parent.get(id) ?? -1);
      const from = callers.get(name) ?? new Map<string, number>();
      add(from, up ? frameName(up) : "(root)", us);
      callers.set(name, from);
      const seen = new Set<string>();
      for (let at: ProfileNode | undefined = node; at; at = byId.get(parent.get(at.id) ?? -1)) {
        const frame = frameName(at);
        if (!seen.has(frame)) add(inclusive, frame, us);
        seen.add(frame);
      }
    });
  }
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: us / 1000, share: total === 0 ? 0 : us / total }));
  return {
    totalMs: total / 1000,
    byFunction: rank(fn),
    byFile: rank(file),
    inclusive: rank(inclusive),
    callers: new Map([...callers].map(([k, m]) => [k, rank(m)])),
  };
}

if (import.meta.main || process.argv[1]?.endsWith("profile.ts")) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf("--top");
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
  const files = args.filter((a, i) => a !== "--top" && i !== topAt + 1 && a.endsWith(".cpuprofile"));
  if (files.length === 0) {
    console.error("usage: npx tsx bench/profile.ts <file.cpuprofile>... [--top N]");
    process.exit(2);
  }
  const s = await summarise(files);
  const line = (r: Row) =>
    `${(r.share * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`;
  console.log(`${s.totalMs.toFixed(0)} ms sampled in ${files.length} profile(s)\n\nself time by file:`);
  for (const r of s.byFile.slice(0, top)) console.log(line(r));
  console.log("\nself time by function:");
  for (const r of s.byFunction.slice(0, top)) {
    console.log(line(r));
    const from = s.callers.get(r.name)?.slice(0, 2) ?? [];
    for (const c of from) console.log(`                      ← ${c.name} (${(c.share * 100).toFixed(1)}%)`);
  }
  console.log("\ntotal time (self + callees) by function:");
  for (const r of s.inclusive.slice(0, top)) console.log(line(r));
}
