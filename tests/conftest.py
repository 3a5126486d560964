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


def _plans_checked_against_their_schema() -> None:
    """Every plan the suite writes as JSON (`plan --format json`, `--out`, the API) is validated against
    schemas/plan.schema.json: what a policy on the plan (README: OPA / conftest) relies on holds for all of them."""
    import json
    from pathlib import Path

    import jsonschema

    from qmspec.planning.plan import Plan

    validator = jsonschema.Draft202012Validator(json.loads((Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_text()))
    written = Plan.to_json

    def to_json(self) -> str:
        text = written(self)
        validator.validate(json.loads(text))
        return text

    Plan.to_json = to_json


_plans_checked_against_their_schema()
