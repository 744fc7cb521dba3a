import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/**
 * CPU time of a process tree from Linux's /proc: a server's root process and every descendant (node:cluster or
 * uvicorn workers, the primary that hands them connections), all threads included (libuv's pool, V8's GC threads,
 * OpenMP). process.cpuUsage() sees only its own process, and neither server is this one.
 */

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux almost everywhere). */
const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime, in microseconds. */
  cpuUs: number;
}

function stat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined; // exited between the listing and the read
  }
  // The command name (field 2) is in parentheses and may hold spaces: fields are counted after its last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime: fields 14 and 15 of stat(5)
  return { pid, ppid: Number(fields[1]), cpuUs: (ticks / TICKS_PER_SECOND) * 1e6 };
}

/** Every live process of the tree under `root` (root included). */
export function processTree(root: number): Stat[] {
  const all = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map((name) => stat(Number(name)))
    .filter((s): s is Stat => s !== undefined);
  const children = new Map<number, Stat[]>();
  for (const s of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const rootStat = all.find((s) => s.pid === root);
  if (!rootStat) throw new Error(`process ${root} is gone`);
  const tree = [rootStat];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get((tree[i] as Stat).pid) ?? []));
  return tree;
}

/** CPU time (µs) the tree under `root` has used so far, at the 1/CLK_TCK resolution of /proc (10 ms). */
export function treeCpuUs(root: number): number {
  return processTree(root).reduce((sum, s) => sum + s.cpuUs, 0);
}
