"""Same as `sdgate bench`: .venv/bin/python scripts/bench.py [--quick] [--out results.json] [--no-gpu]"""

import sys

from server.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
