/**
 * Histogram gradient-boosted regression trees, squared loss: the forecasting family of choice (DESIGN.md: no
 * well-kept trainer exists on npm). The design follows LightGBM / scikit-learn's HistGradientBoostingRegressor:
 * features binned into at most 255 quantile bins, per-node gradient histograms with the subtraction trick
 * (build the smaller child, derive the larger from its parent), leaf-wise (best-first) growth bounded by leaves
 * and depth, L2 on leaf values, row subsampling and early stopping on a validation set.
 *
 * A split sends `x <= threshold` to the left child; thresholds are bin edges in float64, so the in-memory predict
 * and the exported ONNX TreeEnsemble (BRANCH_LEQ, double) route every input identically, NaN included (NaN <= t is
 * false: right/false branch in both).
 */
import { TrainingError } from "./errors.js";
import { mulberry32 } from "./prng.js";

export interface GbdtParams {
  /** Boosting rounds at most (early stopping may keep fewer). */
  nTrees: number;
  /** Shrinkage applied to every leaf value. */
  learningRate: number;
  /** Depth limit; the root has depth 0. */
  maxDepth: number;
  /** Leaf limit per tree (best-first growth stops there). */
  maxLeaves: number;
  /** Fewest training rows in a leaf. */
  minSamplesLeaf: number;
  /** L2 penalty on leaf values (lambda in XGBoost terms). */
  l2: number;
  /** Quantile bins per feature, at most 255 (bin ids are bytes). */
  maxBins: number;
  /** Fraction of training rows each tree sees, drawn with the seeded PRNG; 1 = all rows. */
  subsample: number;
  /**
   * With a validation set: stop after this many rounds without a better validation loss and keep the best round.
   * 0 = no early stopping: all nTrees rounds are kept.
   */
  earlyStoppingRounds: number;
  seed: number;
}

/**
 * Defaults for noisy daily/hourly crypto returns: shallow trees, large leaves and shrinkage, because the signal is
 * faint and everything else fits noise. Early stopping picks the number of rounds.
 */
export const GBDT_DEFAULTS: Readonly<GbdtParams> = Object.freeze({
  nTrees: 200,
  learningRate: 0.05,
  maxDepth: 4,
  maxLeaves: 15,
  minSamplesLeaf: 50,
  l2: 1,
  maxBins: 255,
  subsample: 0.8,
  earlyStoppingRounds: 30,
  seed: 1,
});

/** One tree in flat arrays. Node 0 is the root; `feature[i] === -1` marks a leaf with output `value[i]`. */
export interface GbdtTree {
  feature: Int32Array;
  threshold: Float64Array;
  left: Int32Array;
  right: Int32Array;
  /** Leaf outputs, learning rate already applied. */
  value: Float64Array;
}

export interface GbdtModel {
  family: "gbdt";
  nFeatures: number;
  /** Starting prediction: the mean training target. */
  baseScore: number;
  trees: GbdtTree[];
  /** Summed split gain per feature over the kept trees. */
  featureGain: Float64Array;
  params: GbdtParams;
  /** Validation MSE after 0, 1, ... rounds (empty without a validation set). */
  validationLoss: number[];
}

export interface Dataset {
  X: readonly Float64Array[];
  y: Float64Array;
}

/** Histogram stride: one slot per possible bin id. */
const STRIDE = 256;

export function resolveGbdtParams(params: Partial<GbdtParams> = {}): GbdtParams {
  const p = { ...GBDT_DEFAULTS, ...params };
  const bad = (name: string, rule: string) => {
    throw new TrainingError("invalid_parameters", `gbdt parameter ${name} must be ${rule}`);
  };
  if (!(Number.isInteger(p.nTrees) && p.nTrees >= 1)) bad("nTrees", "an integer >= 1");
  if (!(p.learningRate > 0 && p.learningRate <= 1)) bad("learningRate", "in (0, 1]");
  if (!(Number.isInteger(p.maxDepth) && p.maxDepth >= 1)) bad("maxDepth", "an integer >= 1");
  if (!(Number.isInteger(p.maxLeaves) && p.maxLeaves >= 2)) bad("maxLeaves", "an integer >= 2");
  if (!(Number.isInteger(p.minSamplesLeaf) && p.minSamplesLeaf >= 1))
    bad("minSamplesLeaf", "an integer >= 1");
  if (!(p.l2 >= 0)) bad("l2", ">= 0");
  if (!(Number.isInteger(p.maxBins) && p.maxBins >= 2 && p.maxBins <= 255))
    bad("maxBins", "an integer in 2..255");
  if (!(p.subsample > 0 && p.subsample <= 1)) bad("subsample", "in (0, 1]");
  if (!(Number.isInteger(p.earlyStoppingRounds) && p.earlyStoppingRounds >= 0))
    bad("earlyStoppingRounds", "an integer >= 0");
  if (!Number.isInteger(p.seed)) bad("seed", "an integer");
  return p;
}

/**
 * Trains on `train`; with `validation`, stops early on its MSE and keeps the best round. Deterministic: the only
 * randomness is row subsampling, drawn from `params.seed`.
 */
export function trainGbdt(train: Dataset, params: Partial<GbdtParams> = {}, validation?: Dataset): GbdtModel {
  const p = resolveGbdtParams(params);
  const n = train.X.length;
  const F = checkDataset(train, "training");
  if (validation) checkDataset(validation, "validation", F);

  const thresholds = binThresholds(train.X, F, p.maxBins);
  const bins = binRows(train.X, thresholds);
  const validationBins = validation ? binRows(validation.X, thresholds) : undefined;

  let baseScore = 0;
  for (let i = 0; i < n; i++) baseScore += train.y[i] as number;
  baseScore /= n;

  const pred = new Float64Array(n).fill(baseScore);
  const grad = new Float64Array(n);
  const validationPred = validation ? new Float64Array(validation.X.length).fill(baseScore) : undefined;
  const validationLoss: number[] = [];
  if (validation && validationPred) validationLoss.push(mse(validationPred, validation.y));

  const random = mulberry32(p.seed);
  const rows = new Uint32Array(n);
  const scratch = new Uint32Array(n);
  const grower = new TreeGrower(bins, F, thresholds, grad, p, rows, scratch);

  const trees: GrownTree[] = [];
  let best = 0;
  for (let round = 0; round < p.nTrees; round++) {
    for (let i = 0; i < n; i++) grad[i] = (pred[i] as number) - (train.y[i] as number);
    let m = 0;
    for (let i = 0; i < n; i++) {
      // One draw per row whatever the fraction: the stream, and so the model, depends only on seed and row count.
      const keep = random() < p.subsample;
      if (keep) rows[m++] = i;
    }
    // A draw too small to split anything would waste the round: fall back to all rows.
    if (m < 2 * p.minSamplesLeaf) {
      for (let i = 0; i < n; i++) rows[i] = i;
      m = n;
    }
    const tree = grower.grow(m);
    trees.push(tree);
    for (let i = 0; i < n; i++)
      pred[i] = (pred[i] as number) + (tree.value[leafOfBinned(tree, bins, i * F)] as number);
    if (validation && validationPred && validationBins) {
      for (let i = 0; i < validationPred.length; i++) {
        validationPred[i] =
          (validationPred[i] as number) + (tree.value[leafOfBinned(tree, validationBins, i * F)] as number);
      }
      const loss = mse(validationPred, validation.y);
      validationLoss.push(loss);
      if (loss < (validationLoss[best] as number)) best = round + 1;
      else if (p.earlyStoppingRounds > 0 && round + 1 - best >= p.earlyStoppingRounds) break;
    } else {
      best = round + 1;
    }
  }

  // Without early stopping every round is kept; the validation loss is still recorded for the report.
  const kept = p.earlyStoppingRounds > 0 ? trees.slice(0, best) : trees;
  const featureGain = new Float64Array(F);
  for (const tree of kept) {
    for (let node = 0; node < tree.feature.length; node++) {
      const f = tree.feature[node] as number;
      if (f >= 0) featureGain[f] = (featureGain[f] as number) + (tree.gain[node] as number);
    }
  }
  return {
    family: "gbdt",
    nFeatures: F,
    baseScore,
    trees: kept.map(({ feature, threshold, left, right, value }) => ({
      feature,
      threshold,
      left,
      right,
      value,
    })),
    featureGain,
    params: p,
    validationLoss,
  };
}

/**
 * The model's prediction for one row: base score, then each tree's leaf added in tree order. The exported ONNX sums
 * in the same order (base folded into the first tree's leaves, 0 + a === a), which is what makes it bit-exact.
 */
export function predictGbdt(model: GbdtModel, x: ArrayLike<number>): number {
  let sum = model.baseScore;
  for (const tree of model.trees) {
    let node = 0;
    let f = tree.feature[0] as number;
    while (f >= 0) {
      node =
        (x[f] as number) <= (tree.threshold[node] as number)
          ? (tree.left[node] as number)
          : (tree.right[node] as number);
      f = tree.feature[node] as number;
    }
    sum += tree.value[node] as number;
  }
  return sum;
}

function checkDataset(data: Dataset, what: string, expectedFeatures?: number): number {
  const n = data.X.length;
  if (n === 0 || data.y.length !== n) {
    throw new TrainingError(
      "invalid_parameters",
      `${what} set needs rows, and as many targets as rows (${n} rows, ${data.y.length} targets)`,
    );
  }
  const F = expectedFeatures ?? (data.X[0] as Float64Array).length;
  for (let i = 0; i < n; i++) {
    const row = data.X[i] as Float64Array;
    if (row.length !== F)
      throw new TrainingError(
        "invalid_parameters",
        `${what} row ${i} has ${row.length} features, expected ${F}`,
      );
    for (let f = 0; f < F; f++) {
      if (!Number.isFinite(row[f]))
        throw new TrainingError("invalid_parameters", `${what} row ${i} feature ${f} is not finite`);
    }
    if (!Number.isFinite(data.y[i]))
      throw new TrainingError("invalid_parameters", `${what} target ${i} is not finite`);
  }
  return F;
}

/**
 * Bin edges per feature, as scikit-learn computes them: with at most `maxBins` distinct values, the midpoints between
 * consecutive ones; otherwise the midpoint-interpolated quantiles at 1/maxBins steps, deduplicated. Value x falls in
 * bin b = the first edge >= x, so `bin <= b` is exactly `x <= edge[b]`.
 */
export function binThresholds(X: readonly Float64Array[], F: number, maxBins: number): Float64Array[] {
  const n = X.length;
  const column = new Float64Array(n);
  const result: Float64Array[] = [];
  for (let f = 0; f < F; f++) {
    for (let i = 0; i < n; i++) column[i] = (X[i] as Float64Array)[f] as number;
    column.sort();
    const distinct: number[] = [];
    for (let i = 0; i < n; i++)
      if (i === 0 || column[i] !== column[i - 1]) distinct.push(column[i] as number);
    const edges: number[] = [];
    if (distinct.length <= maxBins) {
      for (let i = 1; i < distinct.length; i++)
        edges.push(((distinct[i - 1] as number) + (distinct[i] as number)) * 0.5);
    } else {
      for (let q = 1; q < maxBins; q++) {
        const position = (q / maxBins) * (n - 1);
        const edge =
          ((column[Math.floor(position)] as number) + (column[Math.ceil(position)] as number)) * 0.5;
        if (edges.length === 0 || edge > (edges[edges.length - 1] as number)) edges.push(edge);
      }
    }
    result.push(Float64Array.from(edges));
  }
  return result;
}

/** Row-major bin ids (row i, feature f at i * F + f): a node's rows are scattered, so each row's bins sit together. */
function binRows(X: readonly Float64Array[], thresholds: Float64Array[]): Uint8Array {
  const F = thresholds.length;
  const out = new Uint8Array(X.length * F);
  for (let i = 0; i < X.length; i++) {
    const row = X[i] as Float64Array;
    for (let f = 0; f < F; f++) {
      const edges = thresholds[f] as Float64Array;
      const x = row[f] as number;
      let lo = 0;
      let hi = edges.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((edges[mid] as number) < x) lo = mid + 1;
        else hi = mid;
      }
      out[i * F + f] = lo;
    }
  }
  return out;
}

interface GrownTree extends GbdtTree {
  splitBin: Int32Array;
  gain: Float64Array;
}

function leafOfBinned(tree: GrownTree, bins: Uint8Array, offset: number): number {
  let node = 0;
  let f = tree.feature[0] as number;
  while (f >= 0) {
    node =
      (bins[offset + f] as number) <= (tree.splitBin[node] as number)
        ? (tree.left[node] as number)
        : (tree.right[node] as number);
    f = tree.feature[node] as number;
  }
  return node;
}

function mse(pred: Float64Array, y: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < pred.length; i++) {
    const e = (pred[i] as number) - (y[i] as number);
    sum += e * e;
  }
  return sum / pred.length;
}

interface Histogram {
  grad: Float64Array;
  count: Int32Array;
}

interface Split {
  gain: number;
  feature: number;
  bin: number;
}

interface GrowingNode {
  id: number;
  start: number;
  end: number;
  depth: number;
  gradSum: number;
  hist: Histogram | null;
  split: Split | null;
}

/** Grows one tree on the rows in `rows[0..m)`, reusing its buffers across rounds. */
class TreeGrower {
  private readonly histPool: Histogram[] = [];

  constructor(
    private readonly bins: Uint8Array,
    private readonly F: number,
    private readonly thresholds: Float64Array[],
    private readonly grad: Float64Array,
    private readonly p: GbdtParams,
    private readonly rows: Uint32Array,
    private readonly scratch: Uint32Array,
  ) {}

  grow(m: number): GrownTree {
    const feature: number[] = [];
    const threshold: number[] = [];
    const splitBin: number[] = [];
    const left: number[] = [];
    const right: number[] = [];
    const value: number[] = [];
    const gain: number[] = [];
    const newNode = () => {
      feature.push(-1);
      threshold.push(0);
      splitBin.push(-1);
      left.push(-1);
      right.push(-1);
      value.push(0);
      gain.push(0);
      return feature.length - 1;
    };

    const rootHist = this.allocHist();
    this.buildHist(rootHist, 0, m);
    let rootGrad = 0;
    for (let k = 0; k < m; k++) rootGrad += this.grad[this.rows[k] as number] as number;
    const root: GrowingNode = {
      id: newNode(),
      start: 0,
      end: m,
      depth: 0,
      gradSum: rootGrad,
      hist: rootHist,
      split: null,
    };
    root.split = this.findSplit(root);
    const leaves: GrowingNode[] = [root];

    while (leaves.length < this.p.maxLeaves) {
      let pick = -1;
      for (let i = 0; i < leaves.length; i++) {
        const split = (leaves[i] as GrowingNode).split;
        if (split && (pick < 0 || split.gain > ((leaves[pick] as GrowingNode).split as Split).gain)) pick = i;
      }
      if (pick < 0) break;
      const parent = leaves[pick] as GrowingNode;
      const split = parent.split as Split;
      const mid = this.partition(parent.start, parent.end, split.feature, split.bin);

      feature[parent.id] = split.feature;
      threshold[parent.id] = (this.thresholds[split.feature] as Float64Array)[split.bin] as number;
      splitBin[parent.id] = split.bin;
      gain[parent.id] = split.gain;
      const leftNode: GrowingNode = {
        id: newNode(),
        start: parent.start,
        end: mid,
        depth: parent.depth + 1,
        gradSum: 0,
        hist: null,
        split: null,
      };
      const rightNode: GrowingNode = {
        id: newNode(),
        start: mid,
        end: parent.end,
        depth: parent.depth + 1,
        gradSum: 0,
        hist: null,
        split: null,
      };
      left[parent.id] = leftNode.id;
      right[parent.id] = rightNode.id;
      for (let k = leftNode.start; k < leftNode.end; k++)
        leftNode.gradSum += this.grad[this.rows[k] as number] as number;
      for (let k = rightNode.start; k < rightNode.end; k++)
        rightNode.gradSum += this.grad[this.rows[k] as number] as number;

      const [small, large] =
        leftNode.end - leftNode.start <= rightNode.end - rightNode.start
          ? [leftNode, rightNode]
          : [rightNode, leftNode];
      small.hist = this.allocHist();
      this.buildHist(small.hist, small.start, small.end);
      large.hist = parent.hist as Histogram;
      parent.hist = null;
      subtract(large.hist, small.hist);

      leaves.splice(pick, 1, leftNode, rightNode);
      for (const child of [leftNode, rightNode]) {
        child.split = this.findSplit(child);
        if (!child.split && child.hist) {
          this.histPool.push(child.hist);
          child.hist = null;
        }
      }
    }

    for (const leaf of leaves) {
      const count = leaf.end - leaf.start;
      value[leaf.id] = (-this.p.learningRate * leaf.gradSum) / (count + this.p.l2);
      if (leaf.hist) this.histPool.push(leaf.hist);
    }
    return {
      feature: Int32Array.from(feature),
      threshold: Float64Array.from(threshold),
      splitBin: Int32Array.from(splitBin),
      left: Int32Array.from(left),
      right: Int32Array.from(right),
      value: Float64Array.from(value),
      gain: Float64Array.from(gain),
    };
  }

  private allocHist(): Histogram {
    const hist = this.histPool.pop();
    if (hist) return hist;
    return { grad: new Float64Array(this.F * STRIDE), count: new Int32Array(this.F * STRIDE) };
  }

  private buildHist(hist: Histogram, start: number, end: number): void {
    const { bins, F, grad, rows } = this;
    const hg = hist.grad;
    const hc = hist.count;
    hg.fill(0);
    hc.fill(0);
    for (let k = start; k < end; k++) {
      const i = rows[k] as number;
      const g = grad[i] as number;
      const base = i * F;
      for (let f = 0; f < F; f++) {
        const slot = f * STRIDE + (bins[base + f] as number);
        hg[slot] = (hg[slot] as number) + g;
        hc[slot] = (hc[slot] as number) + 1;
      }
    }
  }

  /** Best split of a node by gain G_L²/(n_L+λ) + G_R²/(n_R+λ) − G²/(n+λ), first feature and bin on ties. */
  private findSplit(node: GrowingNode): Split | null {
    const count = node.end - node.start;
    const { minSamplesLeaf, l2, maxDepth } = this.p;
    if (node.depth >= maxDepth || count < 2 * minSamplesLeaf || !node.hist) return null;
    const G = node.gradSum;
    const parentScore = (G * G) / (count + l2);
    let best: Split | null = null;
    for (let f = 0; f < this.F; f++) {
      const nBins = (this.thresholds[f] as Float64Array).length + 1;
      const offset = f * STRIDE;
      let gLeft = 0;
      let nLeft = 0;
      for (let b = 0; b < nBins - 1; b++) {
        gLeft += node.hist.grad[offset + b] as number;
        nLeft += node.hist.count[offset + b] as number;
        if (nLeft < minSamplesLeaf) continue;
        const nRight = count - nLeft;
        if (nRight < minSamplesLeaf) break;
        const gRight = G - gLeft;
        const gain = (gLeft * gLeft) / (nLeft + l2) + (gRight * gRight) / (nRight + l2) - parentScore;
        if (gain > 0 && (!best || gain > best.gain)) best = { gain, feature: f, bin: b };
      }
    }
    return best;
  }

  /** Stable partition of rows[start..end) by bin <= splitBin, so each node's rows stay in ascending order. */
  private partition(start: number, end: number, f: number, bin: number): number {
    const { rows, scratch, bins, F } = this;
    let l = start;
    let r = 0;
    for (let k = start; k < end; k++) {
      const i = rows[k] as number;
      if ((bins[i * F + f] as number) <= bin) rows[l++] = i;
      else scratch[r++] = i;
    }
    rows.set(scratch.subarray(0, r), l);
    return l;
  }
}

function subtract(target: Histogram, other: Histogram): void {
  const tg = target.grad;
  const og = other.grad;
  const tc = target.count;
  const oc = other.count;
  for (let s = 0; s < tg.length; s++) {
    tg[s] = (tg[s] as number) - (og[s] as number);
    tc[s] = (tc[s] as number) - (oc[s] as number);
  }
}
