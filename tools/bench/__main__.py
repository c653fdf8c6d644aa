"""`python -m tools.bench`: the same as `ccoin bench`."""

from tools.bench import main

main()
