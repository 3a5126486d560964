import os

# Scenario and CLI tests never reach a model hub; the embedding tests load weights shipped in packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
