"""The miner service: asks state for a template, seals it (PoA seal and HashCash), submits
it, and sleeps until its next slot (`miner.py`). Validator nodes only."""
