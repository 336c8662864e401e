"""The built-in question-answering skill: retrieval, passage selection, extractive and generative answers."""
