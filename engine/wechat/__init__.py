"""WeChat Shop (微信小店) payloads in, engine facts out, and the engine's answers in the
platform's own error codes. See docs/wechat.md.

    ticket_from_platform(order_payload, context) -> ticket facts
    proposal_from_platform(request_body, ticket, policy) -> (action, check payload)
    request_from_platform(body, ticket, engine, at=, version=, endpoint=) -> (action, check payload)
        for merchantupdateaftersale, acceptapply and rejectapply bodies
    platform_view(result) -> result with the platform's errcodes beside the engine's codes
"""
from engine.wechat.order import ticket_from_platform
from engine.wechat.calls import request_from_platform
from engine.wechat.proposal import proposal_from_platform
from engine.wechat.view import platform_view

__all__ = ["ticket_from_platform", "proposal_from_platform", "request_from_platform", "platform_view"]
