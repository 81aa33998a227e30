import sys

if sys.argv[1:2] == ["--cloudflared-standin"]:  # the frozen app playing the demo's cloudflared
    from app.sandbox.cloudflared import main as standin

    sys.exit(standin(sys.argv[2:]))

if sys.argv[1:2] == ["--pac-worker"]:  # a proxy script run apart, with a time limit
    from app.proxy.pac_worker import main as pac_worker

    sys.exit(pac_worker())

from app.cli import main  # noqa: E402 - after the stand-in check, which needs none of it

sys.exit(main())
