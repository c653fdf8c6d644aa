"""The functional tests' framework (Bitcoin Core's test_framework, in small).

- node.py      `TestNode`: one node's data dir and services (as processes, or under
               supervisord the README's way), its REST API and bus; `stop_together`
- network.py   `TestNetwork`: `ccoin devnet` with N `TestNode`s
- process.py   `ServiceProcess`: one service as a process, ready by a real round trip
- util.py      `wait_until` (the one way to wait), `ccoin`, `log_step`, leftover processes
- rest.py      `RestApi` and the REST assertions (error shape, one chain, same head)
- events.py    a SUB socket that is connected before the test acts
- ports.py     free ports, claimed per pytest-xdist worker
- logfiles.py  hand-written node log dirs for `ccoin node logs`
- netns.py     network namespaces for real network cuts (root)
- browser.py   headless Chromium for the dashboard
- rules.py     builders of keys, genesis files and valid blocks for the rules' tests
- p2p.py       scripted wire-protocol peers and chains for the p2p tests
"""
