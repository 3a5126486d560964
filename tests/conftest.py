import os

# Scenario and CLI tests never reach a model hub; the embedding tests load weights shipped in packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Servers the tests point at on purpose (127.0.0.1:9) are not there: one attempt, not a retry budget of minutes.
# tests/test_retry.py gives the policy its attempts explicitly.
os.environ.setdefault("QMSPEC_RETRY_ATTEMPTS", "1")
# The test embedders are plug-ins (`tests.plugins.hash_embedder:HashEmbedder`): allowed here as a CI workflow would
# allow its own (qmspec/trust.py). A test of a key sent to a loopback server binds it with QMSPEC_KEY_HOSTS itself.
os.environ.setdefault("QMSPEC_PLUGINS", "tests.plugins")
# The tests stand for a user's machine wherever they run: the CI runner's CI=true would turn each default embedded store
# into a refused "job meant for a server". The tests of that refusal set CI themselves.
os.environ.pop("CI", None)
