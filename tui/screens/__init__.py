"""The app's screens: loading, chat, help and the small dialogs."""

from tui.screens.chat import ChatScreen
from tui.screens.dialogs import AskText, AttachFile, Confirm
from tui.screens.help import HelpScreen
from tui.screens.loading import LoadingScreen
from tui.screens.memory import MemoryScreen
from tui.screens.model import ModelScreen

__all__ = ["AskText", "AttachFile", "ChatScreen", "Confirm", "HelpScreen", "LoadingScreen", "MemoryScreen",
           "ModelScreen"]
