from runtime.service import run_service
from services.state.service import main

run_service("state", main)
