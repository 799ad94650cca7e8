"""How fast a client's disconnect reaches the upstream: from the client closing its socket to the upstream
seeing every one of the request's connections closed. Real gateway and upstream servers on loopback.

    .venv/bin/python -m bench.disconnect [--trials 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from moa_gateway.config import parse_config
from tests.support.gateways import serve_gateway
from tests.support.servers import HangingUpstream, ServerThread, hanging_moa_config, raw_chat_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()

    upstream = HangingUpstream()
    with ServerThread(upstream) as upstream_server:
        config = parse_config(hanging_moa_config(upstream_server.url), "bench")
        with serve_gateway(config) as gateway:
            print(f"{'mode':>6} {'trials':>6} {'p50 ms':>8} {'max ms':>8}")
            for stream in (False, True):
                latencies = []
                for _ in range(args.trials):
                    done = len(upstream.closed)
                    client = raw_chat_request(gateway.port, stream)
                    if not upstream.wait(
                        upstream.arrived, len(upstream.arrived) + 3 - (len(upstream.arrived) - done)
                    ):
                        raise SystemExit("the proposers did not reach the upstream")
                    closed_at = time.monotonic()
                    client.close()
                    if not upstream.wait(upstream.closed, done + 3):
                        raise SystemExit("the upstream connections were not closed within 5 s")
                    latencies.append((upstream.closed[-1] - closed_at) * 1000)
                mode = "stream" if stream else "json"
                print(
                    f"{mode:>6} {args.trials:>6} {statistics.median(latencies):>8.1f} {max(latencies):>8.1f}"
                )


if __name__ == "__main__":
    main()
