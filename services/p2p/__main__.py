from runtime.service import run_service
from services.p2p.node import main

run_service("p2p", main)
