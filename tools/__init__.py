"""Operator tooling: the `ccoin` command line (`cli/`), running a node under supervisord
(`supervisor`), creating a local chain or network (`devchain`, `devnet`) and the benchmark
(`bench`). None of it runs inside a node's services; it starts, controls and measures them.
"""
