"""The built-in code-generation skill: extraction, syntax checks, sandboxed tests."""
