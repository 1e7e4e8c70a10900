"""Where messages go: a narrow interface with a Slack implementation (the console has another).

The rest of the bot never calls the Slack Web API directly; it posts, updates, answers privately and
uploads through a `Messenger`. That makes `SlackMessenger` the one boundary where every displayed text
of every call passes `base.text.guard`: outside text cannot become `<!channel>` or a disguised link.
Slack calls are retried by slack_sdk's handlers (connection errors, 429 with Retry-After, 5xx); what
still fails is logged with the error code and raised as `DeliveryError`, never silently dropped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from base.text import guard, guard_payload
from commands.reply import File

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """Slack refused or could not take a message (after retries). `code` is Slack's error string."""

    def __init__(self, code: str, method: str) -> None:
        super().__init__(f"{method} failed: {code}")
        self.code = code
        self.method = method


@dataclass(frozen=True)
class Origin:
    """Where a request came from, so answers can go back there."""

    user: str
    channel: str
    response_url: str | None = None
    trigger_id: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None


Blocks = list[dict[str, Any]]


class Messenger(Protocol):
    async def post(self, channel: str, text: str, blocks: Blocks | None = None, thread_ts: str | None = None) -> str:
        """Post a message; return its ts."""

    async def update(self, channel: str, ts: str, text: str, blocks: Blocks | None = None) -> None: ...

    async def respond(self, origin: Origin, text: str, blocks: Blocks | None = None) -> None:
        """Answer only the person who asked (ephemeral)."""

    async def upload(self, channel: str, thread_ts: str | None, file: File) -> None: ...

    # channels and views (incidents, the modal, the Home tab) ------------------------------------

    async def create_channel(self, name: str, private: bool = False) -> str:
        """Create a channel; return its id. `DeliveryError("name_taken")` when the name is in use."""

    async def set_topic(self, channel: str, topic: str) -> None: ...

    async def set_purpose(self, channel: str, purpose: str) -> None: ...

    async def invite(self, channel: str, users: list[str]) -> None:
        """Invite users; people already in the channel are not an error."""

    async def pin(self, channel: str, ts: str) -> None: ...

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None: ...

    async def publish_home(self, user: str, view: dict[str, Any]) -> None: ...

    async def group_members(self, group: str) -> list[str]:
        """The members of a user group (S...)."""

    async def user_name(self, user_id: str) -> str:
        """How a person is shown in Slack: display name, else real name. `DeliveryError` if it cannot say."""


def retry_handlers() -> list[Any]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]


def web_client(token: str, base_url: str) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=base_url, timeout=15, retry_handlers=retry_handlers())


class SlackMessenger:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._hook_session: aiohttp.ClientSession | None = None
        self._auth_checked: tuple[float, str | None] | None = None

    def _session(self) -> aiohttp.ClientSession:
        """One HTTP session for every response_url post: pooled connections, no session per answer."""
        if self._hook_session is None or self._hook_session.closed:
            self._hook_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._hook_session

    async def close(self) -> None:
        if self._hook_session is not None:
            await self._hook_session.close()

    async def auth_problem(self, max_age: float = 30.0) -> str | None:
        """None when the bot token works (auth.test), else Slack's error; cached for `max_age` seconds
        so a readiness probe every few seconds costs one Slack call per half minute."""
        now = time.monotonic()
        if self._auth_checked is not None and now - self._auth_checked[0] < max_age:
            return self._auth_checked[1]
        try:
            await self.client.auth_test()
            problem = None
        except SlackApiError as exc:
            problem = str(exc.response.get("error", "unknown_error"))
        except (SlackClientError, OSError, TimeoutError) as exc:
            problem = type(exc).__name__
        self._auth_checked = (now, problem)
        return problem

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await self.client.api_call(method, json=guard_payload(kwargs))
        except SlackApiError as exc:
            code = str(exc.response.get("error", "unknown_error"))
            log.error("slack call failed", extra={"method": method, "error": code})
            raise DeliveryError(code, method) from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.error("slack call failed", extra={"method": method, "error": type(exc).__name__})
            raise DeliveryError(type(exc).__name__, method) from None

    async def post(self, channel: str, text: str, blocks: Blocks | None = None, thread_ts: str | None = None) -> str:
        args: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False}
        if blocks is not None:
            args["blocks"] = blocks
        if thread_ts:
            args["thread_ts"] = thread_ts
        resp = await self._call("chat.postMessage", **args)
        return str(resp["ts"])

    async def update(self, channel: str, ts: str, text: str, blocks: Blocks | None = None) -> None:
        await self._call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks or [])

    async def respond(self, origin: Origin, text: str, blocks: Blocks | None = None) -> None:
        if origin.response_url:
            hook = AsyncWebhookClient(origin.response_url, timeout=10, retry_handlers=retry_handlers(),
                                      session=self._session())
            try:
                resp = await hook.send(text=guard(text), blocks=guard_payload(blocks), response_type="ephemeral",
                                       replace_original=False)
            except (SlackClientError, OSError, TimeoutError, ValueError) as exc:  # ValueError: aiohttp's InvalidURL
                log.error("response_url post failed", extra={"error": type(exc).__name__})
                raise DeliveryError(type(exc).__name__, "response_url") from None
            if resp.status_code >= 300:
                log.error("response_url post failed", extra={"status": resp.status_code})
                raise DeliveryError(f"http_{resp.status_code}", "response_url")
            return
        args: dict[str, Any] = {"channel": origin.channel, "user": origin.user, "text": text}
        if blocks is not None:
            args["blocks"] = blocks
        await self._call("chat.postEphemeral", **args)

    async def upload(self, channel: str, thread_ts: str | None, file: File) -> None:
        try:
            await self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=file.content,
                filename=file.filename,
                title=guard(file.title or file.filename),
            )
        except SlackApiError as exc:
            code = str(exc.response.get("error", "unknown_error"))
            log.error("slack upload failed", extra={"file": file.filename, "error": code})
            raise DeliveryError(code, "files_upload_v2") from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.error("slack upload failed", extra={"file": file.filename, "error": type(exc).__name__})
            raise DeliveryError(type(exc).__name__, "files_upload_v2") from None

    async def create_channel(self, name: str, private: bool = False) -> str:
        resp = await self._call("conversations.create", name=name, is_private=private)
        return str(resp["channel"]["id"])

    async def set_topic(self, channel: str, topic: str) -> None:
        await self._call("conversations.setTopic", channel=channel, topic=topic[:250])

    async def set_purpose(self, channel: str, purpose: str) -> None:
        await self._call("conversations.setPurpose", channel=channel, purpose=purpose[:250])

    async def invite(self, channel: str, users: list[str]) -> None:
        if not users:
            return
        try:
            await self._call("conversations.invite", channel=channel, users=",".join(users[:1000]), force=True)
        except DeliveryError as exc:
            if exc.code != "already_in_channel":
                raise

    async def pin(self, channel: str, ts: str) -> None:
        try:
            await self._call("pins.add", channel=channel, timestamp=ts)
        except DeliveryError as exc:
            if exc.code != "already_pinned":
                raise

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        await self._call("views.open", trigger_id=trigger_id, view=view)

    async def publish_home(self, user: str, view: dict[str, Any]) -> None:
        await self._call("views.publish", user_id=user, view=view)

    async def group_members(self, group: str) -> list[str]:
        resp = await self._call("usergroups.users.list", usergroup=group)
        return [str(u) for u in resp.get("users", [])]

    async def user_name(self, user_id: str) -> str:
        try:  # users.info reads form arguments, not a JSON body
            resp = await self.client.api_call("users.info", http_verb="GET", params={"user": user_id})
        except SlackApiError as exc:
            raise DeliveryError(str(exc.response.get("error", "unknown_error")), "users.info") from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            raise DeliveryError(type(exc).__name__, "users.info") from None
        user = resp.get("user") or {}
        profile = user.get("profile") or {}
        for name in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name")):
            if isinstance(name, str) and name.strip():
                return name.strip()
        return user_id
