import sys

if sys.argv[1:2] == ["--cloudflared-standin"]:  # the frozen app playing the demo's cloudflared
    from app.sandbox.cloudflared import main as standin

    sys.exit(standin(sys.argv[2:]))

from app.cli import main  # noqa: E402 - after the stand-in check, which needs none of it

sys.exit(main())
