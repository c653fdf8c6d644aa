"""The api service: the node's REST gateway (DESIGN §6), a FastAPI app under uvicorn.

- `app`: assembles one app (`create_app`, `app_from_config`, `app_from_env`); `__main__`
  runs it (`python -m services.api --config node.json`).
- `gateway`: what one gateway process holds: its bus links to state, miner and p2p.
- `routes/`: the routes, one module per area; `dashboard`: the web page at `/`.
- `kinds`, `spec`: how a JSON shape is declared once; `schema`: the request shapes and
  their parsers; `replies`: the reply shapes and their rendering. `/docs` comes from the
  same declarations.
- `errors`: the one error reply; `openapi`: the document's text and patches.
- `edge`: request ids, rate limits, access log; `admin`: who may call admin routes;
  `wallet`: the node's own key and sends; `events`: the live event stream; `metrics`.
"""
