"""The application, writing while the migration runs: it still embeds with the model its query uses (`l3`), so what
it writes has no `minilm` vector, and an edited text leaves the `minilm` vector of the old text behind. qmspec's next
apply of add.yaml finds both and embeds them again before it switches the query.

    python app_writes.py
"""
from qdrant_client import QdrantClient, models

from qmspec.embed import get_embedder

l3 = get_embedder({"name": "sentence-transformers/paraphrase-MiniLM-L3-v2", "backend": "onnx"})
new = [{"id": 31, "title": "Exporting invoices as CSV", "text": "Exporting invoices as CSV. Open Billing, choose a date range and "
        "press Export: the file lists every invoice with its tax.", "category": "billing"},
       {"id": 32, "title": "Leaving a workspace", "text": "Leaving a workspace. Open the workspace menu and choose Leave; an owner "
        "must hand ownership to someone else first.", "category": "account"}]
client = QdrantClient(path="qdrant")
client.upsert("articles_main", points=[models.PointStruct(id=article["id"], vector={"l3": vector.tolist()},
                                                          payload={key: value for key, value in article.items() if key != "id"})
                                       for article, vector in zip(new, l3.embed([article["text"] for article in new]))])
edited = "How to reset a forgotten password. Open the sign-in page, choose 'Forgot password' and follow the link we text you."
client.set_payload("articles_main", payload={"text": edited}, points=[1])
client.delete("articles_main", points_selector=models.PointIdsList(points=[30]))
client.close()
print("the application wrote 2 new articles (l3 only), edited the text of article 1, deleted article 30")
