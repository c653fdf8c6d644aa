"""The functional tests' framework (Bitcoin Core's test_framework, in small).

- node.py      `TestNode`: one node's data dir and services (as processes, or under
               supervisord the README's way), its REST API and bus; `stop_together`
- network.py   `TestNetwork`: `ccoin devnet` with N `TestNode`s
- process.py   `ServiceProcess`: one service as a process, ready by a real round trip
- util.py      `wait_until` (the one way to wait; `wait_until_async` in an event loop),
               `ccoin`, `log_step`, leftover processes
- rest.py      `RestApi` and the REST assertions (error shape, one chain, same head)
- events.py    a SUB socket that is connected before the test acts
- ports.py     free ports, claimed per pytest-xdist worker
- logfiles.py  hand-written node log dirs for `ccoin node logs`
- netns.py     network namespaces for real network cuts (root)
- browser.py   headless Chromium for the dashboard
- rules.py     builders of keys, genesis files and valid blocks for the rules' tests
- wire_peer.py `WirePeer`: a wire-protocol test peer in the test's event loop
- localnet.py  `LocalNet`: state and p2p nodes in-process, on inproc://
- scripted_peer.py
               `ScriptedPeer`: a blocking wire-protocol peer (also as a process of its
               own, in a network namespace); `ChainBuilder`, `submit_blocks`: chains for it
"""
