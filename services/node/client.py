"""Moved to `common.client` (the one REST client of ccoin); kept so that old imports work."""

from common.client import (  # noqa: F401 - re-exports
    DEFAULT_API,
    Account,
    ApiError,
    Client,
    Status,
    TxFailed,
    TxInfo,
    TxTimeout,
    parse_address,
    parse_hex,
    sign_transfer,
    tx_to_json,
)
