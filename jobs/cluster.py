"""Start, stop or inspect a Spark standalone cluster on 127.0.0.1 (``make cluster-up``).

    python jobs/cluster.py up [--workers 2] [--cores 1] [--memory 2g] [--state-dir .cluster]
    python jobs/cluster.py status [--state-dir .cluster]
    python jobs/cluster.py down [--state-dir .cluster]

``up`` leaves the master and workers running in their own sessions and records their PIDs
and the master URL in STATE_DIR/cluster.json; ``down`` stops exactly those processes.
Submit to it with ``spark-submit --master $(jq -r .master_url .cluster/cluster.json) ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json  # noqa: E402

PROG = "cluster"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--workers", type=int, default=2, help="workers to start (up)")
    parser.add_argument("--cores", type=int, default=1, help="cores per worker (up)")
    parser.add_argument("--memory", default="2g", help="memory per worker (up)")
    parser.add_argument("--state-dir", default=".cluster",
                        help="logs, work dirs and cluster.json (default .cluster)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the workers to register (up)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from pipeline.cluster.standalone import (
        STATE_FILE,
        ClusterError,
        StandaloneCluster,
        recorded_status,
        stop_recorded,
    )

    state_dir = Path(args.state_dir).resolve()
    state_file = state_dir / STATE_FILE
    recorded = json.loads(state_file.read_text()) if state_file.exists() else None
    if args.action == "up":
        if recorded and recorded_status(recorded)["master_running"]:
            print(f"{PROG}: error: {recorded['master_url']} is already up "
                  f"({state_file}); run 'down' first", file=sys.stderr)
            return 1
        cluster = StandaloneCluster(args.workers, cores=args.cores, memory=args.memory,
                                    base_dir=state_dir, start_timeout=args.timeout)
        try:
            cluster.start()  # on failure start() stops what it started
        except ClusterError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
        cluster.write_state(state_file)
        print(f"master {cluster.master_url} (web UI {cluster.webui_url}), "
              f"{args.workers} worker(s); state in {state_file}")
        return 0
    if recorded is None:
        print(f"{PROG}: no cluster recorded in {state_file}", file=sys.stderr)
        return 0 if args.action == "down" else 1
    if args.action == "status":
        print(json.dumps(recorded_status(recorded), indent=2))
        return 0
    stopped = stop_recorded(recorded)
    state_file.unlink()
    print(f"stopped {recorded['master_url']} (PIDs {', '.join(map(str, stopped)) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
