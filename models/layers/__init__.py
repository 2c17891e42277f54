"""The shared encoder every model is built from: embeddings, pre-norm blocks of a swappable token
mixer and feed-forward part, pooling and classification heads."""
