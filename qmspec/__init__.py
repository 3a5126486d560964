"""qmspec: declarative embedding-model migrations for Qdrant.

The public Python API (stable within a major version; see the README's "From Python"):

    import qmspec
    plan = qmspec.plan("specs/v2.yaml", url="https://qdrant.example:6333")   # -> Plan (.steps, .to_json())
    result = qmspec.apply("specs/v2.yaml", url=..., state="qdrant", auto_approve=True)   # -> ApplyResult (.exit_code)

`import qmspec` stays light: the workflow (and qdrant-client behind it) is imported on first use.
"""
__version__ = "0.2.0"

API = ("plan", "review", "show", "apply", "rollback", "cleanup", "unlock", "status", "validate", "drift", "inspect", "compare",
       "judge", "import_collection", "ApplyResult", "RollbackResult", "CleanupResult", "UnlockResult", "ImportResult", "Validation",
       "Review", "Preview", "Drift", "ApplyBlocked", "PlanTampered", "NotConfirmed", "LlmJudge", "Candidates")
ERRORS = {"QmspecError": "errors", "SpecError": "errors", "QdrantAccessError": "errors", "PlanFileError": "errors",
          "LockHeld": "applying.journal", "ApplyError": "applying.steps", "RollbackRefused": "applying.rollback"}
__all__ = ["__version__", *API, *ERRORS]


def __getattr__(name: str):
    from importlib import import_module

    if name in API:
        return getattr(import_module(".workflow", __name__), name)
    if name in ERRORS:
        return getattr(import_module(f".{ERRORS[name]}", __name__), name)
    raise AttributeError(f"module 'qmspec' has no attribute {name!r}")
