"""The peer's model: sk_hgb_f32.onnx's HistGradientBoostingRegressor, retrained here from the same real data.

sk_hgb_f32.json says "sklearn 1.2.1 HistGradientBoostingRegressor(200 iters)" trained on 20,000 hourly BTC/ETH rows
with 30 features. What else it was, was recovered from the export itself (its trees, its baseline) and is checked at
every start, so a difference in data, settings or library version stops the benchmark instead of skewing it:

- data: bars 170 to 10,169 of BTCUSDT_1h.csv and of ETHUSDT_1h.csv (2020-08-09 .. 2021-09-29), interleaved BTC, ETH
  hour by hour (20,000 rows), features as features.py computes them, cast to float32 (as skl2onnx users feed them);
  target the 24-hour log return of the close. The test rows of the JSON start 24 bars after the last training bar.
- settings: max_iter=200, max_depth=5, learning_rate=0.05, random_state=0; everything else scikit-learn's default
  (max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=0, max_bins=255, early_stopping="auto", which is on
  above 10,000 rows: 10 % held out, it never stopped before 200 iterations).
- check: scikit-learn 1.2.1 retrained this way predicts the JSON's `expected_sklearn_predict` on its 256 test rows
  exactly (max difference 0.0 here); when this was written, its 200 trees were also compared with the ONNX file's
  (features, thresholds, leaf values: equal). Another scikit-learn version may bin or split differently: the check
  names the version when it fails.
"""

import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor

from features import FEATURE_NAMES, Bars, features, log_return_ahead

SETTINGS = {"max_iter": 200, "max_depth": 5, "learning_rate": 0.05, "random_state": 0}
TRAIN_BARS = slice(170, 10_170)
HORIZON_BARS = 24
# The retrained model is scikit-learn itself on the same float32 rows: more than float64 noise is another model.
TOLERANCE = 1e-12


def training_set(market: Path) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for symbol in ("BTC", "ETH"):
        bars = Bars(market / f"{symbol}USDT_1h.csv")
        xs.append(features(bars)[TRAIN_BARS])
        ys.append(log_return_ahead(bars, HORIZON_BARS)[TRAIN_BARS])
    # Interleaved hour by hour: row 2k is BTC's bar k, row 2k+1 ETH's (the order fixes the held-out 10 %).
    x = np.stack(xs, axis=1).reshape(-1, len(FEATURE_NAMES)).astype(np.float32)
    y = np.stack(ys, axis=1).reshape(-1)
    if np.isnan(x).any() or np.isnan(y).any():
        raise SystemExit("peer: the training rows have missing values; the market CSVs are not the expected ones")
    return x, y


def train_and_check(market: Path, export_json: Path) -> tuple[HistGradientBoostingRegressor, dict]:
    x, y = training_set(market)
    model = HistGradientBoostingRegressor(**SETTINGS).fit(x, y)
    export = json.loads(export_json.read_text())
    if export["feature_names"] != FEATURE_NAMES:
        raise SystemExit(f"peer: {export_json.name} names other features than features.py computes")
    rows, width = export["input"]["shape"]
    test = np.asarray(export["input"]["data"], dtype=np.float32).reshape(rows, width)
    expected = np.asarray(export["expected_sklearn_predict"])
    # The stored test rows are the features of bars 10,194.. of both CSVs: check the feature code on them too.
    for k, symbol in enumerate(("BTC", "ETH")):
        bars = Bars(market / f"{symbol}USDT_1h.csv")
        mine = features(bars)[10_194 : 10_194 + rows // 2].astype(np.float32)
        if not np.array_equal(mine, test[k::2]):
            raise SystemExit(f"peer: features.py does not reproduce the {symbol} test rows of {export_json.name}")
    diff = float(np.max(np.abs(model.predict(test) - expected)))
    if model.n_iter_ != SETTINGS["max_iter"] or diff > TOLERANCE:
        raise SystemExit(
            f"peer: the retrained model does not reproduce {export_json.name} (scikit-learn {sklearn.__version__}, "
            f"{model.n_iter_} iterations, max difference {diff:.3g}); it was made with scikit-learn 1.2.1"
        )
    return model, {
        "rows": int(len(y)),
        "iterations": int(model.n_iter_),
        "max_abs_diff_vs_export": diff,
        "sklearn": sklearn.__version__,
    }
