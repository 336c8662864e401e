"""The shortest useful llmos programs. Run: python examples/python_api.py

Each block stands alone; copy the one you need.
"""

from pathlib import Path

from agent import Agent
from skills import skill

# 1. Five lines to chat (the embedded model, memory and classifiers; runs on a CPU).
agent = Agent()
reply = agent.chat("Hi! My name is Ann and I like sailing.", user_id="ann")
print(reply.text)
print(reply.intent, reply.timings_ms["total"], "ms")

# 2. Streaming: iterate the pieces, then read the finished reply.
stream = agent.stream("Tell me a short joke.", user_id="ann", session_id=reply.session_id)
for piece in stream:
    print(piece, end="", flush=True)
print("\n", stream.reply.tokens)

# 3. Documents: add a file or folder to the knowledge base, then ask with /qa (answers cite sources).
agent.add_document(Path(__file__).parent / "support_bot" / "kb")
print(agent.chat("/qa How long does a refund take?", user_id="ann").text)


# 4. A custom skill: a function with a docstring; it asks for what it needs by parameter name.
@skill(command="shout")
def shout(text: str):
    """Repeat the text in capitals (try /shout hello)."""
    yield text.upper()


agent.skills["shout"] = shout  # or register it as an `llmos.skills` entry point (see order_status_skill/)
print(agent.chat("/shout hello there", user_id="ann").text)

# 5. Long-term memory: a later session recalls what the user said earlier.
later = agent.chat("What do you remember about me?", user_id="ann")
print(later.text)

# An agent from a YAML config, e.g. the open-domain companion:
#   Agent.from_config(Path(__file__).parent / "companion.yaml")
agent.close()
