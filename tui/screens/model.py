"""The /model screen: the model that answers and the agent config around it.

Every value is shown as text (``rich.text.Text``): a config's name or instructions are
content, never markup.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.sanitize import one_line
from tui.types import AgentLike

__all__ = ["ModelScreen", "model_facts"]


def _on_off(section: Any) -> str | None:
    if section is None or not hasattr(section, "enabled"):
        return None
    return "on" if section.enabled else "off"


def model_facts(agent: AgentLike) -> list[tuple[str, str]]:
    """(label, value) pairs about the agent's model and config; missing parts are left out."""
    config = agent.config
    model = getattr(config, "model", None)
    generation = getattr(config, "generation", None)
    memory = getattr(config, "memory", None)
    facts: list[tuple[str, Any]] = [
        ("agent", getattr(config, "name", None)),
        ("model", agent.model_name),
        ("config model", getattr(model, "name", None) if getattr(model, "name", None) != agent.model_name else None),
        ("backend", getattr(model, "backend", None)),
        ("server", getattr(model, "base_url", None)),
        ("device", getattr(model, "device", None)),
        ("dtype", getattr(model, "dtype", None)),
        ("quantization", getattr(model, "quantization", None) or ("none" if model is not None else None)),
        ("context window", getattr(model, "context_window", None) or ("model's own" if model is not None else None)),
        ("temperature", getattr(generation, "temperature", None)),
        ("top_p", getattr(generation, "top_p", None)),
        ("max_new_tokens", getattr(generation, "max_new_tokens", None)),
        ("persona", getattr(config, "persona", None)),
    ]
    skills = getattr(agent, "skills", None)
    if isinstance(skills, dict) and skills:
        facts.append(("skills", ", ".join(sorted(skills))))
    else:
        enabled = getattr(getattr(config, "skills", None), "enabled", None)
        facts.append(("skills", ", ".join(enabled) if enabled else "every installed skill"))
    memory_state = _on_off(memory)
    embedder = getattr(memory, "embedder", None)
    if memory_state == "on" and embedder:
        memory_state += f" (embedder {embedder})"
    facts.append(("memory", memory_state))
    facts.append(("understanding", _on_off(getattr(config, "understanding", None))))
    facts.append(("max input", f"{config.max_input_chars:,} characters" if hasattr(config, "max_input_chars") else None))
    try:
        facts.append(("data dir", config.resolved_data_dir()))
    except Exception:  # a fake config or an unreadable environment: leave it out
        pass
    return [(label, one_line(str(value), 200)) for label, value in facts if value is not None and value != ""]


class ModelScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, agent: AgentLike) -> None:
        super().__init__(classes="dialog-screen")
        self._agent = agent

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog model", id="model"):
            yield Static("Model and config   (Escape closes)", classes="dialog-title")
            yield DataTable(id="model-facts", show_header=False, cursor_type="none", zebra_stripes=True)
            yield Static("Other models: `llmos models` lists them; put one in a config's model.name and "
                         "run `llmos chat --config FILE`.", classes="panel-hint", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.can_focus = False
        self.query_one("#model", VerticalScroll).focus()
        table.add_columns("what", "value")
        table.add_rows((Text(label), Text(value)) for label, value in model_facts(self._agent))

    def action_close(self) -> None:
        self.dismiss(None)
