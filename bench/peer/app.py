"""The peer: a FastAPI + scikit-learn service as its users write one, for `npm run bench:peer`.

Two endpoints, each the equivalent of one edgeml path the benchmark measures:
- `POST /v2/models/sk_hgb/infer`: an Open Inference Protocol request body (validated by pydantic), a float32 array,
  `model.predict`, the OIP response shape. The model is the HistGradientBoostingRegressor of model.py, loaded from
  the pickle main.py wrote (each uvicorn worker loads its own copy, as `--workers` deployments do).
- `POST /api/ml/serve {symbol, horizon, as_of}`: edgeml's forecast body and response fields. The first request for a
  (symbol, horizon, as_of) computes the forecast edgeml's shipped BTC-24h model serves (its serving version is the
  naive baseline: the close of the daily bar before `as_of`) from the daily CSV; every later one is a dict lookup,
  aged as edgeml ages a cached answer (`data_age_seconds`, `cached: true`). That lookup is the cache hit measured.

Handlers are `async def`: for work this short, running on the event loop beats FastAPI's thread-pool hop of a plain
`def` (which is what a CPU-bound sklearn call in a `def` handler would pay).
"""

import csv
import json
import os
import pickle
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import numpy as np
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from features import FEATURE_NAMES

with open(os.environ["PEER_MODEL_FILE"], "rb") as f:
    MODEL = pickle.load(f)
MARKET = Path(os.environ["PEER_MARKET_DATA"])
MODEL_NAME, MODEL_VERSION = "sk_hgb", "1"
MAX_ROWS = 4096

app = FastAPI(title="peer: FastAPI + scikit-learn", docs_url=None, redoc_url=None, openapi_url=None)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@app.get("/v2/health/ready")
async def ready() -> Dict[str, bool]:
    return {"ready": True}


class InferInput(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    data: List[float]


class InferRequest(BaseModel):
    id: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    inputs: List[InferInput] = Field(..., min_items=1, max_items=1)


@app.post("/v2/models/{name}/infer")
async def infer(name: str, body: InferRequest) -> Any:
    if name != MODEL_NAME:
        return error(404, f"unknown model '{name}'")
    tensor = body.inputs[0]
    width = len(FEATURE_NAMES)
    if tensor.name != "X" or tensor.datatype != "FP32":
        return error(400, f"expected input 'X' of datatype FP32, got '{tensor.name}' {tensor.datatype}")
    if len(tensor.shape) != 2 or tensor.shape[1] != width or not 1 <= tensor.shape[0] <= MAX_ROWS:
        return error(400, f"expected shape [n, {width}] with 1 <= n <= {MAX_ROWS}, got {tensor.shape}")
    if len(tensor.data) != tensor.shape[0] * width:
        return error(400, f"shape {tensor.shape} needs {tensor.shape[0] * width} values, got {len(tensor.data)}")
    x = np.asarray(tensor.data, dtype=np.float32).reshape(tensor.shape)
    predicted = MODEL.predict(x)
    out = {"name": "variable", "datatype": "FP64", "shape": [len(predicted), 1], "data": predicted.tolist()}
    response: Dict[str, Any] = {"model_name": MODEL_NAME, "model_version": MODEL_VERSION, "outputs": [out]}
    if body.id is not None:
        response["id"] = body.id
    return response


class ServeRequest(BaseModel):
    symbol: str = Field(..., min_length=1, max_length=16)
    horizon: Literal["24h"] = "24h"
    as_of: Optional[Union[datetime, date]] = None


def _daily_closes(symbol: str) -> Dict[datetime, float]:
    """Close of each daily bar by its close time (the next day, 00:00 UTC), from the Yahoo Finance CSV."""
    with open(MARKET / f"{symbol}-USD_1d.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        datetime.fromisoformat(r["Date"]).replace(tzinfo=timezone.utc) + timedelta(days=1): float(r["Close"])
        for r in rows
    }


CLOSES = {symbol: _daily_closes(symbol) for symbol in ("BTC", "ETH")}
FORECASTS: Dict[Tuple[str, str, datetime], Dict[str, Any]] = {}


def iso(instant: datetime) -> str:
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def forecast(symbol: str, horizon: str, as_of: datetime) -> Optional[Dict[str, Any]]:
    close = CLOSES[symbol].get(as_of)
    if close is None:
        return None
    return {
        "prediction_id": str(uuid.uuid4()),
        "symbol": symbol,
        "horizon": horizon,
        "model_name": f"{symbol}-{horizon}",
        "model_version": "3",
        "family": "naive",
        "as_of": iso(as_of),
        "target_time": iso(as_of + timedelta(days=1)),
        "last_close": close,
        "predicted_log_return": 0.0,
        "predicted_price": close,
        "created_at": iso(datetime.now(timezone.utc)),
        "beats_naive": False,
        # edgeml's selection evidence has this shape; the values only give the response its size.
        "evidence": {
            "p_value": 1,
            "window": {"from": "2024-04-01T00:00:00.000Z", "to": "2025-10-01T00:00:00.000Z"},
            "folds": 6,
        },
        "interval": None,
    }


@app.post("/api/ml/serve")
async def serve(body: ServeRequest, response: Response) -> Any:
    if body.symbol not in CLOSES:
        return error(404, f"no model for '{body.symbol}'; symbols: {', '.join(CLOSES)}")
    if body.as_of is None:
        return error(400, "the peer serves replays only: give as_of (its CSVs end in 2026-03)")
    at = body.as_of
    if not isinstance(at, datetime):
        at = datetime(at.year, at.month, at.day)
    at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    bar = at.replace(hour=0, minute=0, second=0, microsecond=0)  # floors to the daily grid, as edgeml does
    key = (body.symbol, body.horizon, bar)
    stored = FORECASTS.get(key)
    cached = stored is not None
    if stored is None:
        stored = forecast(body.symbol, body.horizon, bar)
        if stored is None:
            return error(503, f"no daily bar of {body.symbol} closes at {iso(bar)}")
        FORECASTS[key] = stored
    response.headers["x-cache"] = "HIT" if cached else "MISS"
    response.headers["x-model-version"] = stored["model_version"]
    age = (datetime.now(timezone.utc) - bar).total_seconds()
    return {**stored, "cached": cached, "data_age_seconds": round(age, 3)}


# Each uvicorn worker has its own dict, where edgeml's workers share one cache (in the primary). So that every timed
# answer is a hit on both servers, each worker computes the benchmark's forecasts at start (PEER_PREFILL_AS_OF, an
# ISO date): otherwise a worker that the warm-up's connections missed would answer its first timed request uncached.
if os.environ.get("PEER_PREFILL_AS_OF"):
    _bar = datetime.fromisoformat(os.environ["PEER_PREFILL_AS_OF"]).replace(tzinfo=timezone.utc)
    for _symbol in CLOSES:
        _stored = forecast(_symbol, "24h", _bar)
        if _stored is not None:
            FORECASTS[(_symbol, "24h", _bar)] = _stored

# One line per worker on stdout, once its model and data are loaded: the benchmark counts them before it starts.
print(json.dumps({"worker_ready": os.getpid()}), flush=True)
