"""Pure planning: spec files and live state in, a plan out, and the decision of what an apply does. Values only:
nothing here imports qdrant_client, numpy or an embedder, or writes anywhere (import-linter enforces it)."""
