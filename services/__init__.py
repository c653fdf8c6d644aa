"""The five services of a ccoin node, each its own OS process under supervisord, started as
`python -m services.<name> --config node.json`: `state` (the only LevelDB writer), `api`
(the REST gateway), `miner` (the sealer, validators only), `p2p` (links to other nodes) and
`discovery` (one per network). Each is a thin shell of I/O around the rules in `common/`,
on the runtime in `runtime/`.
"""
