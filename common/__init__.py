"""ccoin's shared core: domain types, canonical encoding, crypto and the consensus rules.

Everything here is pure (no sockets, no files, no clock reads) except the bus helpers in
`runtime.bus` and the keystore/config loaders, which only read what they are handed.
"""

__version__ = "0.1.0"
