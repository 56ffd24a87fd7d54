"""``python -m tests.fake_kimi --port N``: run the emulator until interrupted.

Prints one line, ``fake-kimi listening on http://127.0.0.1:PORT/v1 key=sk-test``, once the port is
bound (``--port 0`` picks a free one), so a parent process can read the URL from stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from tests.fake_kimi.server import DEFAULT_KEY, TIERS, FakeKimi


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fake_kimi", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--key", default=DEFAULT_KEY, help="the API key it accepts")
    p.add_argument("--usage", choices=["choice", "top", "both"], default="both")
    p.add_argument("--tier", type=int, choices=sorted(TIERS), default=None, help="rate limits")
    p.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    args = p.parse_args(argv)
    fake = FakeKimi(host=args.host, port=args.port, key=args.key, usage_placement=args.usage)
    fake.chunk_delay = args.chunk_delay
    if args.tier is not None:
        fake.set_limits(tier=args.tier)
    fake.start()
    print(f"fake-kimi listening on {fake.base_url} key={args.key}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
