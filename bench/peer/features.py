"""The 30 hourly features of the scikit-learn exports in ../shared/data/byo-models, computed from the market CSVs.

The exports' JSON files name the features (`feature_names`) but not their definitions. These definitions were
recovered from the data: computed from BTCUSDT_1h.csv and ETHUSDT_1h.csv, they reproduce all 256 test rows stored in
sk_hgb_f32.json bit for bit in float32 (model.py checks that at every start). Windows are in hourly bars; standard
deviations are population ones (numpy's ddof=0); exponential averages are recursive from the first bar.
"""

import csv
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

FEATURE_NAMES = (
    ["ret_1", "ret_2", "ret_3", "ret_6", "ret_12", "ret_24", "ret_48", "ret_72", "ret_168"]
    + ["vol_6", "vol_24", "vol_72", "vol_168"]
    + ["sma_ratio_6", "sma_ratio_12", "sma_ratio_24", "sma_ratio_72", "sma_ratio_168"]
    + ["macd", "macd_signal", "rsi_14", "hl_range", "body", "vol_z_24", "vol_z_168", "log_volume"]
    + ["bb_pctb_20", "atr_14", "hour_sin", "hour_cos"]
)


class Bars:
    """Hourly OHLCV bars of one CSV, oldest first (the files are newest first)."""

    def __init__(self, path: Path):
        with open(path, newline="") as f:
            rows = list(csv.reader(f))[2:]  # a banner URL, then the header
        rows.reverse()
        self.time_ms = np.array([int(r[0]) for r in rows], dtype=np.int64)
        self.open, self.high, self.low, self.close = (
            np.array([float(r[i]) for r in rows]) for i in (3, 4, 5, 6)
        )
        self.volume = np.array([float(r[7]) for r in rows])  # in the base asset (BTC, ETH)


def _ema(values: np.ndarray, alpha: float) -> np.ndarray:
    out = np.empty_like(values)
    out[0] = values[0]
    for i in range(1, len(values)):
        out[i] = alpha * values[i] + (1 - alpha) * out[i - 1]
    return out


def _rolling(values: np.ndarray, window: int, reduce) -> np.ndarray:
    out = np.full(len(values), np.nan)
    out[window - 1 :] = reduce(sliding_window_view(values, window), axis=1)
    return out


def features(bars: Bars) -> np.ndarray:
    """One row of FEATURE_NAMES per bar; rows before the longest window are NaN."""
    c, h, lo, o = bars.close, bars.high, bars.low, bars.open
    n = len(c)
    cols: list[np.ndarray] = []
    log_close = np.log(c)
    for k in (1, 2, 3, 6, 12, 24, 48, 72, 168):
        col = np.full(n, np.nan)
        col[k:] = log_close[k:] - log_close[:-k]
        cols.append(col)
    ret_1 = cols[0]
    cols += [_rolling(ret_1, k, np.std) for k in (6, 24, 72, 168)]
    cols += [c / _rolling(c, k, np.mean) - 1 for k in (6, 12, 24, 72, 168)]
    macd = (_ema(c, 2 / 13) - _ema(c, 2 / 27)) / c
    cols += [macd, _ema(macd, 2 / 10)]
    change = np.diff(c, prepend=np.nan)
    gain = np.full(n, np.nan)
    loss = np.full(n, np.nan)
    gain[1:] = _ema(np.maximum(change[1:], 0), 1 / 14)  # Wilder's smoothing
    loss[1:] = _ema(np.maximum(-change[1:], 0), 1 / 14)
    cols.append(gain / (gain + loss))
    cols += [(h - lo) / c, (c - o) / o]
    log_volume = np.log1p(bars.volume)
    for k in (24, 168):
        cols.append((log_volume - _rolling(log_volume, k, np.mean)) / _rolling(log_volume, k, np.std))
    cols.append(log_volume)
    mean_20, std_20 = _rolling(c, 20, np.mean), _rolling(c, 20, np.std)
    cols.append((c - (mean_20 - 2 * std_20)) / (4 * std_20))
    prev_close = np.roll(c, 1)
    true_range = np.maximum(h - lo, np.maximum(np.abs(h - prev_close), np.abs(lo - prev_close)))
    atr = np.full(n, np.nan)
    atr[1:] = _ema(true_range[1:], 1 / 14)
    cols.append(atr / c)
    hour = (bars.time_ms // 3_600_000) % 24
    cols += [np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)]
    assert len(cols) == len(FEATURE_NAMES)
    return np.column_stack(cols)


def log_return_ahead(bars: Bars, horizon: int) -> np.ndarray:
    """The target: log return of the close `horizon` bars later (NaN where the data ends)."""
    y = np.full(len(bars.close), np.nan)
    y[:-horizon] = np.log(bars.close[horizon:] / bars.close[:-horizon])
    return y
