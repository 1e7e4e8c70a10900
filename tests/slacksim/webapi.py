"""All Web API methods the sim answers, by name. Importing the ``api_*`` modules registers them."""

from . import api_conversations, api_files_views, api_messages
from .registry import METHODS, flag, public

__all__ = ["METHODS", "api_conversations", "api_files_views", "api_messages", "flag", "public"]
