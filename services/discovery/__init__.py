"""The discovery service: one small HTTP service per network where nodes register and list
each other (`app.py` the HTTP contract, `registry.py` who was alive lately)."""
