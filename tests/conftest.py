import os

# Scenario and CLI tests never reach a model hub; the embedding tests load weights shipped in packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Servers the tests point at on purpose (127.0.0.1:9) are not there: one attempt, not a retry budget of minutes.
# tests/test_retry.py gives the policy its attempts explicitly.
os.environ.setdefault("QMSPEC_RETRY_ATTEMPTS", "1")
