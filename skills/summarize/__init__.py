"""The built-in summarization skill and its map-reduce over chunks."""
