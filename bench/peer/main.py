"""Starts the peer for bench/peer.bench.ts: python3 bench/peer/main.py --market DIR --export JSON --workers N.

Trains the model once (model.py, checked against the export), pickles it to a temporary file the workers load,
binds 127.0.0.1 on a port the system picks, prints one JSON line {port, pid, model, predict_us, versions} on stdout and
serves with uvicorn: `--workers N` processes sharing the socket, as `uvicorn --workers N` runs them. It stops on
SIGTERM, or when its stdin closes (the benchmark went away). OMP_NUM_THREADS is the caller's to set (the benchmark
sets 1: one OpenMP thread per worker).
"""

import argparse
import json
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INSTALL = "apt-get install -y python3-fastapi python3-uvicorn python3-sklearn"


def versions() -> dict:
    try:
        import fastapi
        import numpy
        import pydantic
        import sklearn
        import uvicorn
    except ImportError as missing:
        print(f"peer: {missing.name} is missing; install Debian's packages: {INSTALL}", file=sys.stderr)
        sys.exit(3)
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    return {
        "python": sys.version.split()[0],
        "fastapi": fastapi.__version__,
        "pydantic": pydantic.VERSION,
        "uvicorn": uvicorn.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "loop": loop,
        "http": http,
    }


def predict_us(model, row) -> float:
    """Median CPU time of model.predict on one row, each call timed alone: the model's share of a request's CPU.

    CPU time (this process's, all threads), not wall time: on a busy machine the wall clock also counts the waits."""
    for _ in range(50):
        model.predict(row)
    samples = []
    for _ in range(300):
        started = time.process_time()
        model.predict(row)
        samples.append((time.process_time() - started) * 1e6)
    return sorted(samples)[len(samples) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--market", type=Path, required=True)
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--prefill-as-of", help="an ISO date whose forecasts every worker computes at start")
    args = parser.parse_args()
    found = versions()
    sys.path.insert(0, str(HERE))
    import numpy as np
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from model import train_and_check

    started = time.perf_counter()
    model, trained = train_and_check(args.market, args.export)
    trained["train_seconds"] = round(time.perf_counter() - started, 2)
    export = json.loads(args.export.read_text())
    row = np.asarray(export["input"]["data"][:30], dtype=np.float32).reshape(1, 30)
    workdir = tempfile.mkdtemp(prefix="edgeml-peer-")
    model_file = os.path.join(workdir, "model.pkl")
    with open(model_file, "wb") as f:
        pickle.dump(model, f)
    os.environ["PEER_MODEL_FILE"] = model_file
    os.environ["PEER_MARKET_DATA"] = str(args.market)
    if args.prefill_as_of:
        os.environ["PEER_PREFILL_AS_OF"] = args.prefill_as_of

    config = uvicorn.Config(
        "app:app",
        host="127.0.0.1",
        port=0,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    sock = config.bind_socket()

    def cleanup() -> None:
        for name in os.listdir(workdir):
            os.remove(os.path.join(workdir, name))
        os.rmdir(workdir)

    def watch_stdin() -> None:
        sys.stdin.read()  # EOF: the benchmark is gone
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_stdin, daemon=True).start()
    ready = {
        "port": sock.getsockname()[1],
        "pid": os.getpid(),
        "model": trained,
        "predict_us": round(predict_us(model, row), 1),
        "versions": found,
    }
    print(json.dumps(ready), flush=True)
    try:
        if args.workers > 1:
            Multiprocess(config, target=server.run, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    finally:
        cleanup()


if __name__ == "__main__":
    main()
