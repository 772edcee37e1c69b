"""Could a compiled CommonMark parser find references faster than the scanner? (issue 12). Prints, per
adversarial shape of 1 MB (``bench/abuse.py``'s), the median time of:

- the scanner (``domain/references.py``: regular expressions, what the node runs);
- pulldown-cmark (Rust, through ``pyromark``): the code spans and blocks with their source ranges, which is
  what the scanner would need from it (the Python objects for every event included);
- cmark-gfm (C, through ``cmarkgfm``): the whole text to HTML, a lower bound on anything built on it
  (its inline nodes carry no source positions, so references would be found in its output).

The compiled parsers are not dependencies of the node: ``pip install -e ".[bench]"`` installs them.
Usage: python bench/extraction_engines.py [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.abuse import median_ms, shapes  # noqa: E402
from domain import reference_scanner  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    try:
        import cmarkgfm
        import pyromark
    except ImportError:
        sys.exit('the compiled parsers are not installed: pip install -e ".[bench]"')

    def code_ranges(text: str) -> list[Any]:
        return [span for event, span in pyromark.events_with_range(text)
                if type(event) is dict and ("Code" in event or (type(event.get("Start")) is dict
                                                                and "CodeBlock" in event["Start"]))]

    options = cmarkgfm.cmark.Options.CMARK_OPT_DEFAULT
    engines = {"scanner": lambda text: reference_scanner.scan(text, positions=False),  # uncached, as extract
               "pulldown-cmark": code_ranges,
               "cmark-gfm html": lambda text: cmarkgfm.cmark.markdown_to_html(text, options)}
    worst = dict.fromkeys(engines, 0.0)
    print(f"1 MB of adversarial markdown, median of {runs} runs, ms")
    print(f"   {'shape':32s}" + "".join(f"{name:>16s}" for name in engines))
    for shape, text in shapes(1_000_000).items():
        figures = {name: median_ms(lambda run=run, text=text: run(text), runs) for name, run in engines.items()}
        worst = {name: max(worst[name], figures[name]) for name in engines}
        print(f"   {shape:32s}" + "".join(f"{figures[name]:16.1f}" for name in engines), flush=True)
    print(f"   {'worst':32s}" + "".join(f"{worst[name]:16.1f}" for name in engines))


if __name__ == "__main__":
    main()
