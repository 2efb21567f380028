"""The production settings ship with the app (.streamlit/config.toml), as the reliability notes list them.
Their effect is checked live elsewhere: no tracebacks (test_browser_hostile), the upload cap and XSRF
(the 413 and 403 there)."""

import tomllib
from pathlib import Path

from explainers.inputs.image import MAX_BYTES

ROOT = Path(__file__).resolve().parents[1]


def test_production_settings():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"] | {"disconnectedSessionTTL": None} == {
        "headless": True,
        "fileWatcherType": "none",
        "runOnSave": False,
        "maxUploadSize": MAX_BYTES // 2**20,  # the server refuses what the decoder would refuse anyway
        "enableXsrfProtection": True,
        "disconnectedSessionTTL": None,
    }
    assert 0 < config["server"]["disconnectedSessionTTL"] <= 300  # a closed tab's session goes soon
    assert config["client"] == {"showErrorDetails": "none", "toolbarMode": "viewer"}  # "false" still shows traces
    assert config["browser"] == {"gatherUsageStats": False}
    assert config["runner"]["magicEnabled"] is False
