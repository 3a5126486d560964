"""The preflight of a plan: sample the texts each model will embed (from the source collection or files) and check
the models on them (embed/preflight.py), before anything is written. Reads only."""
from __future__ import annotations

from contextlib import nullcontext
from ..embed.preflight import check_models
from ..planning.modelfacts import ModelFacts, model_needs
from ..planning.plan import Plan
from ..planning.spec import Spec
from ..project import Target
from ..sourcefiles import sample_texts as file_texts


def check_plan_models(plan: Plan, spec: Spec | None, target: Target, client) -> dict[str, ModelFacts]:
    """Facts for the planner; EmbedderError naming every model that cannot load or makes vectors of another size.
    `client` is an open one, or None to open one for the sampling."""
    needs = model_needs(plan, spec)
    if not needs:
        return {}
    samples = {need.vector: file_texts(need.files, need.id_field, need.text_field) for need in needs if need.files}
    collections = [need for need in needs if need.collection]
    if collections:
        from ..connect import open_client
        from ..live import sample_texts

        with nullcontext(client) if client is not None else open_client(target, read_only=True) as opened:
            samples |= {need.vector: sample_texts(opened, need.collection, need.text_field) for need in collections}
    return check_models(needs, samples)
