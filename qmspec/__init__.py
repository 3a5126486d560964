"""qmspec: declarative embedding-model migrations for Qdrant."""
__version__ = "0.1.0"
