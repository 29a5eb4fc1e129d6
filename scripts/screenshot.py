"""Take the README's screenshot of `wsmon demo` again, so it shows the dashboard as it is now.

`wsmon demo --theme dark` runs in a private tmux pane of 140×45; after `--seconds` (13 by default) the
pane is captured twice: as plain text, which replaces the code block between the README's
`<!-- screenshot:start -->` and `<!-- screenshot:end -->` markers, and with its colours, which Rich turns
into docs/screenshot.svg. Then `q`, and every process the demo started is stopped.

    python scripts/screenshot.py [--seconds 13] [--readme README.md] [--svg docs/screenshot.svg]

Needs tmux. Run it from the repository root with the venv active, and commit what it changed.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_dashboard_cpu import WSMON, dashboard  # noqa: E402  (bench/ is not a package)

SIZE = (140, 45)
START = "<!-- screenshot:start -->"
END = "<!-- screenshot:end -->"
BLOCK = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)


def capture(seconds: float) -> tuple[str, str]:
    """(plain text, text with SGR colour sequences) of the demo's screen `seconds` after it starts."""
    with tempfile.TemporaryDirectory(prefix="wsmon-screenshot-") as tmp:
        argv = [WSMON, "demo", "--theme", "dark"]
        with dashboard("screenshot", argv, Path(tmp), "demo", size=SIZE) as (term, _watched):
            time.sleep(seconds)
            plain, styled = term.capture(), term.capture(styles=True)
    if "LIVE" not in plain:
        raise RuntimeError("the dashboard did not draw (no LIVE in the header):\n" + plain)
    return plain, styled


def readme_block(plain: str, seconds: float) -> str:
    lines = [line.rstrip() for line in plain.splitlines()][: SIZE[1]]
    return "\n".join(
        [
            START,
            f"`wsmon demo`, {seconds:g} seconds after it started, captured from a {SIZE[0]}×{SIZE[1]} tmux "
            "pane by `python scripts/screenshot.py` (in colour: [docs/screenshot.svg](docs/screenshot.svg)):",
            "",
            "```text",
            *lines,
            "```",
            END,
        ]
    )


def write_svg(styled: str, path: Path) -> None:
    console = Console(record=True, width=SIZE[0], file=io.StringIO(), color_system="truecolor")
    console.print(Text.from_ansi(styled.rstrip("\n"), no_wrap=True), crop=True, soft_wrap=False)
    console.save_svg(str(path), title="wsmon demo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=13.0, help="how long the demo runs before the capture"
    )
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--svg", type=Path, default=ROOT / "docs" / "screenshot.svg")
    args = parser.parse_args(argv)

    readme = args.readme.read_text()
    if not BLOCK.search(readme):
        print(f"{args.readme}: no {START} … {END} block to replace", file=sys.stderr)
        return 2
    plain, styled = capture(args.seconds)
    args.readme.write_text(BLOCK.sub(lambda _match: readme_block(plain, args.seconds), readme, count=1))
    write_svg(styled, args.svg)
    print(f"rewrote the screenshot block of {args.readme} and {args.svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
