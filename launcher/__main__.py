"""`python -m launcher --artifacts artifacts`: serve a trained bundle with all three services."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from common import manifest as mf
from launcher.stack import Stack

MAX_RESTARTS_PER_MINUTE = 3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m launcher", description=__doc__)
    p.add_argument("--artifacts", default="artifacts", help="artifacts directory (CURRENT pointer) or one bundle")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--gateway-port", type=int, default=8000)
    p.add_argument("--retrieval-port", type=int, default=8001)
    p.add_argument("--ranking-port", type=int, default=8002)
    p.add_argument("--log-dir", default=None, help="write each service's output to <dir>/<service>.log")
    args = p.parse_args(argv)
    artifacts = Path(args.artifacts).resolve()
    try:
        bundle = mf.resolve_bundle(artifacts)
        version = mf.load_manifest(bundle, verify_hashes=False).artifact_version
    except mf.ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stack = Stack(
        artifacts=artifacts,
        host=args.host,
        ports={"gateway": args.gateway_port, "retrieval": args.retrieval_port, "ranking": args.ranking_port},
        log_dir=Path(args.log_dir) if args.log_dir else None,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # A shell starts a background job (`make run &`, nohup) with SIGINT ignored, but uvicorn in the
    # children handles it anyway: a group Ctrl-C would stop the services and leave this loop
    # restarting them. Stop with them instead.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"starting services for artifact version {version} ...", flush=True)
    try:
        stack.start_all()
        print("ready:", flush=True)
        for name, url in stack.urls.items():
            print(f"  {name:<9} {url}   (OpenAPI: {url}/docs)", flush=True)
        print(f"try:  curl -s {stack.urls['gateway']}/v1/recommend -H 'content-type: application/json' "
              """-d '{"question": "Why is the sky blue?", "k": 5}'""", flush=True)
        print("Ctrl-C stops all three. A service that exits is restarted; the others keep serving.", flush=True)
        restarts: dict[str, list[float]] = {}
        while True:
            time.sleep(1)
            for name, process in list(stack.processes.items()):
                if process.poll() is None:
                    continue
                # Like a process supervisor (compose's restart policy): the gateway degrades while a
                # stage is down (ranking: retrieval order; retrieval: 503) and recovers by itself.
                recent = [t for t in restarts.get(name, []) if time.monotonic() - t < 60] + [time.monotonic()]
                restarts[name] = recent
                if len(recent) > MAX_RESTARTS_PER_MINUTE:
                    print(f"error: {name} service keeps exiting (code {process.returncode}); stopping", file=sys.stderr)
                    return 1
                print(f"warning: {name} service exited with code {process.returncode}; restarting it", file=sys.stderr, flush=True)
                stack.start(name)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop_all()


if __name__ == "__main__":
    sys.exit(main())
