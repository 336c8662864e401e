"""For the toolbox tests: short support conversations in the shape users bring."""

from __future__ import annotations

TOPICS = [
    ("How do I reset my password?", "Open Settings, choose Account, then Reset password."),
    ("Where is my order?", "Your order ships tomorrow; the tracking link comes by e-mail."),
    ("Can I change my plan?", "Yes: Billing, then Change plan. It applies next month."),
    ("Do you ship abroad?", "We ship to the EU and the UK; other countries are coming soon."),
    ("How do I cancel?", "Go to Billing and press Cancel subscription. No fee applies."),
    ("Is there a student discount?", "Students get 30 percent off with a university e-mail."),
    ("What payment methods work?", "Cards, PayPal and bank transfer all work."),
    ("Can I get a refund?", "Refunds are possible within 30 days of purchase."),
]


def support_conversations(n: int = 16) -> list[dict]:
    """Short support chats, some with two turns, all with replies."""
    out = []
    for i in range(n):
        question, answer = TOPICS[i % len(TOPICS)]
        messages = [{"role": "user", "content": f"{question} (ticket {i})"},
                    {"role": "assistant", "content": answer}]
        if i % 3 == 0:
            messages += [{"role": "user", "content": "Thanks, anything else?"},
                         {"role": "assistant", "content": "No, that is all. Have a nice day!"}]
        out.append({"messages": messages})
    return out
