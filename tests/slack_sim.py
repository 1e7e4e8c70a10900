"""The Slack simulator's public face: ``from tests.slack_sim import SlackSim, SlackDriver, ...``.

    sim = SlackSim(bot_token="xoxb-test", team_id="T0CANDLE", bot_user_id="U0CFBOT")
    await sim.start()                       # the bot gets base_url=sim.api_url (SLACK_API_URL)
    driver = SlackDriver(sim, app_url="http://127.0.0.1:PORT/slack/events", signing_secret=SECRET)
    status, body, elapsed = await driver.slash("/cf scale graphql-api 10", user="U0OPERATOR")
    approval = await sim.wait_for(lambda s: s.messages("C0INCIDENT"))
    await driver.click("C0INCIDENT", approval[-1]["ts"], "approve", user="U0ADMIN")
    ...
    await sim.stop()                        # print(sim.transcript()) when an assertion fails

The implementation lives in the ``tests.slacksim`` package (see its ``__init__`` for how the
pieces fit); this module keeps the import path stable.
"""

from tests.slacksim import (
    Call,
    Delivery,
    SlackDriver,
    SlackError,
    SlackSim,
    block_actions_body,
    new_trigger_id,
    sign,
    slash_body,
    view_submission_body,
)

__all__ = [
    "Call",
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
