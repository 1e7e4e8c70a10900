"""A local Slack for tests: the Web API, response_urls and file uploads (``SlackSim``), the
payloads and signatures Slack sends to an app (``payloads``), and a driver that plays the user's
side against the app's HTTP endpoint (``SlackDriver``).

How the pieces fit: ``workspace.Workspace`` holds the state and its rules; ``webapi`` maps each
Web API method onto it; ``blockkit`` holds the Block Kit limits Slack enforces; ``server.SlackSim``
serves all of it with aiohttp and records every call; ``driver.SlackDriver`` sends signed
requests to the app and applies Slack's handling of the answers back onto the sim.
"""

from .chaos import Chaos
from .driver import Delivery, SlackDriver
from .payloads import block_actions_body, new_trigger_id, sign, slash_body, view_submission_body
from .server import Call, SlackSim
from .workspace import SlackError

__all__ = [
    "Call",
    "Chaos",
    "Delivery",
    "SlackDriver",
    "SlackError",
    "SlackSim",
    "block_actions_body",
    "new_trigger_id",
    "sign",
    "slash_body",
    "view_submission_body",
]
