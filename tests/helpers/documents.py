"""Documents for the memory tests: a minimal valid PDF (no library needed) and a tiny file
in the LoCoMo format."""

from __future__ import annotations

import json
from pathlib import Path


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (no library needed)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        content = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
                       "/Resources << /Font << /F1 FONT 0 R >> >> >>")
        kids.append(len(objects))
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    font = len(objects)
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body.replace('FONT', str(font))}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def locomo_sample(folder: Path) -> Path:
    """Write a one-conversation LoCoMo file (two sessions, one question per category but 3) into ``folder``."""
    conversation = {
        "speaker_a": "Ana", "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a greyhound called Pixel yesterday."},
            {"speaker": "Ben", "dia_id": "D1:2", "text": "Congrats! I started learning the cello."},
            {"speaker": "Ana", "dia_id": "D1:3", "text": "Nice!", "blip_caption": "a photo of a dog on a sofa"},
        ],
        "session_2_date_time": "10:00 am on 2 June, 2023",
        "session_2": [
            {"speaker": "Ben", "dia_id": "D2:1", "text": "My cello teacher moved to Oslo."},
            {"speaker": "Ana", "dia_id": "D2:2", "text": "Pixel loves the beach now."},
        ],
    }
    qa = [
        {"question": "What is the name of Ana's dog?", "answer": "Pixel", "evidence": ["D1:1"], "category": 4},
        {"question": "Where did Ben's cello teacher move?", "answer": "Oslo", "evidence": ["D2:1"], "category": 1},
        {"question": "When did Ana adopt a dog?", "answer": "7 May 2023", "evidence": ["D1:1; D9:9"], "category": 2},
        {"question": "Is there a cat?", "adversarial_answer": "yes", "evidence": ["D1:1"], "category": 5},
    ]
    path = folder / "mini_locomo.json"
    path.write_text(json.dumps([{"sample_id": "conv-x", "conversation": conversation, "qa": qa}]))
    return path
