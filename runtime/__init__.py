"""The shared runtime of ccoin's processes: what every service needs to live as an OS process
and talk to the others, but which is not a rule of the ledger.

`bus` (ZeroMQ requests, replies and events), `service` (the process loop: arguments, JSON
logs, signals), `config` (the node config and genesis files), `keystore` (encrypted key
files), `ports` (picking listening ports) and `http_edge` (what the HTTP services share).
Pure rules live in `common/`; nothing here decides whether a block or transaction is valid.
"""
