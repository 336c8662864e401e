"""The widgets of the chat screen (each small; messages up, method calls down)."""

from tui.widgets.conversation import Conversation
from tui.widgets.hints import CommandHints
from tui.widgets.insight import InsightPanel
from tui.widgets.message import MessageView
from tui.widgets.prompt import PromptInput
from tui.widgets.sidebar import SessionSidebar
from tui.widgets.status import StatusLine

__all__ = ["CommandHints", "Conversation", "InsightPanel", "MessageView", "PromptInput", "SessionSidebar", "StatusLine"]
